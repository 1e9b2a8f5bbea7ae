"""Segmentation metrics: the seed's worked example, brute-force definitions and scikit-learn."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    jaccard_score,
    precision_recall_fscore_support,
)

from minitorchseg.metrics import ConfusionMatrix, binary_metrics, format_table
from tests.strategies import seeds

EXACT = dict(rtol=1e-12, atol=1e-12)


def close(a, b) -> bool:
    """Equal up to the float64 rounding of two orders of the same few operations."""
    return math.isclose(a, b, rel_tol=EXACT["rtol"], abs_tol=EXACT["atol"])


KEYS = {"iou", "precision", "recall", "f1", "dice", "miou", "pixel_accuracy", "mean_accuracy", "fwiou"}

# The seed lecture's 5x5 example: 13 foreground pixels, 8 of them found, no false alarm.
SEED_TRUE = np.array(
    [
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]
)
SEED_PRED = np.array(
    [
        [0, 1, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ]
)


def test_seed_worked_example():
    tp = int(np.sum((SEED_PRED == 1) & (SEED_TRUE == 1)))
    fn = int(np.sum((SEED_PRED == 0) & (SEED_TRUE == 1)))
    fp = int(np.sum((SEED_PRED == 1) & (SEED_TRUE == 0)))
    tn = int(np.sum((SEED_PRED == 0) & (SEED_TRUE == 0)))
    assert (tp, fn, fp, tn) == (8, 5, 0, 12)
    m = binary_metrics(SEED_PRED, SEED_TRUE)
    assert set(m) == {"precision", "recall", "accuracy", "f1", "iou", "dice"}
    assert m["precision"] == 1.0
    assert round(m["recall"], 3) == 0.615
    assert m["accuracy"] == 0.8
    assert round(m["f1"], 3) == 0.762
    assert round(m["iou"], 3) == 0.615
    assert round(m["dice"], 3) == 0.762
    assert close(m["recall"], 8 / 13)
    assert close(m["f1"], 16 / 21)
    assert close(m["iou"], 8 / 13)

    cm = ConfusionMatrix(2).update(SEED_PRED, SEED_TRUE)
    np.testing.assert_array_equal(cm.matrix, [[12, 0], [5, 8]])
    r = cm.compute()
    assert r["precision"][1] == 1.0 and r["pixel_accuracy"] == 0.8
    assert close(r["iou"][1], 8 / 13) and close(r["f1"][1], 16 / 21)
    assert close(r["iou"][0], 12 / 17) and math.isclose(r["miou"], (12 / 17 + 8 / 13) / 2)


def test_literal_multiclass_example():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    r = ConfusionMatrix(4).update(pred, target).compute()
    assert set(r) == KEYS
    np.testing.assert_array_equal(
        ConfusionMatrix(4).update(pred, target).matrix[:3, :3], [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    )
    np.testing.assert_allclose(r["iou"][:3], [1 / 3, 2 / 3, 1 / 2], **EXACT)
    np.testing.assert_allclose(r["precision"][:3], [1 / 2, 2 / 3, 1], **EXACT)
    np.testing.assert_allclose(r["recall"][:3], [1 / 2, 1, 1 / 2], **EXACT)
    np.testing.assert_allclose(r["dice"][:3], [1 / 2, 4 / 5, 2 / 3], **EXACT)
    assert np.isnan(r["iou"][3]) and np.isnan(r["f1"][3])
    assert close(r["miou"], (1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert close(r["pixel_accuracy"], 4 / 6)
    assert close(r["mean_accuracy"], (1 / 2 + 1 + 1 / 2) / 3)
    assert close(r["fwiou"], (2 * 1 / 3 + 2 * 2 / 3 + 2 * 1 / 2) / 6)


def brute_force(pred, target, num_classes, ignore_index):
    """Every metric by its definition, counting pixels one by one."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        if t != ignore_index:
            matrix[t, p] += 1
    per = {k: np.full(num_classes, np.nan) for k in ("iou", "precision", "recall", "f1", "dice")}
    support = matrix.sum(axis=1)
    for c in range(num_classes):
        tp = matrix[c, c]
        fp = matrix[:, c].sum() - tp
        fn = matrix[c, :].sum() - tp
        if tp + fp + fn == 0:
            continue
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per["iou"][c] = tp / (tp + fp + fn)
        per["precision"][c] = precision
        per["recall"][c] = recall
        per["f1"][c] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per["dice"][c] = 2 * tp / (2 * tp + fp + fn)
    total = support.sum()
    defined = [c for c in range(num_classes) if not np.isnan(per["iou"][c])]
    in_truth = [c for c in range(num_classes) if support[c] > 0]
    per["miou"] = sum(per["iou"][c] for c in defined) / len(defined) if defined else math.nan
    per["pixel_accuracy"] = np.trace(matrix) / total if total else math.nan
    per["mean_accuracy"] = (
        sum(matrix[c, c] / support[c] for c in in_truth) / len(in_truth) if total else math.nan
    )
    per["fwiou"] = sum(support[c] * per["iou"][c] for c in in_truth) / total if total else math.nan
    return matrix, per


