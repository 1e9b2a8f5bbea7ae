"""Instance segmentation metrics: COCO box and mask AP through pycocotools, and the nuclei metric.

COCO (:func:`coco_evaluate`): pycocotools' ``COCOeval``, the field's reference
tool, run once per IoU type (``"bbox"`` on boxes, ``"segm"`` on masks) on a
ground-truth dict and a result list (:mod:`minitorchseg.data.coco` writes both).
Its twelve summary numbers, under the names of :data:`COCO_STAT_NAMES`:

=========  ==========================================================================
AP         precision averaged over IoU 0.50:0.05:0.95, recall 0:0.01:1, categories
AP50       the same at IoU 0.50 alone;   AP75: at IoU 0.75 alone
APs        AP over objects of area < 32² pixels; APm: 32²..96²; APl: > 96²
AR1        recall averaged over IoU 0.50:0.95 with at most 1 detection per image
AR10       ... at most 10;  AR100: at most 100
ARs        AR100 over small objects; ARm: medium; ARl: large
=========  ==========================================================================

COCOeval reports ``-1`` where nothing can be measured (no ground truth in that
area range); here that is ``nan``. Crowd regions (``iscrowd = 1``) follow
COCOeval: a detection matched to one is ignored, neither true nor false.

Nuclei (:func:`nuclei_score`, the 2018 Data Science Bowl's metric): per image,
for each IoU threshold ``t`` in 0.50, 0.55, ..., 0.95::

    match ground-truth and predicted masks one to one where IoU > t
    (pairs taken in decreasing IoU; a mask matched once is used up)
    TP = matched pairs, FP = unmatched predictions, FN = unmatched ground truths
    precision(t) = TP / (TP + FP + FN)

the image's score is the mean of ``precision(t)`` over the ten thresholds, and the
data set's score is the mean over images. An image with no ground truth and no
prediction scores 1. At ``t >= 0.5`` a prediction has IoU > t with at most one of
several non-overlapping ground-truth masks, so with non-overlapping ground truth
(as in the nuclei data) the decreasing-IoU order gives the largest one-to-one
matching; it only decides which of several duplicate predictions is the true one.
Scores do not enter: predictions are the detections with ``score >= score_threshold``.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

__all__ = [
    "COCO_STAT_NAMES",
    "NUCLEI_THRESHOLDS",
    "coco_evaluate",
    "format_coco_table",
    "mask_iou",
    "match_count",
    "nuclei_image_score",
    "nuclei_score",
]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
NUCLEI_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


def _coco_from_dict(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_evaluate(ground_truth: dict, detections: list, iou_types=("bbox", "segm")) -> dict:
    """``{iou_type: {name: value}}`` for each of ``iou_types`` (``"bbox"``, ``"segm"``), names :data:`COCO_STAT_NAMES`.

    ``ground_truth``: a COCO dict (``images``, ``annotations``, ``categories``);
    ``detections``: a COCO result list (``image_id``, ``category_id``, ``score``,
    ``bbox`` and/or ``segmentation``), every ``image_id`` in the ground truth. For
    ``"bbox"`` the detections are given to ``loadRes`` without ``segmentation``,
    for ``"segm"`` without ``bbox``, as torchvision's ``references/detection/coco_eval.py``
    does (``loadRes`` would otherwise take a mask detection's area from its box).
    COCOeval's ``-1`` becomes ``nan``. pycocotools' printing is silenced.
    """
    from pycocotools.cocoeval import COCOeval

    for iou_type in iou_types:
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"coco_evaluate: iou_types must be 'bbox' or 'segm', got {iou_type!r}")
    known = {image["id"] for image in ground_truth["images"]}
    unknown = sorted({d["image_id"] for d in detections} - known)
    if unknown:
        raise ValueError(f"coco_evaluate: detections for image ids {unknown[:10]} that are not in the ground truth")
    gt = _coco_from_dict(ground_truth)
    results = {}
    for iou_type in iou_types:
        drop = "segmentation" if iou_type == "bbox" else "bbox"
        if iou_type == "segm" and any("segmentation" not in d for d in detections):
            raise ValueError("coco_evaluate: 'segm' needs a segmentation in every detection")
        dts = [{k: v for k, v in d.items() if k != drop} for d in detections]
        with contextlib.redirect_stdout(io.StringIO()):
            if dts:
                dt = gt.loadRes(dts)
            else:
                dt = _coco_from_dict({"images": ground_truth["images"], "annotations": [],
                                      "categories": ground_truth["categories"]})
            evaluator = COCOeval(gt, dt, iou_type)
            evaluator.params.imgIds = sorted(known)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        results[iou_type] = {name: (float("nan") if value == -1 else float(value))
                             for name, value in zip(COCO_STAT_NAMES, evaluator.stats)}
    return results


def format_coco_table(results: dict, nuclei: float | None = None) -> str:
    """A text table: one row per statistic, one column per IoU type (box, mask); the nuclei score last."""
    columns = [t for t in ("bbox", "segm") if t in results]
    titles = {"bbox": "box", "segm": "mask"}
    lines = [f"{'':8s}" + "".join(f"{titles[t]:>9s}" for t in columns)]
    for name in COCO_STAT_NAMES:
        cells = []
        for t in columns:
            value = results[t][name]
            cells.append(f"{'-':>9s}" if np.isnan(value) else f"{value:9.4f}")
        lines.append(f"{name:8s}" + "".join(cells))
    if nuclei is not None:
        lines.append(f"nuclei score (mean over IoU 0.50:0.95 of TP/(TP+FP+FN) per image): {nuclei:.4f}")
    return "\n".join(lines)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(G, P)`` IoU of ``(G, H, W)`` and ``(P, H, W)`` masks (nonzero = inside): ``|a ∩ b| / |a ∪ b|``.

    Two empty masks have IoU 0.
    """
    a = np.asarray(a).reshape(len(a), -1).astype(bool).astype(np.float64)
    b = np.asarray(b).reshape(len(b), -1).astype(bool).astype(np.float64)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_count(iou: np.ndarray, threshold: float) -> int:
    """The number of one-to-one matches with IoU > ``threshold``, pairs taken in decreasing IoU."""
    rows, cols = np.nonzero(iou > threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows, used_cols = set(), set()
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
    return len(used_rows)


def nuclei_image_score(gt_masks: np.ndarray, pred_masks: np.ndarray, thresholds=NUCLEI_THRESHOLDS) -> float:
    """One image's nuclei score: the mean over ``thresholds`` of TP / (TP + FP + FN) (module docstring)."""
    g, p = len(gt_masks), len(pred_masks)
    if g == 0 and p == 0:
        return 1.0
    iou = mask_iou(gt_masks, pred_masks) if g and p else np.zeros((g, p))
    scores = []
    for t in thresholds:
        tp = match_count(iou, t)
        fp, fn = p - tp, g - tp
        scores.append(tp / (tp + fp + fn))
    return float(np.mean(scores))


def nuclei_score(ground_truths, predictions, score_threshold: float = 0.5, mask_threshold: float = 0.5):
    """``(mean score, per-image scores)`` over images (module docstring).

    ``ground_truths``: one ``(G, H, W)`` mask array per image, or a target dict whose
    non-crowd ``masks`` are used; ``predictions``: one ``(P, H, W)`` mask array per
    image, or a model output dict whose ``masks`` (P, 1, H, W) probabilities are
    thresholded at ``mask_threshold`` for the detections with ``score >= score_threshold``.
    """
    if len(ground_truths) != len(predictions):
        raise ValueError(f"nuclei_score: {len(ground_truths)} ground truths but {len(predictions)} predictions")
    per_image = []
    for gt, pred in zip(ground_truths, predictions):
        if isinstance(gt, dict):
            crowd = np.asarray(gt.get("iscrowd", np.zeros(len(gt["masks"]))), dtype=bool)
            gt = np.asarray(gt["masks"])[~crowd]
        if isinstance(pred, dict):
            masks = _host(pred["masks"])
            masks = masks.reshape((masks.shape[0],) + masks.shape[-2:])
            keep = _host(pred["scores"]).reshape(-1) >= score_threshold
            pred = masks[keep] > mask_threshold
        per_image.append(nuclei_image_score(np.asarray(gt), np.asarray(pred)))
    mean = float(np.mean(per_image)) if per_image else float("nan")
    return mean, per_image


def _host(value) -> np.ndarray:
    return np.asarray(value.numpy()) if hasattr(value, "numpy") else np.asarray(value)
