"""``ImageList``: a padded batch of images and the size of each before padding (torchvision's ``image_list.py``)."""

from __future__ import annotations

from ...tensor import Tensor

__all__ = ["ImageList"]


class ImageList:
    """Images of different sizes padded into one tensor.

    Args:
        tensors (Tensor[N, C, H, W]): the batch, each image in the top-left corner
            of its slot, zeros to the right and below.
        image_sizes (list of (h, w)): each image's size inside ``tensors``
            (after resizing, before padding); boxes live in these coordinates.
    """

    def __init__(self, tensors: Tensor, image_sizes: list[tuple[int, int]]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, device) -> ImageList:
        """The same batch on ``device`` (sizes unchanged)."""
        return ImageList(self.tensors.to(device), self.image_sizes)