@st.composite
def label_maps(draw):
    """(pred, target, num_classes, ignore_index, batch split points) on a small random grid."""
    num_classes = draw(st.integers(1, 6))
    n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    ignore_index = draw(st.sampled_from([None, 255, num_classes, 0]))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    used = draw(st.integers(1, num_classes))
    target = rng.integers(0, used, size=(n, h, w))
    pred = np.where(rng.random((n, h, w)) < 0.5, target, rng.integers(0, num_classes, size=(n, h, w)))
    if ignore_index is not None:
        ignored = rng.random((n, h, w)) < 0.2
        target = np.where(ignored, ignore_index, target)
        pred = np.where(ignored & (rng.random((n, h, w)) < 0.5), 200, pred)
    splits = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return pred, target, num_classes, ignore_index, splits


def update_in_batches(cm, pred, target, splits):
    bounds = [0, *splits, len(pred)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        cm.update(pred[a:b], target[a:b])
    return cm


def assert_results_equal(r, expected, num_classes):
    assert set(r) == KEYS
    for key in ("iou", "precision", "recall", "f1", "dice"):
        assert r[key].shape == (num_classes,) and r[key].dtype == np.float64
        np.testing.assert_allclose(r[key], expected[key], equal_nan=True, **EXACT, err_msg=key)
    for key in ("miou", "pixel_accuracy", "mean_accuracy", "fwiou"):
        assert isinstance(r[key], float)
        np.testing.assert_allclose(r[key], expected[key], equal_nan=True, **EXACT, err_msg=key)


@settings(max_examples=40, deadline=None)
@given(label_maps())
def test_confusion_matrix_vs_brute_force(case):
    pred, target, num_classes, ignore_index, splits = case
    cm = update_in_batches(ConfusionMatrix(num_classes, ignore_index), pred, target, splits)
    matrix, expected = brute_force(pred, target, num_classes, ignore_index)
    assert cm.matrix.dtype == np.int64
    np.testing.assert_array_equal(cm.matrix, matrix)
    assert_results_equal(cm.compute(), expected, num_classes)
    whole = ConfusionMatrix(num_classes, ignore_index).update(pred, target)
    np.testing.assert_array_equal(whole.matrix, cm.matrix)


@settings(max_examples=40, deadline=None)
@given(label_maps())
def test_confusion_matrix_vs_sklearn(case):
    pred, target, num_classes, ignore_index, splits = case
    cm = update_in_batches(ConfusionMatrix(num_classes, ignore_index), pred, target, splits)
    r = cm.compute()
    keep = target != ignore_index if ignore_index is not None else np.ones(target.shape, dtype=bool)
    y_true, y_pred = target[keep], pred[keep]
    labels = list(range(num_classes))
    if y_true.size == 0:
        assert all(np.isnan(r[k]).all() for k in KEYS)
        return
    present = np.isin(labels, np.union1d(y_true, y_pred))
    assert np.isnan(r["iou"][~present]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matrix = confusion_matrix(y_true, y_pred, labels=labels)
        iou = jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0
        )
        miou = jaccard_score(y_true, y_pred, labels=np.flatnonzero(present), average="macro", zero_division=0)
        balanced = balanced_accuracy_score(y_true, y_pred)
        fwiou = jaccard_score(y_true, y_pred, labels=np.unique(y_true), average="weighted", zero_division=0)
    np.testing.assert_array_equal(cm.matrix, matrix)
    for key, ref in (("iou", iou), ("precision", precision), ("recall", recall), ("f1", f1), ("dice", f1)):
        np.testing.assert_allclose(r[key][present], ref[present], **EXACT, err_msg=key)
    np.testing.assert_allclose(r["miou"], miou, **EXACT)
    np.testing.assert_allclose(r["pixel_accuracy"], accuracy_score(y_true, y_pred), **EXACT)
    np.testing.assert_allclose(r["mean_accuracy"], balanced, **EXACT)
    np.testing.assert_allclose(r["fwiou"], fwiou, **EXACT)


@settings(max_examples=40, deadline=None)
@given(
    seeds,
    st.integers(1, 6),
    st.integers(1, 6),
    st.floats(0.0, 1.0),
    st.sampled_from([bool, np.int64, np.float32]),
)
def test_binary_metrics_vs_definition_and_sklearn(seed, h, w, p_fg, dtype):
    rng = np.random.default_rng(seed)
    true = rng.random((h, w)) < p_fg
    pred = np.where(rng.random((h, w)) < 0.7, true, rng.random((h, w)) < p_fg)
    m = binary_metrics(pred.astype(dtype), true.astype(dtype))
    tp = int(np.sum(pred & true))
    fp = int(np.sum(pred & ~true))
    fn = int(np.sum(~pred & true))
    tn = int(np.sum(~pred & ~true))
    assert close(m["accuracy"], (tp + tn) / (h * w))
    if tp + fp + fn == 0:
        assert all(math.isnan(m[k]) for k in ("precision", "recall", "f1", "iou", "dice"))
        return
    assert close(m["iou"], tp / (tp + fp + fn))
    assert close(m["dice"], 2 * tp / (2 * tp + fp + fn))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = precision_recall_fscore_support(
            true.ravel(), pred.ravel(), labels=[True], average=None, zero_division=0
        )
        iou = jaccard_score(true.ravel(), pred.ravel(), pos_label=True, zero_division=0)
    assert close(m["precision"], precision[0])
    assert close(m["recall"], recall[0])
    assert close(m["f1"], f1[0])
    assert close(m["iou"], iou)


def test_nan_rule_and_means():
    cm = ConfusionMatrix(4)
    cm.update(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]))
    r = cm.compute()
    assert np.isnan(r["iou"][3]) and np.isnan(r["precision"][3]) and np.isnan(r["dice"][3])
    assert r["recall"][2] == 0.0 and r["precision"][2] == 0.0 and r["iou"][2] == 0.0
    assert close(r["miou"], (1 / 2 + 1 / 3 + 0.0) / 3)
    assert close(r["mean_accuracy"], (1 + 1 / 3) / 2)
    cm.reset()
    assert cm.matrix.sum() == 0
    r = cm.compute()
    assert all(np.isnan(r[k]).all() for k in KEYS)
    m = binary_metrics(np.zeros((3, 3), dtype=bool), np.zeros((3, 3), dtype=bool))
    assert m["accuracy"] == 1.0 and math.isnan(m["iou"]) and math.isnan(m["precision"])


