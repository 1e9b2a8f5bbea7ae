"""Joint transforms of an image and its instance target (boxes, masks, labels stay consistent).

A transform is called as ``image, target = t(image, target, rng)`` with ``image``
``(H, W, 3)`` uint8, ``target`` the dict of :mod:`minitorchseg.data.instances` and
``rng`` an ``np.random.Generator`` (omitted: the transform's own, made from its
``rng`` argument). The target is never modified in place.

The geometry acts on the masks; boxes are then the masks' boxes
(:func:`~minitorchseg.data.instances.masks_to_boxes`, ``x2 = max column + 1``) and
``area`` their pixel counts, so boxes and masks cannot disagree. An instance whose
mask is left with no pixel (cropped away, or thinner than a pixel after a resize)
is dropped with its label; an image left with no instance is kept (K = 0).
Images are resampled bilinearly, masks by nearest neighbour.
"""

from __future__ import annotations

import numpy as np

from minitorchseg.data.instances import masks_to_boxes
from minitorchseg.data.transforms import _generator, _pair, resize_image, resize_mask

__all__ = [
    "InstanceCompose",
    "InstanceHorizontalFlip",
    "InstanceVerticalFlip",
    "InstanceResize",
    "InstanceRandomCrop",
    "ColorJitter",
    "with_masks",
]


def _check(image, target, who: str) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{who}: image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
    masks = target["masks"]
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"{who}: target masks {masks.shape} must be (K, H, W) with the image's (H, W) "
                         f"{image.shape[:2]}")


def with_masks(target: dict, masks: np.ndarray) -> dict:
    """``target`` with new ``(K, H', W')`` masks: empty ones dropped (with their labels, iscrowd), boxes and area
    recomputed from the masks."""
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    keep = masks.any(axis=(1, 2))
    out = dict(target)
    out["masks"] = masks[keep]
    out["labels"] = np.asarray(target["labels"])[keep]
    out["iscrowd"] = np.asarray(target["iscrowd"])[keep]
    out["boxes"] = masks_to_boxes(out["masks"])
    out["area"] = out["masks"].sum(axis=(1, 2), dtype=np.int64).astype(np.float32)
    return out


class InstanceCompose:
    """Apply ``transforms`` in order, passing the same ``rng`` to each."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target, rng=None):
        for t in self.transforms:
            image, target = t(image, target, rng)
        return image, target

    def __repr__(self) -> str:
        return f"InstanceCompose([{', '.join(repr(t) for t in self.transforms)}])"


class InstanceHorizontalFlip:
    """Mirror left-right with probability ``p``: column ``x`` → ``W − 1 − x``; box ``(x1, x2)`` → ``(W − x2, W − x1)``
    (the masks' boxes, since ``x2`` is exclusive)."""

    def __init__(self, p: float = 0.5, rng=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"InstanceHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = _generator(rng)

    def __call__(self, image, target, rng=None):
        _check(image, target, type(self).__name__)
        rng = self.rng if rng is None else rng
        if rng.random() >= self.p:
            return image, target
        return np.ascontiguousarray(image[:, ::-1]), with_masks(target, target["masks"][:, :, ::-1])

    def __repr__(self) -> str:
        return f"InstanceHorizontalFlip(p={self.p})"


class InstanceVerticalFlip(InstanceHorizontalFlip):
    """Mirror top-bottom with probability ``p``: row ``y`` → ``H − 1 − y``, box ``(y1, y2)`` → ``(H − y2, H − y1)``."""

    def __call__(self, image, target, rng=None):
        _check(image, target, type(self).__name__)
        rng = self.rng if rng is None else rng
        if rng.random() >= self.p:
            return image, target
        return np.ascontiguousarray(image[::-1]), with_masks(target, target["masks"][:, ::-1, :])

    def __repr__(self) -> str:
        return f"InstanceVerticalFlip(p={self.p})"


class InstanceResize:
    """Resize to ``size = (h, w)``: the image bilinearly, each mask by nearest neighbour (:func:`resize_mask`)."""

    def __init__(self, size):
        self.size = _pair(size, "InstanceResize size")

    def __call__(self, image, target, rng=None):
        _check(image, target, type(self).__name__)
        if image.shape[:2] == self.size:
            return image, target
        masks = target["masks"]
        resized = np.stack([resize_mask(m, self.size) for m in masks]) if len(masks) else \
            np.zeros((0,) + self.size, np.uint8)
        return resize_image(image, self.size), with_masks(target, resized)

    def __repr__(self) -> str:
        return f"InstanceResize(size={self.size})"


class InstanceRandomCrop:
    """A random ``size = (h, w)`` window, its top-left corner uniform over the windows inside the image.

    An image smaller than the window is first padded at the bottom and right
    (image with ``fill``, masks with 0).
    """

    def __init__(self, size, fill: int = 0, rng=None):
        self.size = _pair(size, "InstanceRandomCrop size")
        self.fill = fill
        self.rng = _generator(rng)

    def __call__(self, image, target, rng=None):
        _check(image, target, type(self).__name__)
        rng = self.rng if rng is None else rng
        h, w = self.size
        H, W = image.shape[:2]
        masks = target["masks"]
        if H < h or W < w:
            ph, pw = max(h - H, 0), max(w - W, 0)
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=self.fill)
            masks = np.pad(masks, ((0, 0), (0, ph), (0, pw)))
            H, W = image.shape[:2]
        top = int(rng.integers(0, H - h + 1))
        left = int(rng.integers(0, W - w + 1))
        return (np.ascontiguousarray(image[top:top + h, left:left + w]),
                with_masks(target, masks[:, top:top + h, left:left + w]))

    def __repr__(self) -> str:
        return f"InstanceRandomCrop(size={self.size})"


class ColorJitter:
    """Random brightness, contrast and saturation (the image only; the target is returned unchanged).

    Factors ``f ~ U[max(0, 1 − a), 1 + a]`` for ``a`` = ``brightness``, ``contrast``,
    ``saturation``, applied in that order to ``x`` (float, 0..255), with ``g`` the
    grey level ``0.299 R + 0.587 G + 0.114 B`` (ITU-R 601, as torchvision's ``rgb_to_grayscale``):

    * brightness: ``x f``;
    * contrast: ``mean(g) + (x − mean(g)) f``;
    * saturation: ``g + (x − g) f``;

    then rounded and clipped to 0..255. A zero amount skips its step (and its draw).
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, rng=None):
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0.0 <= value:
                raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)
        self.rng = _generator(rng)

    def __call__(self, image, target, rng=None):
        _check(image, target, type(self).__name__)
        rng = self.rng if rng is None else rng
        x = image.astype(np.float32)
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        if self.brightness:
            x = x * np.float32(rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness))
        if self.contrast:
            mean = float((x @ weights).mean())
            x = mean + (x - mean) * np.float32(rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast))
        if self.saturation:
            grey = (x @ weights)[..., None]
            x = grey + (x - grey) * np.float32(rng.uniform(max(0.0, 1 - self.saturation), 1 + self.saturation))
        return np.clip(np.rint(x), 0, 255).astype(np.uint8), target

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation})"
