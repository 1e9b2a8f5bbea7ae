"""Reading image/mask pairs from disk, with the checks every reader shares.

:class:`PairedSegmentationDataset` is a sequence of ``(image_path, mask_path)``
pairs; indexing it reads one pair::

    image, mask = ds[i]      # image: (H, W, 3) uint8 RGB; mask: (H, W) int64 labels

Every problem names the file it comes from:

* an unreadable or missing image/mask file      → ``ValueError`` / ``FileNotFoundError``
* a mask whose size differs from its image      → ``ValueError`` (both sizes, both files)
* a label ``>= num_classes`` (or ``< 0``) that is not ``ignore_index`` → ``ValueError``
* a mask with colour channels (not a label map) → ``ValueError``

The file checks run when a pair is read (reading every file up front would make
opening a large data set slow); :meth:`PairedSegmentationDataset.check` reads all
pairs once and raises on the first problem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_image",
    "to_rgb8",
    "read_mask",
    "check_labels",
    "apply_label_map",
    "require_dir",
    "pairs_by_stem",
    "listed_pair",
    "PairedSegmentationDataset",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".gif")

_LABEL_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")


def require_dir(path, what: str) -> str:
    """``path`` as a string, or ``FileNotFoundError`` naming ``what`` if it is not a directory."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} not found: {path!r} is not a directory")
    return path


def listed_pair(list_file, lineno: int, image: str, mask: str) -> tuple[str, str]:
    """``(image, mask)`` from line ``lineno`` of a split list, or ``FileNotFoundError`` naming the line and file."""
    if not os.path.isfile(image):
        raise FileNotFoundError(f"{list_file}:{lineno}: image file not found: {image!r}")
    if not os.path.isfile(mask):
        raise FileNotFoundError(f"{list_file}:{lineno}: image {image!r} has no mask: {mask!r} not found")
    return image, mask


def _files_by_stem(directory: str, extensions) -> dict:
    """``{stem: path}`` of the files in ``directory`` whose extension is in ``extensions``."""
    out = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        path = os.path.join(directory, name)
        if ext.lower() not in extensions or not os.path.isfile(path):
            continue
        if stem in out:
            raise ValueError(f"two files with the stem {stem!r} in {directory!r}: {out[stem]!r} and {path!r}")
        out[stem] = path
    return out


def pairs_by_stem(images_dir, masks_dir, image_extensions=IMAGE_EXTENSIONS, mask_extensions=IMAGE_EXTENSIONS):
    """``[(image_path, mask_path), ...]`` sorted by stem: ``images_dir/a.jpg`` goes with ``masks_dir/a.png``.

    Every image needs a mask (``FileNotFoundError`` naming the image otherwise);
    masks without an image are skipped.
    """
    images = _files_by_stem(images_dir, tuple(e.lower() for e in image_extensions))
    masks = _files_by_stem(masks_dir, tuple(e.lower() for e in mask_extensions))
    pairs = []
    for stem, image_path in images.items():
        if stem not in masks:
            raise FileNotFoundError(
                f"image {image_path!r} has no mask: no file with the stem {stem!r} in {masks_dir!r}"
            )
        pairs.append((image_path, masks[stem]))
    return pairs


def _open(path, kind: str) -> Image.Image:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path!r}")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read {kind} {path!r}: {exc}") from exc
    return img


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def to_rgb8(img: Image.Image, source="image") -> np.ndarray:
    """A PIL image of any mode as ``(H, W, 3)`` uint8 RGB, its full range scaled onto ``0..255``.

    ====================================  ==============================================================
    mode                                  8-bit value
    ====================================  ==============================================================
    ``RGB``                               as stored
    ``L``, ``1``                          grey repeated in R, G, B (``1`` → 0 or 255)
    ``I;16`` (16-bit PNG/TIFF), ``I``     ``round(v · 255 / 65535)`` (so 0, 1000, 4096, 16384, 32768,
                                          65535 → 0, 4, 16, 64, 128, 255); ``I`` must hold
                                          ``0 ≤ v ≤ 65535`` (``ValueError`` naming the range found)
    ``F`` (32-bit float)                  ``round(v · 255)``; must hold ``0.0 ≤ v ≤ 1.0``
    ``RGBA``, ``LA``, ``PA``,             the colour channels as stored, alpha dropped (as PIL's
    ``P`` with transparency               ``convert("RGB")`` and torchvision's ``ImageReadMode.RGB``)
    ``P``, ``CMYK``, ``YCbCr``, others    PIL's ``convert("RGB")``
    ====================================  ==============================================================

    16-bit colour PNGs arrive from Pillow's decoder already as ``RGB``, holding the
    high byte of each value (at most one level below the rounded scaling above).
    ``source`` names the file in error messages.
    """
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(img).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"image {source!r}: mode {mode!r} holds values {values.min()}..{values.max()}; "
                f"expected 16-bit intensities 0..65535 (inclusive)"
            )
        return _grey_to_rgb(np.rint(values * (255.0 / 65535.0)).astype(np.uint8))
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0.0 and values.max() <= 1.0):
            raise ValueError(
                f"image {source!r}: mode 'F' holds values {np.nanmin(values)}..{np.nanmax(values)}; "
                f"expected float intensities 0.0..1.0 (inclusive, finite)"
            )
        return _grey_to_rgb(np.rint(values * 255.0).astype(np.uint8))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    try:
        img = img.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"image {source!r}: cannot convert mode {mode!r} to RGB: {exc}") from exc
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path) -> np.ndarray:
    """The image at ``path`` as ``(H, W, 3)`` uint8 RGB, upright as a viewer shows it.

    The one image reader of the package: every data set (training, evaluation),
    ``predict`` and ``kmeans`` read their pictures here. The EXIF orientation tag
    is applied (``PIL.ImageOps.exif_transpose``, as viewers, labelling tools and
    torchvision's ``decode_jpeg(apply_exif_orientation=True)`` do), so a phone
    photo stored sideways lines up with a mask drawn on the picture as displayed;
    masks (:func:`read_mask`) are label maps and are never rotated by a tag.
    Every mode (16-bit, float, alpha, palette, CMYK) becomes 8-bit RGB by
    :func:`to_rgb8`.
    """
    img = _open(path, "image")
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read image {path!r}: bad EXIF orientation data: {exc}") from exc
    return to_rgb8(img, path)


