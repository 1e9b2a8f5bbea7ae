"""A generic pair of folders: images in one, label maps in the other, matched by file stem.

``images/street_01.jpg`` goes with ``masks/street_01.png``. Masks are
single-channel label maps (8- or 16-bit PNGs, or palette PNGs whose indices are
the labels).
"""

from __future__ import annotations

import warnings

import numpy as np

from minitorchseg.data.base import (
    IMAGE_EXTENSIONS,
    PairedSegmentationDataset,
    apply_label_map,
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

    ``label_map`` (``{stored value: label}``) rewrites mask values as they are
    read, e.g. ``{255: 1}`` for masks saved as 0/255.

    Binary masks saved as 0/255: when neither ``label_map`` nor
    ``ignore_index=255`` is given and the class count is unknown or 2, every mask
    is read once; if together they hold only 0 and 255 (255 present), 255 is read
    as class 1 (``label_map={255: 1}``, ``num_classes=2``) and a ``UserWarning``
    says so, instead of a 256-class problem. To read 255 otherwise, pass
    ``ignore_index=255`` (VOC-style borders), a ``label_map`` or ``num_classes``.
    Other masks whose largest value is 255 but which use fewer than 128 of the
    values 0..255 (``{0, 1, 2, 255}``: a border label) are a ``ValueError`` naming
    255 and those options when the class count would be inferred.
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
        label_map=None,
    ):
        self.images_dir = require_dir(images_dir, "images_dir")
        self.masks_dir = require_dir(masks_dir, "masks_dir")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer, type(None))):
            raise TypeError(f"ImageMaskFolder: ignore_index must be an int or None, got {ignore_index!r}")
        if label_map is not None:
            label_map = self._check_label_map(label_map)
        pairs = pairs_by_stem(self.images_dir, self.masks_dir, image_extensions, mask_extensions)
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
        ):
            raise ValueError(f"ImageMaskFolder: num_classes must be a positive int, got {num_classes!r}")
        values = None
        if label_map is None and ignore_index != 255 and num_classes in (None, 2):
            values = self._mask_values(pairs, ignore_index, None)
            if 255 in values and values <= {0, 255}:
                label_map, num_classes = {255: 1}, 2
                warnings.warn(
                    f"ImageMaskFolder: the masks in {self.masks_dir!r} hold only the values 0 and 255: "
                    f"read as two classes, 255 -> class 1 (label_map={{255: 1}}, num_classes=2); "
                    f"pass ignore_index=255, a label_map or num_classes to read them otherwise",
                    UserWarning,
                    stacklevel=2,
                )
        if num_classes is None:
            if values is None or label_map:
                values = self._mask_values(pairs, ignore_index, label_map)
            num_classes = max(values, default=0) + 1
            if num_classes == 256 and len(values) < 128:
                shown = sorted(values)
                raise ValueError(
                    f"ImageMaskFolder: the masks in {self.masks_dir!r} hold the values "
                    f"{shown[:10]}{' ...' if len(shown) > 10 else ''}: inferring num_classes=256 from the label 255 "
                    f"would train a 256-class problem; 255 is usually a border/ignore label or a 0/255 foreground: "
                    f"pass ignore_index=255 (folder:...,ignore_index=255), a label_map (folder:...,map=255:1), "
                    f"or num_classes=256 to keep every value as a class"
                )
        if class_names is None:
            class_names = tuple(f"class_{c}" for c in range(num_classes))
        if palette is None:
            palette = default_palette(num_classes)
        super().__init__(pairs, num_classes, class_names, palette, ignore_index, label_map)

    @staticmethod
    def _check_label_map(label_map) -> dict:
        if not isinstance(label_map, dict):
            raise TypeError(f"ImageMaskFolder: label_map must be a dict {{stored value: label}}, got {label_map!r}")
        for value, label in label_map.items():
            for what, number in (("stored value", value), ("label", label)):
                if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < 0:
                    raise ValueError(
                        f"ImageMaskFolder: label_map {what} must be an int >= 0, got {number!r} in {label_map!r}"
                    )
        return {int(k): int(v) for k, v in label_map.items()}

    @staticmethod
    def _mask_values(pairs, ignore_index, label_map) -> set:
        """The set of label values over every mask (after ``label_map``, ``ignore_index`` left out)."""
        values: set = set()
        for _, mask_path in pairs:
            mask = apply_label_map(read_mask(mask_path), label_map)
            if ignore_index is not None:
                mask = mask[mask != ignore_index]
            values.update(np.unique(mask).tolist())
        return values