def test_update_accepts_tensors():
    import minitorchseg as mts

    target = np.array([[0, 1], [2, 1]])
    pred = np.array([[0, 1], [1, 1]])
    expected = ConfusionMatrix(3).update(pred, target).matrix
    got = ConfusionMatrix(3).update(mts.tensor(pred), mts.tensor(target)).matrix
    np.testing.assert_array_equal(got, expected)
    torch = pytest.importorskip("torch")
    got = ConfusionMatrix(3).update(torch.tensor(pred), torch.tensor(target)).matrix
    np.testing.assert_array_equal(got, expected)


def test_errors():
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match=r"pred shape \(2, 3\) and target shape \(3, 2\) differ"):
        cm.update(np.zeros((2, 3), dtype=np.int64), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target holds labels \[3\] outside \[0, 3\)"):
        cm.update(np.array([0, 1]), np.array([3, 255]))
    with pytest.raises(ValueError, match=r"pred holds labels \[-1\] outside \[0, 3\)"):
        cm.update(np.array([-1, 1]), np.array([0, 1]))
    with pytest.raises(TypeError, match="pred must hold integer class labels, got dtype float64"):
        cm.update(np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        ConfusionMatrix(0)
    assert cm.matrix.sum() == 0
    with pytest.raises(ValueError, match=r"pred_mask shape \(2,\) and true_mask shape \(3,\) differ"):
        binary_metrics(np.zeros(2, dtype=bool), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match=r"true_mask must hold only 0 and 1, got values \[2\]"):
        binary_metrics(np.array([0, 1]), np.array([2, 1]))


def test_format_table():
    r = ConfusionMatrix(3).update(np.array([0, 1, 1]), np.array([0, 1, 0])).compute()
    table = format_table(r, ["road", "car", "sky"])
    lines = table.splitlines()
    assert lines[0].split() == ["class", "IoU", "precision", "recall", "F1", "Dice"]
    assert lines[2].split() == ["road", "0.5000", "1.0000", "0.5000", "0.6667", "0.6667"]
    assert lines[4].split() == ["sky", "-", "-", "-", "-", "-"]
    assert "mIoU" in table and f"{r['miou']:.4f}" in table and "fwIoU" in table
    assert format_table(r).splitlines()[2].split()[0] == "0"
    with pytest.raises(ValueError, match="2 class_names for 3 classes"):
        format_table(r, ["a", "b"])
