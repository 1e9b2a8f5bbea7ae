"""A built-in synthetic data set: circles, squares and triangles on textured backgrounds.

Every image is generated from its own generator ``np.random.default_rng([seed, i])``,
so item ``i`` is the same whatever order the items are read in, and two data
sets with the same arguments are identical.

Image ``i`` (``H x W``):

1. background: two random colours (at least 100 apart in RGB) blended by a random sinusoidal grating
   (1 to 6 cycles across the image, random orientation), a second grating added;
2. ``K ~ U{min_objects..max_objects}`` objects, each a circle, a square or an
   equilateral triangle (uniformly), rotated at random, of size ``s`` drawn
   log-uniformly from ``[min_size, max_size]`` pixels (so small objects are
   common: diameter, side, side), kept inside the image, in a flat colour at
   least ``min_contrast`` away from the mean background colour (plus a linear
   shading ramp of +-20 across the object).
   A pixel belongs to a shape when its centre ``(x + 0.5, y + 0.5)`` is inside;
3. later objects occlude earlier ones. A placement that would leave an earlier
   object with fewer than ``min_visible`` of its pixels (or fewer than
   ``min_pixels``) is redrawn (up to 20 times, then the object is dropped);
4. uniform pixel noise of standard deviation ``noise`` over the whole image.

Outputs::

    image, mask = ds[i]      # (H, W, 3) uint8; (H, W) int64: 0 background, 1 circle, 2 square, 3 triangle
    inst = ds.instances(i)   # {"masks": (K, H, W) bool   visible pixels of each object,
                             #  "boxes": (K, 4) float32  x1, y1, x2, y2 of the visible pixels,
                             #           x2/y2 exclusive (last pixel + 1): torchvision's convention,
                             #  "labels": (K,) int64     1, 2 or 3}

The semantic mask is exactly the union of the instance masks, each painted with
its label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from minitorchseg.data.palettes import SHAPES_CLASSES, SHAPES_PALETTE

__all__ = ["SyntheticShapes", "CIRCLE", "SQUARE", "TRIANGLE"]

CIRCLE, SQUARE, TRIANGLE = 1, 2, 3
_EXTENT = {CIRCLE: 0.5, SQUARE: math.sqrt(0.5), TRIANGLE: 1.0 / math.sqrt(3.0)}
_MAX_TRIES = 20
_MIN_TEXTURE_CONTRAST = 100.0


def _shape_mask(kind: int, dx: np.ndarray, dy: np.ndarray, s: float, theta: float) -> np.ndarray:
    """Pixels inside a shape of size ``s`` centred at the origin of ``(dx, dy)`` (broadcasting grids)."""
    if kind == CIRCLE:
        return dx * dx + dy * dy <= (0.5 * s) ** 2
    c, t = math.cos(theta), math.sin(theta)
    if kind == SQUARE:
        u = c * dx + t * dy
        v = c * dy - t * dx
        return np.maximum(np.abs(u), np.abs(v)) <= 0.5 * s
    r = s / math.sqrt(3.0)
    inside = None
    for k in range(3):
        a = theta + 2.0 * math.pi * k / 3.0 + math.pi / 3.0
        half = math.cos(a) * dx + math.sin(a) * dy <= 0.5 * r
        inside = half if inside is None else inside & half
    return inside


class SyntheticShapes(Sequence):
    """``num_images`` synthetic images of size ``size = (H, W)``; see the module docstring.

    Arguments:
        min_size, max_size: object size range in pixels (default ``max(4, min(H, W) // 12)``
            and ``min(H, W) // 2``).
        min_contrast: smallest Euclidean RGB distance between an object's colour and
            the mean background colour.
        min_visible, min_pixels: occlusion limits (fraction of an object's own pixels,
            and an absolute count, that must stay visible).
        cache: keep generated items in memory.

    Attributes: ``num_classes = 4``, ``class_names``, ``palette``, ``ignore_index = None``.
    """

    num_classes = len(SHAPES_CLASSES)
    class_names = SHAPES_CLASSES
    palette = SHAPES_PALETTE
    ignore_index = None

    def __init__(
        self,
        num_images: int = 256,
        size=(64, 64),
        seed: int = 0,
        min_objects: int = 1,
        max_objects: int = 4,
        min_size: float | None = None,
        max_size: float | None = None,
        noise: float = 6.0,
        min_contrast: float = 80.0,
        min_visible: float = 0.5,
        min_pixels: int = 6,
        cache: bool = True,
    ):
        if isinstance(size, (int, np.integer)):
            size = (size, size)
        if len(size) != 2 or any(not isinstance(v, (int, np.integer)) or v < 8 for v in size):
            raise ValueError(f"SyntheticShapes: size must be (H, W) with H, W >= 8, got {size!r}")
        if not isinstance(num_images, (int, np.integer)) or num_images < 0:
            raise ValueError(f"SyntheticShapes: num_images must be a non-negative int, got {num_images!r}")
        if not 0 <= min_objects <= max_objects:
            raise ValueError(
                f"SyntheticShapes: need 0 <= min_objects <= max_objects, got {min_objects}, {max_objects}"
            )
        h, w = int(size[0]), int(size[1])
        short = min(h, w)
        min_size = float(max(4, short // 12) if min_size is None else min_size)
        max_size = float(short // 2 if max_size is None else max_size)
        if not 2 <= min_size <= max_size <= short:
            raise ValueError(
                f"SyntheticShapes: need 2 <= min_size <= max_size <= min(H, W) = {short}, "
                f"got min_size={min_size}, max_size={max_size}"
            )
        if not 0.0 <= min_visible <= 1.0:
            raise ValueError(f"SyntheticShapes: min_visible must be in [0, 1], got {min_visible}")
        self.num_images = int(num_images)
        self.size = (h, w)
        self.seed = seed
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.min_size, self.max_size = min_size, max_size
        self.noise = float(noise)
        self.min_contrast = float(min_contrast)
        self.min_visible = float(min_visible)
        self.min_pixels = int(min_pixels)
        self._cache = {} if cache else None
        self._ys = (np.arange(h, dtype=np.float64) + 0.5)[:, None]
        self._xs = (np.arange(w, dtype=np.float64) + 0.5)[None, :]

    def __len__(self) -> int:
        return self.num_images

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"SyntheticShapes index must be an int, got {type(i).__name__}")
        if not -self.num_images <= i < self.num_images:
            raise IndexError(
                f"SyntheticShapes index {i} out of range for {self.num_images} items; allowed "
                f"{-self.num_images}..{self.num_images - 1} (inclusive)"
            )
        return int(i) % self.num_images

    def _item(self, i):
        """``(image, owner, labels)``: owner[y, x] = 1 + index of the visible object, 0 = background."""
        i = self._index(i)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        item = self._generate(i)
        if self._cache is not None:
            self._cache[i] = item
        return item

    def _background(self, rng) -> np.ndarray:
        """``(H, W, 3)`` float32: two colours blended by ``0.5 + (g1 + 0.5 g2) / 3`` for gratings
        ``g = sin(2 pi f (cos(a) x + sin(a) y) + phase)`` in image-relative coordinates."""
        h, w = self.size
        xs = (np.arange(w) + 0.5) / w
        ys = (np.arange(h) + 0.5) / h
        u = rng.random(12)
        c0 = (255.0 * u[0:3]).astype(np.float32)
        c1 = (255.0 * u[3:6]).astype(np.float32)
        for _attempt in range(_MAX_TRIES):
            if math.dist(c0, c1) >= _MIN_TEXTURE_CONTRAST:
                break
            c1 = (255.0 * rng.random(3)).astype(np.float32)
        blend = np.full((h, w), 0.5, dtype=np.float32)
        for weight, (uf, ua, up) in zip((1.0, 0.5), (u[6:9], u[9:12])):
            freq = 1.0 + 5.0 * uf
            angle = math.pi * ua
            phase = 2.0 * math.pi * up
            ax = 2.0 * math.pi * freq * math.cos(angle) * xs
            ay = 2.0 * math.pi * freq * math.sin(angle) * ys + phase
            scale = weight / 3.0
            sin_x, cos_x = (scale * np.sin(ax)).astype(np.float32), (scale * np.cos(ax)).astype(np.float32)
            sin_y, cos_y = np.sin(ay).astype(np.float32), np.cos(ay).astype(np.float32)
            blend += np.outer(cos_y, sin_x)
            blend += np.outer(sin_y, cos_x)
        return c0 + (c1 - c0) * blend[..., None]

    def _generate(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        h, w = self.size
        image = self._background(rng)
        mean_bg = image.reshape(-1, 3).mean(axis=0)
        owner = np.zeros((h, w), dtype=np.int32)
        labels, full_area, visible = [], [], []
        log_lo, log_hi = math.log(self.min_size), math.log(self.max_size)
        for _ in range(int(rng.integers(self.min_objects, self.max_objects + 1))):
            kind = int(rng.integers(1, 4))
            for _attempt in range(_MAX_TRIES):
                us, ut, ux, uy = rng.random(4)
                s = math.exp(log_lo + (log_hi - log_lo) * us)
                theta = 2.0 * math.pi * ut
                margin = min(_EXTENT[kind] * s, w / 2, h / 2)
                cx = margin + (w - 2.0 * margin) * ux
                cy = margin + (h - 2.0 * margin) * uy
                dx, dy = self._xs - cx, self._ys - cy
                m = _shape_mask(kind, dx, dy, s, theta)
                area = int(m.sum())
                if area < self.min_pixels:
                    continue
                if labels:
                    stolen = np.bincount(owner[m], minlength=len(labels) + 1)[1:]
                    left = np.asarray(visible) - stolen
                    need = np.maximum(self.min_pixels, self.min_visible * np.asarray(full_area))
                    if np.any(left < need):
                        continue
                    visible = left.tolist()
                break
            else:
                continue
            for _attempt in range(_MAX_TRIES):
                colour = 255.0 * rng.random(3)
                if math.dist(colour, mean_bg) >= self.min_contrast:
                    break
            phi = 2.0 * math.pi * rng.random()
            shade = 20.0 * (math.cos(phi) * dx + math.sin(phi) * dy) / max(margin, 1.0)
            image[m] = (colour + shade[m][:, None]).astype(np.float32)
            owner[m] = len(labels) + 1
            labels.append(kind)
            full_area.append(area)
            visible.append(area)
        if self.noise > 0:
            noise = rng.random(size=image.shape, dtype=np.float32)
            image += np.float32(2.0 * math.sqrt(3.0) * self.noise) * (noise - np.float32(0.5))
        np.rint(image, out=image)
        np.clip(image, 0, 255, out=image)
        image = image.astype(np.uint8)
        return image, owner, np.asarray(labels, dtype=np.int64)

    def __getitem__(self, i):
        image, owner, labels = self._item(i)
        lookup = np.concatenate([[0], labels]).astype(np.int64)
        return image.copy(), lookup[owner]

    def load_mask(self, i) -> np.ndarray:
        """The semantic mask of item ``i``, ``(H, W)`` int64."""
        return self[i][1]

    def instances(self, i) -> dict:
        """Per-object targets of item ``i``: ``{"masks", "boxes", "labels"}`` (see the module docstring)."""
        _, owner, labels = self._item(i)
        ids = np.arange(1, len(labels) + 1, dtype=np.int32)
        masks = owner[None, :, :] == ids[:, None, None]
        boxes = np.zeros((len(labels), 4), dtype=np.float32)
        for k in range(len(labels)):
            rows = np.flatnonzero(masks[k].any(axis=1))
            cols = np.flatnonzero(masks[k].any(axis=0))
            boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        return {"masks": masks, "boxes": boxes, "labels": labels.copy()}

    def __repr__(self) -> str:
        return f"SyntheticShapes({self.num_images} images, size={self.size}, seed={self.seed})"
