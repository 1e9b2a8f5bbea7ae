"""Segmentation metrics from a confusion matrix.

Notation, for class ``c`` of a confusion matrix ``M`` (rows = truth, columns =
prediction, ``M[t, p]`` = number of pixels of true class ``t`` predicted as ``p``)::

    TP_c = M[c, c]      FP_c = sum_t M[t, c] - TP_c      FN_c = sum_p M[c, p] - TP_c
    T_c  = TP_c + FN_c  (pixels of class c in the truth; its "support")

Per class::

    iou       = TP / (TP + FP + FN)           (Jaccard index)
    precision = TP / (TP + FP)
    recall    = TP / (TP + FN)                (per-class accuracy)
    f1        = 2 precision recall / (precision + recall) = 2 TP / (2 TP + FP + FN)
    dice      = 2 TP / (2 TP + FP + FN)       (equal to f1 for hard labels)

Means (Long et al., FCN, 2015)::

    pixel_accuracy = sum_c TP_c / sum_c T_c
    mean_accuracy  = mean over classes with T_c > 0 of TP_c / T_c
    miou           = mean over classes that are not NaN of iou_c
    fwiou          = sum_c T_c iou_c / sum_c T_c     (frequency-weighted IoU)

Undefined cases:

* a class absent from both the truth and the prediction (``TP + FP + FN = 0``)
  has NaN for every per-class metric and is left out of ``miou`` (and of
  ``mean_accuracy``, ``fwiou``, where it has no pixels anyway);
* otherwise a ``0/0`` ratio is 0, as scikit-learn's ``zero_division=0``: the
  precision of a class in the truth but never predicted, the recall of a class
  predicted but absent from the truth;
* with no pixel counted at all, every number is NaN.

:func:`binary_metrics` applies the same definitions to a foreground/background
pair (the foreground is the positive class), adding ``accuracy = (TP + TN) / n``.
"""

from __future__ import annotations

import math

import numpy as np

from .checks import check_positive_int

__all__ = ["ConfusionMatrix", "binary_metrics", "format_table"]


