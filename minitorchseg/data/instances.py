"""Instance segmentation targets: one dict per image, the box convention, and the synthetic shapes as instances.

Every instance data set is a sequence of ``(image, target)`` pairs::

    image, target = ds[i]        # image: (H, W, 3) uint8 RGB
    target["boxes"]              # (K, 4) float32  x1, y1, x2, y2 in pixel units (see below)
    target["labels"]             # (K,)   int64    1..num_classes-1 (0 is the background)
    target["masks"]              # (K, H, W) uint8 0/1, one mask per instance
    target["area"]               # (K,)   float32  pixels in each mask
    target["iscrowd"]            # (K,)   int64    all 0: crowd regions are not training targets
    target["image_id"]           # int             the image's id in the COCO export

K = 0 (an image with no instance) is valid: the arrays are then ``(0, 4)``,
``(0,)``, ``(0, H, W)``. Besides ``len``/indexing a data set has ``num_classes``
(the background counted), ``class_names`` (``class_names[0] == "background"``),
``category_ids`` (the COCO category id of labels ``1..num_classes-1``), ``palette``,
``image_ids`` (one int per item) and ``ground_truth(i)``: the target of item ``i``
*with* its crowd regions (``iscrowd = 1``), as the evaluation needs them.

Box convention: pixel ``(x, y)`` covers the square ``[x, x + 1) x [y, y + 1)``, and
the box of a mask is the smallest box covering its pixels::

    x1 = min column,  y1 = min row,  x2 = max column + 1,  y2 = max row + 1

so a one-pixel mask at column 3, row 2 has the box ``(3, 2, 4, 3)``, of width and
height 1. This is COCO's convention: pycocotools' ``mask.toBbox`` of that mask is
``[3, 2, 1, 1]`` (x, y, w, h) and ``w = x2 - x1``, so the exported boxes and the
boxes pycocotools derives from the exported masks agree. torchvision's
``ops.masks_to_boxes`` returns ``x2 = max column`` instead, which gives a one-pixel
mask a box of width 0 that the detectors' ``x2 > x1`` check refuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minitorchseg.data.palettes import SHAPES_CLASSES, SHAPES_PALETTE
from minitorchseg.data.shapes import SyntheticShapes

__all__ = [
    "TARGET_KEYS",
    "masks_to_boxes",
    "make_target",
    "empty_target",
    "check_target",
    "instance_palette",
    "InstanceShapes",
    "InstanceSubset",
]

TARGET_KEYS = ("boxes", "labels", "masks", "area", "iscrowd", "image_id")


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` masks → ``(K, 4)`` float32 boxes ``(min col, min row, max col + 1, max row + 1)``.

    Every mask must have at least one pixel (``ValueError`` naming the first empty one).
    See the module docstring for why ``x2 = max column + 1``.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks_to_boxes: masks must be (K, H, W), got shape {masks.shape}")
    boxes = np.zeros((masks.shape[0], 4), dtype=np.float32)
    for k in range(masks.shape[0]):
        rows = np.flatnonzero(masks[k].any(axis=1))
        cols = np.flatnonzero(masks[k].any(axis=0))
        if rows.size == 0:
            raise ValueError(f"masks_to_boxes: mask {k} is empty; an empty mask has no box")
        boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def make_target(masks, labels, image_id: int, iscrowd=None) -> dict:
    """The target dict of the module docstring from ``(K, H, W)`` masks (any dtype, nonzero = inside) and labels.

    Boxes come from the masks (:func:`masks_to_boxes`), ``area`` is each mask's pixel count.
    """
    masks = (np.asarray(masks) != 0).astype(np.uint8)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if masks.ndim != 3 or masks.shape[0] != labels.shape[0]:
        raise ValueError(f"make_target: need (K, H, W) masks and (K,) labels, got {masks.shape} and {labels.shape}")
    crowd = np.zeros(len(labels), np.int64) if iscrowd is None else np.asarray(iscrowd, np.int64).reshape(-1)
    return {
        "boxes": masks_to_boxes(masks),
        "labels": labels,
        "masks": masks,
        "area": masks.sum(axis=(1, 2), dtype=np.int64).astype(np.float32),
        "iscrowd": crowd,
        "image_id": int(image_id),
    }


def empty_target(height: int, width: int, image_id: int) -> dict:
    """A target with no instance for an ``height x width`` image."""
    return make_target(np.zeros((0, height, width), np.uint8), np.zeros(0, np.int64), image_id)


def check_target(target: dict, image_shape, num_classes: int, source: str) -> None:
    """``ValueError`` naming ``source`` when ``target`` is not a valid target for an image of ``image_shape``.

    Checks the keys, the shapes and dtypes of the module docstring, labels in
    ``1..num_classes-1``, non-empty masks and boxes equal to the masks' boxes.
    """
    missing = [k for k in TARGET_KEYS if k not in target]
    if missing:
        raise ValueError(f"{source}: the target has no {missing} (expected keys {TARGET_KEYS})")
    h, w = int(image_shape[0]), int(image_shape[1])
    masks, boxes, labels = target["masks"], target["boxes"], target["labels"]
    k = labels.shape[0] if labels.ndim == 1 else -1
    if masks.shape != (k, h, w) or masks.dtype != np.uint8:
        raise ValueError(f"{source}: masks must be uint8 ({k}, {h}, {w}), got {masks.dtype} {masks.shape}")
    if boxes.shape != (k, 4) or boxes.dtype != np.float32:
        raise ValueError(f"{source}: boxes must be float32 ({k}, 4), got {boxes.dtype} {boxes.shape}")
    if labels.dtype != np.int64 or np.any((labels < 1) | (labels >= num_classes)):
        raise ValueError(f"{source}: labels must be int64 in 1..{num_classes - 1}, got {labels.tolist()}")
    if k and not np.array_equal(boxes, masks_to_boxes(masks)):
        raise ValueError(f"{source}: the boxes are not the boxes of the masks")


def instance_palette(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 3)`` uint8 distinct bright colours, one per instance (golden-ratio hues, full saturation)."""
    import colorsys

    hues = (seed * 0.1 + np.arange(count) * 0.618033988749895) % 1.0
    rgb = [colorsys.hsv_to_rgb(float(h), 0.85, 1.0) for h in hues]
    return np.asarray(np.rint(np.asarray(rgb, dtype=np.float64).reshape(-1, 3) * 255), dtype=np.uint8)


