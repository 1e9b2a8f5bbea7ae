"""A generic pair of folders: images in one, label maps in the other, matched by file stem.

``images/street_01.jpg`` goes with ``masks/street_01.png``. Masks are
single-channel label maps (8- or 16-bit PNGs, or palette PNGs whose indices are
the labels).
"""

from __future__ import annotations

import numpy as np

from minitorchseg.data.base import (
    IMAGE_EXTENSIONS,
    PairedSegmentationDataset,
    pairs_by_stem,
    read_mask,
    require_dir,
)
from minitorchseg.data.palettes import default_palette

__all__ = ["ImageMaskFolder"]


class ImageMaskFolder(PairedSegmentationDataset):
    """Images in ``images_dir`` paired by stem with masks in ``masks_dir``.

    ``num_classes`` defaults to ``len(class_names)`` when names are given; with
    neither, every mask is read once and ``num_classes = 1 + the largest label``
    (``ignore_index`` excluded). ``class_names`` default to ``class_0, class_1, ...``
    and ``palette`` to :func:`~minitorchseg.data.palettes.default_palette`.
    Every image must have a mask (``FileNotFoundError`` naming it otherwise).
    Masks are looked for among lossless formats only (``mask_extensions``: PNG, BMP,
    TIFF, GIF): a JPEG would blur the labels.
    """

    def __init__(
        self,
        images_dir,
        masks_dir,
        num_classes: int | None = None,
        class_names=None,
        palette=None,
        ignore_index: int | None = None,
        image_extensions=IMAGE_EXTENSIONS,
        mask_extensions=(".png", ".bmp", ".tif", ".tiff", ".gif"),
    ):
        self.images_dir = require_dir(images_dir, "images_dir")
        self.masks_dir = require_dir(masks_dir, "masks_dir")
        pairs = pairs_by_stem(self.images_dir, self.masks_dir, image_extensions, mask_extensions)
        if num_classes is None:
            if class_names is not None:
                num_classes = len(class_names)
            else:
                num_classes = self._infer_num_classes(pairs, ignore_index)
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"ImageMaskFolder: num_classes must be a positive int, got {num_classes!r}")
        if class_names is None:
            class_names = tuple(f"class_{c}" for c in range(num_classes))
        if palette is None:
            palette = default_palette(num_classes)
        super().__init__(pairs, num_classes, class_names, palette, ignore_index)

    @staticmethod
    def _infer_num_classes(pairs, ignore_index) -> int:
        largest = 0
        for _, mask_path in pairs:
            mask = read_mask(mask_path)
            if ignore_index is not None:
                mask = mask[mask != ignore_index]
            if mask.size:
                largest = max(largest, int(mask.max()))
        return largest + 1
