"""Joint image/mask transforms on NumPy arrays.

A transform is called as ``image, mask = t(image, mask, rng)``:

* ``image``: ``(H, W, 3)`` uint8 (or, after :class:`ToArray`/:class:`Normalize`,
  ``(3, H, W)`` float32);
* ``mask``: ``(H, W)`` integer labels;
* ``rng``: an ``np.random.Generator``. Random transforms draw from it, so a seeded
  generator (the :class:`~minitorchseg.data.loader.DataLoader` passes one per
  sample, derived from its seed) makes a run reproducible. When ``rng`` is
  omitted a random transform uses its own generator, made at construction from
  its ``rng`` argument (a seed or a Generator).

The geometry is applied identically to the image and the mask; the image is
resampled bilinearly, the mask by nearest neighbour (labels are never mixed).
"""

from __future__ import annotations

import numbers

import numpy as np
from PIL import Image

__all__ = [
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomScale",
    "Resize",
    "ToArray",
    "Normalize",
    "resize_image",
    "resize_mask",
]


def _pair(size, name: str):
    if isinstance(size, numbers.Integral):
        size = (int(size), int(size))
    size = tuple(size)
    if len(size) != 2 or any(not isinstance(v, numbers.Integral) or v < 1 for v in size):
        raise ValueError(f"{name} must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _check_pair(image: np.ndarray, mask: np.ndarray, who: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{who}: image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{who}: mask shape {mask.shape} differs from the image's (H, W) {image.shape[:2]}")


def _generator(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """``(H, W, 3)`` uint8 image resized to ``size = (h, w)`` with Pillow's bilinear filter."""
    h, w = size
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((w, h), Image.BILINEAR), dtype=np.uint8)


def resize_mask(mask: np.ndarray, size) -> np.ndarray:
    """``(H, W)`` label map resized to ``size = (h, w)`` by nearest neighbour.

    Output pixel ``(i, j)`` takes input pixel ``(floor((i + 0.5) H / h), floor((j + 0.5) W / w))``:
    the input pixel whose area contains the output pixel's centre.
    """
    h, w = size
    rows = np.minimum(((np.arange(h) + 0.5) * (mask.shape[0] / h)).astype(np.int64), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * (mask.shape[1] / w)).astype(np.int64), mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


class Compose:
    """Apply ``transforms`` in order, passing the same ``rng`` to each."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, mask, rng=None):
        for t in self.transforms:
            image, mask = t(image, mask, rng)
        return image, mask

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomCrop:
    """A random ``size = (h, w)`` window of the image and the mask.

    The top-left corner is uniform over all windows inside the (padded) image.
    With ``pad_if_needed``, an image smaller than the window is first padded at
    the bottom and right: the image with ``fill``, the mask with ``mask_fill``
    (which must then be given: normally the data set's ``ignore_index``, so the
    padding does not count in the loss or the metrics). Without it, a small image
    is a ValueError.
    """

    def __init__(self, size, pad_if_needed: bool = False, fill=0, mask_fill=None, rng=None):
        self.size = _pair(size, "RandomCrop size")
        if pad_if_needed and mask_fill is None:
            raise ValueError(
                "RandomCrop(pad_if_needed=True) needs mask_fill: the label of padded mask pixels "
                "(normally the data set's ignore_index)"
            )
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.mask_fill = mask_fill
        self.rng = _generator(rng)

    def __call__(self, image, mask, rng=None):
        _check_pair(image, mask, "RandomCrop")
        rng = self.rng if rng is None else rng
        h, w = self.size
        H, W = mask.shape
        if H < h or W < w:
            if not self.pad_if_needed:
                raise ValueError(
                    f"RandomCrop: image of size (H, W) = {(H, W)} is smaller than the crop {self.size}; "
                    f"pass pad_if_needed=True (with mask_fill) or crop smaller"
                )
            ph, pw = max(h - H, 0), max(w - W, 0)
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=self.fill)
            mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=self.mask_fill)
            H, W = mask.shape
        top = int(rng.integers(0, H - h + 1))
        left = int(rng.integers(0, W - w + 1))
        return image[top : top + h, left : left + w], mask[top : top + h, left : left + w]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, pad_if_needed={self.pad_if_needed}, mask_fill={self.mask_fill})"


class RandomHorizontalFlip:
    """Mirror image and mask left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, rng=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = _generator(rng)

    def __call__(self, image, mask, rng=None):
        _check_pair(image, mask, "RandomHorizontalFlip")
        rng = self.rng if rng is None else rng
        if rng.random() < self.p:
            return image[:, ::-1], mask[:, ::-1]
        return image, mask

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Resize:
    """Resize to ``size = (h, w)``: bilinear for the image, nearest for the mask."""

    def __init__(self, size):
        self.size = _pair(size, "Resize size")

    def __call__(self, image, mask, rng=None):
        _check_pair(image, mask, "Resize")
        return resize_image(image, self.size), resize_mask(mask, self.size)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomScale:
    """Resize by a factor ``s ~ U[min_scale, max_scale]``: to ``(round(H s), round(W s))`` (at least 1).

    Bilinear (Pillow) for the image, nearest neighbour (:func:`resize_mask`) for the mask.
    """

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0, rng=None):
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"RandomScale: need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.rng = _generator(rng)

    def __call__(self, image, mask, rng=None):
        _check_pair(image, mask, "RandomScale")
        rng = self.rng if rng is None else rng
        s = rng.uniform(self.min_scale, self.max_scale)
        size = (max(1, round(mask.shape[0] * s)), max(1, round(mask.shape[1] * s)))
        if size == mask.shape:
            return image, mask
        return resize_image(image, size), resize_mask(mask, size)

    def __repr__(self) -> str:
        return f"RandomScale(min_scale={self.min_scale}, max_scale={self.max_scale})"


class Normalize:
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float32 ``(image / 255 - mean[c]) / std[c]``; mask → int64.

    ``mean`` and ``std`` are per-channel, in ``[0, 1]`` units (e.g. ImageNet's
    ``(0.485, 0.456, 0.406)``, ``(0.229, 0.224, 0.225)``). A ``(3, H, W)`` float
    image (already scaled to ``[0, 1]``) is normalised without the division by 255.
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (3,) or self.std.shape != (3,):
            raise ValueError(f"Normalize: mean and std need 3 values, got {mean!r} and {std!r}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std!r}")

    def __call__(self, image, mask, rng=None):
        image = np.asarray(image)
        if image.dtype == np.uint8:
            _check_pair(image, mask, type(self).__name__)
            x = image.astype(np.float32).transpose(2, 0, 1) * np.float32(1.0 / 255.0)
        elif image.ndim == 3 and image.shape[0] == 3 and np.issubdtype(image.dtype, np.floating):
            x = image.astype(np.float32)
        else:
            raise ValueError(
                f"{type(self).__name__}: image must be (H, W, 3) uint8 or (3, H, W) float, "
                f"got shape {image.shape} dtype {image.dtype}"
            )
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(mask, dtype=np.int64)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class ToArray(Normalize):
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float32 in ``[0, 1]``; mask → int64 (``Normalize(0, 1)``)."""

    def __init__(self):
        super().__init__((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    def __repr__(self) -> str:
        return "ToArray()"
