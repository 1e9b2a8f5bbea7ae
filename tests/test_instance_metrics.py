"""Instance metrics: the nuclei score on a hand-computed example, IoU and matching, and COCO AP through
pycocotools: our exported ground truth and detections, loaded by pycocotools itself, give the AP we report."""

import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from minitorchseg.data.coco import coco_detections, coco_ground_truth, write_coco_json
from minitorchseg.data.instances import InstanceShapes
from minitorchseg.metrics_instance import (
    COCO_STAT_NAMES,
    NUCLEI_THRESHOLDS,
    coco_evaluate,
    format_coco_table,
    mask_iou,
    match_count,
    nuclei_image_score,
    nuclei_score,
)


def test_thresholds():
    assert NUCLEI_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_nuclei_score_hand_computed():
    # Ground truth: A (4x4 = 16 px) and B (2x4 = 8 px). Predictions: A exactly (IoU 1), 5 of B's 8 pixels
    # (IoU 5/8 = 0.625), and C where there is nothing (a false positive).
    gt = np.zeros((2, 10, 10), np.uint8)
    gt[0, 0:4, 0:4] = 1
    gt[1, 6:8, 0:4] = 1
    pred = np.zeros((3, 10, 10), np.uint8)
    pred[0] = gt[0]
    pred[1, 6, 0:4] = 1
    pred[1, 7, 0] = 1
    pred[2, 0:3, 7:10] = 1
    np.testing.assert_allclose(mask_iou(gt, pred), [[1, 0, 0], [0, 0.625, 0]], rtol=0, atol=1e-15)
    # t = 0.50, 0.55, 0.60 (0.625 > t): TP 2, FP 1, FN 0 -> 2/3.
    # t = 0.65 ... 0.95 (7 thresholds): TP 1, FP 2, FN 1 -> 1/4.
    expected = (3 * (2 / 3) + 7 * (1 / 4)) / 10
    assert expected == pytest.approx(0.375, abs=1e-15)
    assert nuclei_image_score(gt, pred) == pytest.approx(0.375, abs=1e-12)
    # The data set's score is the mean over images; a perfect image and an empty/empty image score 1.
    mean, per_image = nuclei_score([gt, gt, np.zeros((0, 10, 10))], [pred, gt, np.zeros((0, 10, 10))])
    assert per_image == pytest.approx([0.375, 1.0, 1.0]) and mean == pytest.approx(2.375 / 3)
    assert nuclei_image_score(gt, np.zeros((0, 10, 10))) == 0.0


def test_nuclei_score_reads_model_outputs():
    gt = np.zeros((1, 6, 6), np.uint8)
    gt[0, 1:4, 1:4] = 1
    probabilities = np.zeros((2, 1, 6, 6), np.float32)
    probabilities[0, 0, 1:4, 1:4] = 0.8
    probabilities[1, 0, 0:2, 4:6] = 0.9
    output = {"masks": probabilities, "scores": np.array([0.9, 0.3]), "boxes": np.zeros((2, 4)),
              "labels": np.ones(2, np.int64)}
    target = {"masks": gt, "iscrowd": np.zeros(1, np.int64)}
    assert nuclei_score([target], [output])[0] == 1.0
    assert nuclei_score([target], [output], score_threshold=0.2)[0] == pytest.approx(0.5)


def test_mask_iou_and_matching_against_brute_force():
    rng = np.random.default_rng(0)
    a = rng.random((4, 7, 9)) < 0.4
    b = rng.random((5, 7, 9)) < 0.4
    iou = mask_iou(a, b)
    for i in range(4):
        for j in range(5):
            inter, union = np.sum(a[i] & b[j]), np.sum(a[i] | b[j])
            assert iou[i, j] == pytest.approx(inter / union, abs=1e-15)
    # Duplicates: two predictions on one ground truth give one match.
    assert match_count(np.array([[0.9, 0.8]]), 0.5) == 1
    assert match_count(np.array([[0.9, 0.8], [0.0, 0.7]]), 0.5) == 2
    # Pairs are taken in decreasing IoU: (0, 0) first uses up row 0 and column 0. (Two ground-truth masks can
    # only both overlap one prediction by IoU > 0.5 when they overlap each other.)
    assert match_count(np.array([[0.9, 0.8], [0.7, 0.0]]), 0.5) == 1
    assert match_count(np.array([[0.5]]), 0.5) == 0