def read_mask(path) -> np.ndarray:
    """The label map at ``path`` as ``(H, W)`` int64: the raw pixel values of a single-channel PNG.

    Palette PNGs (mode ``P``, as in VOC's ``SegmentationClass``) give their palette
    *indices*, which are the class labels; a mask with colour channels is an error.
    Labels are never scaled (a 16-bit mask keeps its values) and never rotated by
    an EXIF orientation tag.
    """
    img = _open(path, "mask")
    if img.mode not in _LABEL_MODES:
        raise ValueError(
            f"mask {path!r} has mode {img.mode!r} ({len(img.getbands())} channels); expected a "
            f"single-channel label map (one of {', '.join(_LABEL_MODES)})"
        )
    return np.asarray(img).astype(np.int64)


def apply_label_map(mask: np.ndarray, label_map) -> np.ndarray:
    """``mask`` with every stored value ``v`` in ``label_map`` replaced by ``label_map[v]`` (others kept)."""
    if not label_map:
        return mask
    out = mask.copy()
    for value, label in label_map.items():
        out[mask == value] = label
    return out


def check_labels(mask: np.ndarray, num_classes: int, ignore_index, source) -> None:
    """``ValueError`` naming ``source`` if ``mask`` holds a label outside ``[0, num_classes)``
    other than ``ignore_index``.

    When 255 is among them (a 0/255 binary mask, or VOC-style 255 borders) the
    message names the three ways out: ``label_map={255: 1}``, ``ignore_index=255``
    or a larger ``num_classes``.
    """
    bad = (mask < 0) | (mask >= num_classes)
    if ignore_index is not None:
        bad &= mask != ignore_index
    if bad.any():
        values = np.unique(mask[bad])
        shown = values[:10].tolist()
        more = f" (and {len(values) - 10} more)" if len(values) > 10 else ""
        hint = ""
        if 255 in values:
            hint = (
                "; 255 is the foreground of a 0/255 binary mask or a VOC-style border: map it to a class "
                "with label_map={255: 1} (--data folder:...,map=255:1), ignore it with ignore_index=255 "
                "(folder:...,ignore_index=255), or raise num_classes"
            )
        raise ValueError(
            f"mask {source!r} holds label values {shown}{more} outside [0, {num_classes}) "
            f"(num_classes={num_classes}, ignore_index={ignore_index}): allowed labels are "
            f"0..{num_classes - 1} (inclusive){'' if ignore_index is None else f' and {ignore_index}'}{hint}"
        )


class PairedSegmentationDataset(Sequence):
    """A sequence of ``(image, mask)`` pairs read from files.

    Attributes: ``pairs`` (list of ``(image_path, mask_path)``), ``num_classes``,
    ``class_names`` (tuple of str), ``palette`` (``(num_classes, 3)`` uint8),
    ``ignore_index`` (int or None), ``label_map`` (``{stored value: label}``
    applied to every mask as it is read, or None).
    """

    def __init__(self, pairs, num_classes: int, class_names, palette, ignore_index, label_map=None):
        self.pairs = [(os.fspath(a), os.fspath(b)) for a, b in pairs]
        self.label_map = dict(label_map) if label_map else None
        self.num_classes = int(num_classes)
        self.class_names = tuple(class_names)
        self.palette = np.asarray(palette, dtype=np.uint8)
        self.ignore_index = ignore_index
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes={self.num_classes}"
            )
        if self.palette.shape != (self.num_classes, 3):
            raise ValueError(f"palette must have shape ({self.num_classes}, 3), got {self.palette.shape}")

    def __len__(self) -> int:
        return len(self.pairs)

    def _index(self, i) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} index must be an int, got {type(i).__name__}")
        n = len(self.pairs)
        if not -n <= i < n:
            raise IndexError(
                f"{type(self).__name__} index {i} out of range for {n} items; allowed {-n}..{n - 1} (inclusive)"
            )
        return int(i) % n

    def load_mask(self, i) -> np.ndarray:
        """The checked label map of item ``i`` alone, ``(H, W)`` int64 (the image is not read)."""
        mask_path = self.pairs[self._index(i)][1]
        mask = apply_label_map(read_mask(mask_path), self.label_map)
        check_labels(mask, self.num_classes, self.ignore_index, mask_path)
        return mask

    def __getitem__(self, i):
        image_path, mask_path = self.pairs[self._index(i)]
        image = read_image(image_path)
        mask = apply_label_map(read_mask(mask_path), self.label_map)
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"mask {mask_path!r} has size {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                f"{image_path!r} has size {image.shape[1]}x{image.shape[0]}"
            )
        check_labels(mask, self.num_classes, self.ignore_index, mask_path)
        return image, mask

    def check(self) -> None:
        """Read every pair once; raises the first reading, size or label error."""
        for i in range(len(self)):
            self[i]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} items, num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index})"
        )
