"""Class weights by median-frequency balancing (Eigen & Fergus 2015; SegNet's recipe).

For each class ``c``::

    freq(c) = (pixels labelled c) / (total pixels of the images in which c appears)
    w(c)    = (median_c' freq(c') / freq(c))^power          (power 1: SegNet's; 0.5: square-root balancing)

so the class of median frequency gets weight 1, rarer classes more, common ones
less. With ``power = 1`` a class 30 times rarer than the median weighs 30, and a
network trained with such weights over-predicts the rare classes (high recall,
low precision: on CamVid, Pole and Pedestrian predicted over four times their
area); ``power = 0.5`` (weight 5.5 for that class) gives up less precision for
the recall it buys (docs/metrics.md, "How much weight, measured on CamVid").
"Total pixels" counts every labelled pixel of those images (pixels equal
to ``ignore_index`` are left out of both counts). A class that never appears
gets weight 0 and is left out of the median.
"""

from __future__ import annotations

import numpy as np

from minitorchseg.data.base import check_labels

__all__ = ["class_pixel_counts", "median_frequency_weights"]


def _masks(dataset_or_masks):
    """Yield the masks of a data set (``load_mask(i)`` if it has one, else ``ds[i][1]``) or of an iterable."""
    if hasattr(dataset_or_masks, "load_mask") and hasattr(dataset_or_masks, "__len__"):
        for i in range(len(dataset_or_masks)):
            yield dataset_or_masks.load_mask(i)
        return
    if isinstance(dataset_or_masks, np.ndarray) and dataset_or_masks.ndim == 2:
        yield dataset_or_masks
        return
    for item in dataset_or_masks:
        if isinstance(item, tuple) and len(item) == 2:
            item = item[1]
        yield np.asarray(item)


def class_pixel_counts(dataset_or_masks, num_classes: int, ignore_index=None):
    """``(pixels, image_pixels)``, both ``(num_classes,)`` int64.

    ``pixels[c]``: pixels labelled ``c`` over all masks; ``image_pixels[c]``: the
    labelled pixels (``ignore_index`` excluded) of the masks in which ``c`` appears.
    Accepts a data set (items ``(image, mask)``), an iterable of masks, or an
    ``(N, H, W)`` array of masks.
    """
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for k, mask in enumerate(_masks(dataset_or_masks)):
        mask = np.asarray(mask)
        if not np.issubdtype(mask.dtype, np.integer):
            raise TypeError(f"mask {k} must hold integer labels, got dtype {mask.dtype}")
        check_labels(mask, num_classes, ignore_index, f"#{k}")
        labels = mask[mask != ignore_index] if ignore_index is not None else mask.ravel()
        counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
        pixels += counts
        image_pixels[counts > 0] += labels.size
    return pixels, image_pixels


def median_frequency_weights(dataset_or_masks, num_classes: int, ignore_index=None, power: float = 1.0) -> np.ndarray:
    """Median-frequency class weights to the power ``power`` (≥ 0), ``(num_classes,)`` float64 (module docstring)."""
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 <= power < float("inf"):
        raise ValueError(f"median_frequency_weights: power must be a finite number >= 0, got {power!r}")
    pixels, image_pixels = class_pixel_counts(dataset_or_masks, num_classes, ignore_index)
    present = pixels > 0
    if not present.any():
        raise ValueError("median_frequency_weights: no labelled pixel in the masks")
    freq = np.zeros(num_classes, dtype=np.float64)
    freq[present] = pixels[present] / image_pixels[present]
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = (np.median(freq[present]) / freq[present]) ** power
    return weights