def _to_numpy(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array: Tensors and torch tensors via ``.numpy()``, CuPy arrays via ``.get()``."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    elif hasattr(x, "get") and hasattr(x, "shape"):
        x = x.get()
    x = np.asarray(x)
    if x.dtype == object:
        raise TypeError(f"{name} must be an array of integer labels, got {type(x).__name__}")
    return x


def _labels(x, name: str) -> np.ndarray:
    x = _to_numpy(x, name)
    if x.dtype == np.bool_:
        return x.astype(np.int64)
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {x.dtype}")
    return x.astype(np.int64, copy=False)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den == 0``."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _mean_defined(values: np.ndarray) -> float:
    """Mean of the non-NaN entries; NaN when there are none (without a RuntimeWarning)."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


class ConfusionMatrix:
    """Accumulates a ``(num_classes, num_classes)`` int64 confusion matrix over batches.

    ``update(pred, target)`` takes integer label arrays of the same (any) shape
    (NumPy arrays, or anything with ``.numpy()`` such as a Tensor). Pixels whose
    target equals ``ignore_index`` are skipped (whatever their prediction); every
    other target and prediction must lie in ``[0, num_classes)``. ``matrix[t, p]``
    counts pixels of true class ``t`` predicted as ``p``. ``compute()`` returns the
    metrics defined in the module docstring, as a dict with the keys ``iou``,
    ``precision``, ``recall``, ``f1``, ``dice`` (``(num_classes,)`` float64 arrays)
    and ``miou``, ``pixel_accuracy``, ``mean_accuracy``, ``fwiou`` (floats).
    A class absent from both truth and prediction is NaN per class and left out
    of the means.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        check_positive_int("ConfusionMatrix", "num_classes", num_classes)
        if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ConfusionMatrix: ignore_index must be an int or None, got {ignore_index!r}")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self) -> None:
        """Set every count back to zero."""
        self.matrix[...] = 0

    def update(self, pred, target) -> ConfusionMatrix:
        """Add the pixels of one batch: ``matrix[target, pred] += 1`` for every counted pixel."""
        pred = _labels(pred, "pred")
        target = _labels(target, "target")
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {pred.shape} and target shape {target.shape} differ")
        pred, target = pred.ravel(), target.ravel()
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            pred, target = pred[keep], target[keep]
        c = self.num_classes
        for name, x in (("target", target), ("pred", pred)):
            bad = (x < 0) | (x >= c)
            if bad.any():
                values = np.unique(x[bad])[:10].tolist()
                raise ValueError(
                    f"{name} holds labels {values} outside [0, {c}) "
                    f"(num_classes={c}, ignore_index={self.ignore_index}); allowed 0..{c - 1} (inclusive)"
                    f"{'' if self.ignore_index is None else f' and {self.ignore_index}'}"
                )
        self.matrix += np.bincount(target * c + pred, minlength=c * c).reshape(c, c)
        return self

    def compute(self) -> dict:
        """The metrics of the counts so far (see the class and module docstrings)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        support = m.sum(axis=1)
        predicted = m.sum(axis=0)
        fp = predicted - tp
        fn = support - tp
        absent = (tp + fp + fn) == 0
        iou = _ratio(tp, tp + fp + fn)
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        dice = _ratio(2 * tp, 2 * tp + fp + fn)
        f1 = dice.copy()
        for per_class in (iou, precision, recall, f1, dice):
            per_class[absent] = np.nan
        total = support.sum()
        in_truth = support > 0
        return {
            "iou": iou,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "dice": dice,
            "miou": _mean_defined(iou),
            "pixel_accuracy": float(tp.sum() / total) if total else math.nan,
            "mean_accuracy": float(np.mean(tp[in_truth] / support[in_truth])) if total else math.nan,
            "fwiou": float(np.sum(support[in_truth] * iou[in_truth]) / total) if total else math.nan,
        }

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index})"


def binary_metrics(pred_mask, true_mask) -> dict:
    """Foreground metrics of a binary prediction: ``precision``, ``recall``, ``accuracy``, ``f1``,
    ``iou``, ``dice`` (floats).

    ``pred_mask`` and ``true_mask`` are bool or 0/1 arrays of the same shape (the
    foreground, value 1, is the positive class)::

        precision = TP / (TP + FP)    recall = TP / (TP + FN)    accuracy = (TP + TN) / n
        f1 = dice = 2 TP / (2 TP + FP + FN)                     iou = TP / (TP + FP + FN)

    With no foreground in either mask every metric but ``accuracy`` is NaN;
    otherwise a ``0/0`` precision or recall is 0.

    Example (the seed's 5x5 case): TP = 8, FN = 5, FP = 0, TN = 12 gives precision 1,
    recall 8/13 = 0.615, accuracy 20/25 = 0.8, F1 = 16/21 = 0.762, IoU = 8/13 = 0.615.
    """
    pred = _to_numpy(pred_mask, "pred_mask")
    true = _to_numpy(true_mask, "true_mask")
    if pred.shape != true.shape:
        raise ValueError(f"pred_mask shape {pred.shape} and true_mask shape {true.shape} differ")
    for name, x in (("pred_mask", pred), ("true_mask", true)):
        if x.dtype != np.bool_:
            if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
                raise TypeError(f"{name} must be a bool or 0/1 array, got dtype {x.dtype}")
            if np.any((x != 0) & (x != 1)):
                values = np.unique(x[(x != 0) & (x != 1)])[:10].tolist()
                raise ValueError(f"{name} must hold only 0 and 1, got values {values}")
    if pred.size == 0:
        raise ValueError("pred_mask and true_mask are empty")
    matrix = ConfusionMatrix(2).update(pred.astype(np.int64), true.astype(np.int64)).matrix
    tn, fp, fn, tp = (int(v) for v in matrix.ravel())
    n = tn + fp + fn + tp
    out = {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": (tp + tn) / n,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "iou": tp / (tp + fp + fn) if tp + fp + fn else 0.0,
        "dice": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }
    if tp + fp + fn == 0:
        for key in ("precision", "recall", "f1", "iou", "dice"):
            out[key] = math.nan
    return out


def _cell(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def format_table(results: dict, class_names=None, digits: int = 4) -> str:
    """A printable table of :meth:`ConfusionMatrix.compute`'s ``results``.

    One row per class (name, IoU, precision, recall, F1, Dice; ``-`` for NaN),
    then ``mIoU``, pixel accuracy, mean accuracy and frequency-weighted IoU.
    ``class_names`` default to the class indices.
    """
    columns = (
        ("IoU", "iou"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("Dice", "dice"),
    )
    num_classes = len(results["iou"])
    if class_names is None:
        class_names = [str(c) for c in range(num_classes)]
    class_names = [str(name) for name in class_names]
    if len(class_names) != num_classes:
        raise ValueError(f"format_table: {len(class_names)} class_names for {num_classes} classes")
    name_width = max([5] + [len(name) for name in class_names])
    width = max(digits + 2, 9)
    header = "class".ljust(name_width) + "".join(title.rjust(width + 2) for title, _ in columns)
    lines = [header, "-" * len(header)]
    for c, name in enumerate(class_names):
        cells = "".join(_cell(float(results[key][c]), digits).rjust(width + 2) for _, key in columns)
        lines.append(name.ljust(name_width) + cells)
    lines.append("-" * len(header))
    summary = (
        ("mIoU", "miou"),
        ("pixel accuracy", "pixel_accuracy"),
        ("mean accuracy", "mean_accuracy"),
        ("fwIoU", "fwiou"),
    )
    for title, key in summary:
        lines.append(f"{title:<15} {_cell(float(results[key]), digits)}")
    return "\n".join(lines)