def _shapes_case(num_images=6, seed=0):
    """Ground truth of synthetic shapes, and detections made from it: every object found with a mask
    eroded by one pixel on one side, every other object's box shifted, plus a false positive per image."""
    ds = InstanceShapes(num_images, size=32, seed=seed, max_objects=4, min_size=6, max_size=14)
    rng = np.random.default_rng(seed)
    predictions = []
    for i in range(len(ds)):
        target = ds[i][1]
        masks = target["masks"].astype(np.float32) * 0.9
        masks[::2, :, :1] = 0
        boxes = target["boxes"].copy()
        boxes[1::2] += np.float32(1.5)
        extra = np.zeros((1, 32, 32), np.float32)
        extra[0, 0:3, 0:3] = 0.8
        predictions.append({
            "boxes": np.concatenate([boxes, [[0, 0, 3, 3]]]).astype(np.float32),
            "labels": np.concatenate([target["labels"], [1]]),
            "scores": np.concatenate([rng.uniform(0.5, 1.0, len(boxes)), [0.7]]),
            "masks": np.concatenate([masks, extra])[:, None],
        })
    return ds, predictions


def test_export_round_trip_gives_our_ap(tmp_path):
    ds, predictions = _shapes_case()
    gt = coco_ground_truth(ds)
    dets = coco_detections(predictions, ds.image_ids, ds.category_ids)
    ours = coco_evaluate(gt, dets)
    write_coco_json(tmp_path / "gt.json", gt)
    write_coco_json(tmp_path / "dt.json", dets)
    ref_gt = COCO(str(tmp_path / "gt.json"))
    loaded = json.loads((tmp_path / "dt.json").read_text())
    for iou_type, drop in (("bbox", "segmentation"), ("segm", "bbox")):
        ref_dt = ref_gt.loadRes([{k: v for k, v in d.items() if k != drop} for d in loaded])
        evaluator = COCOeval(ref_gt, ref_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        for name, value in zip(COCO_STAT_NAMES, evaluator.stats):
            got = ours[iou_type][name]
            assert (math.isnan(got) and value == -1) or got == value, (iou_type, name, got, value)
    assert 0.3 < ours["segm"]["AP"] < 1.0 and 0.3 < ours["bbox"]["AP"] < 1.0
    table = format_coco_table(ours, nuclei=0.5)
    assert f"{ours['segm']['AP']:9.4f}" in table.splitlines()[1] and "nuclei score" in table


def test_perfect_and_empty_detections():
    ds, _ = _shapes_case(num_images=4, seed=1)
    gt = coco_ground_truth(ds)
    perfect = [{"boxes": t["boxes"], "labels": t["labels"], "scores": np.ones(len(t["labels"])),
                "masks": t["masks"][:, None].astype(np.float32)} for t in (ds[i][1] for i in range(len(ds)))]
    results = coco_evaluate(gt, coco_detections(perfect, ds.image_ids, ds.category_ids))
    for iou_type in ("bbox", "segm"):
        assert results[iou_type]["AP"] == pytest.approx(1.0) and results[iou_type]["AP75"] == pytest.approx(1.0)
        assert math.isnan(results[iou_type]["APl"])
    empty = coco_evaluate(gt, [])
    assert empty["segm"]["AP"] == 0.0 and empty["bbox"]["AR100"] == 0.0


def test_crowd_regions_are_neither_true_nor_false():
    h = w = 20
    gt_mask = np.zeros((h, w), np.uint8)
    gt_mask[2:8, 2:8] = 1
    crowd = np.zeros((h, w), np.uint8)
    crowd[10:18, 10:18] = 1
    from minitorchseg.data.coco import encode_mask

    gt = {"images": [{"id": 1, "width": w, "height": h, "file_name": "x.png"}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": encode_mask(gt_mask),
               "area": 36.0, "bbox": [2, 2, 6, 6]},
              {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": encode_mask(crowd),
               "area": 64.0, "bbox": [10, 10, 8, 8]}]}
    on_crowd = np.zeros((h, w), np.uint8)
    on_crowd[11:15, 11:15] = 1
    prediction = {"boxes": np.array([[2, 2, 8, 8], [11, 11, 15, 15]], np.float32), "labels": np.array([1, 1]),
                  "scores": np.array([0.6, 0.9]), "masks": np.stack([gt_mask, on_crowd])[:, None].astype(np.float32)}
    results = coco_evaluate(gt, coco_detections([prediction], [1], (1,)))
    assert results["segm"]["AP"] == pytest.approx(1.0) and results["bbox"]["AP"] == pytest.approx(1.0)


def test_bad_detections():
    ds, predictions = _shapes_case(num_images=2)
    gt = coco_ground_truth(ds)
    dets = coco_detections(predictions, [1, 77], ds.category_ids)
    with pytest.raises(ValueError, match=r"image ids \[77\] that are not in the ground truth"):
        coco_evaluate(gt, dets)
    with pytest.raises(ValueError, match="iou_types must be 'bbox' or 'segm', got 'keypoints'"):
        coco_evaluate(gt, [], iou_types=("keypoints",))
    bad = dict(predictions[0], labels=np.full(len(predictions[0]["labels"]), 9))
    with pytest.raises(ValueError, match=r"labels must be in 1..3, got \[9\]"):
        coco_detections([bad], [1], ds.category_ids)