class InstanceShapes(Sequence):
    """:class:`~minitorchseg.data.shapes.SyntheticShapes` as instances: each visible object is one instance.

    Takes SyntheticShapes' arguments. ``ds[i] -> (image, target)`` with the visible
    pixels of each object as its mask, labels 1 circle, 2 square, 3 triangle, and
    ``image_id = i + 1``. Objects are never crowds: ``ground_truth(i)`` is ``ds[i][1]``.
    """

    class_names = SHAPES_CLASSES
    num_classes = len(SHAPES_CLASSES)
    palette = SHAPES_PALETTE
    category_ids = tuple(range(1, len(SHAPES_CLASSES)))

    def __init__(self, num_images: int = 256, **kwargs):
        self.shapes = SyntheticShapes(num_images, **kwargs)
        self.image_ids = list(range(1, len(self.shapes) + 1))

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, i):
        image, _ = self.shapes[i]
        inst = self.shapes.instances(i)
        target = make_target(inst["masks"], inst["labels"], self.shapes._index(i) + 1)
        return image, target

    def ground_truth(self, i) -> dict:
        return self[i][1]

    def file_name(self, i) -> str:
        return f"shapes_{self.shapes._index(i):05d}.png"

    def __repr__(self) -> str:
        return f"InstanceShapes({len(self)} images, size={self.shapes.size}, seed={self.shapes.seed})"


class InstanceSubset(Sequence):
    """Items ``indices`` of an instance data set, with its classes, ids and ``ground_truth``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        self.num_classes = dataset.num_classes
        self.class_names = dataset.class_names
        self.category_ids = dataset.category_ids
        self.palette = dataset.palette
        self.image_ids = [dataset.image_ids[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def ground_truth(self, i) -> dict:
        return self.dataset.ground_truth(self.indices[i])

    def file_name(self, i) -> str:
        return self.dataset.file_name(self.indices[i])

    @property
    def coco_annotations(self):
        """The underlying data set's ``coco_annotations(i)`` on this subset's items, or None when it has none."""
        method = getattr(self.dataset, "coco_annotations", None)
        return None if method is None else (lambda i: method(self.indices[i]))

    @property
    def image_entry(self):
        """The underlying data set's ``image_entry(i)`` on this subset's items, or None when it has none."""
        method = getattr(self.dataset, "image_entry", None)
        return None if method is None else (lambda i: method(self.indices[i]))

    def __repr__(self) -> str:
        return f"InstanceSubset({self.dataset!r}, {len(self)} items)"
