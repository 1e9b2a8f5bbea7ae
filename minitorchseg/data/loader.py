"""Batches of NumPy arrays from a segmentation data set (no torch).

::

    loader = DataLoader(ds, batch_size=8, shuffle=True, transform=RandomCrop(64), seed=0)
    for images, masks in loader:      # images: (N, 3, H, W) float32; masks: (N, H, W) int64
        ...

Epoch ``e`` (the ``e``-th ``iter(loader)``, counting from 0) visits the items in
the order ``np.random.default_rng([seed, e]).permutation(len(ds))`` when
``shuffle``, else ``0, 1, ...``. Item ``i`` of epoch ``e`` is transformed with its
own generator ``np.random.default_rng([seed, e, i, 1])``: the same seed gives the
same batches, epoch after epoch, whatever the batch size.

After ``transform``, a ``(H, W, 3)`` uint8 image is converted by
:class:`~minitorchseg.data.transforms.ToArray` (scaled to ``[0, 1]``, CHW); a
:class:`~minitorchseg.data.transforms.Normalize` at the end of ``transform``
does that conversion itself. All items of a batch must then have the same size
(crop or resize them otherwise).
"""

from __future__ import annotations

import math

import numpy as np

from minitorchseg.data.transforms import ToArray

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate ``(images (N, 3, H, W) float32, masks (N, H, W) int64)`` batches of ``dataset``.

    ``len(loader)`` is the number of batches per epoch: ``ceil(n / batch_size)``,
    or ``floor`` with ``drop_last`` (which drops the last, incomplete batch).
    ``loader.epoch`` is the index of the next epoch; set it to resume a run.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        transform=None,
        seed: int = 0,
    ):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self._to_array = ToArray()

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The item indices of epoch ``epoch``, in visiting order."""
        n = len(self.dataset)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(n)
        return np.arange(n)

    def _load(self, i: int, epoch: int):
        image, mask = self.dataset[int(i)]
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, epoch, int(i), 1])
            image, mask = self.transform(image, mask, rng)
        if np.asarray(image).dtype == np.uint8:
            image, mask = self._to_array(image, mask)
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] != 3 or image.dtype != np.float32:
            raise ValueError(
                f"DataLoader: item {i} gives an image of shape {image.shape} dtype {image.dtype} after the "
                f"transform; expected (H, W, 3) uint8 or (3, H, W) float32"
            )
        mask = np.asarray(mask, dtype=np.int64)
        if mask.shape != image.shape[1:]:
            raise ValueError(
                f"DataLoader: item {i} has mask shape {mask.shape} but image shape {image.shape}"
            )
        return image, mask

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        order = self.order(epoch)
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, len(order)), self.batch_size):
            indices = order[start : start + self.batch_size]
            items = [self._load(i, epoch) for i in indices]
            shapes = {(im.shape, m.shape) for im, m in items}
            if len(shapes) > 1:
                sizes = sorted(str(im.shape[1:]) for im, _ in items)
                raise ValueError(
                    f"DataLoader: items {indices.tolist()} have different sizes "
                    f"{sizes}; crop or resize them to one size (e.g. transform=RandomCrop(...))"
                )
            yield np.stack([im for im, _ in items]), np.stack([m for _, m in items])

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed})"
        )
