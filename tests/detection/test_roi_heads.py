"""RoIHeads, its losses, mask projection/inference/pasting and the head layers against torchvision 0.29.1.

Each piece gets the same inputs and copied weights as torchvision's
(``models/detection/roi_heads.py``, ``faster_rcnn.py``, ``mask_rcnn.py``); float64
to ~1e-10, float32 to ~1e-5, selections and integer geometry exactly.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection import faster_rcnn as tv_faster
from torchvision.models.detection import mask_rcnn as tv_mask
from torchvision.models.detection import roi_heads as tv_roi
from torchvision.ops import MultiScaleRoIAlign as TVMultiScaleRoIAlign

import minitorchseg as mts
from minitorchseg.autograd import gradcheck
from minitorchseg.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from minitorchseg.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from minitorchseg.models.detection.roi_heads import (
    RoIHeads,
    expand_boxes,
    fastrcnn_loss,
    maskrcnn_inference,
    maskrcnn_loss,
    paste_masks_in_image,
    project_masks_on_boxes,
)
from minitorchseg.ops import MultiScaleRoIAlign

from ..strategies import TOL, dtypes, seeds
from ..torch_ref import upstream
from .rcnn_common import assert_grads_equal, copy_into_ours, copy_into_torch, replay_torch_randperm

few = settings(max_examples=6, deadline=None)
NUM_CLASSES = 4
CHANNELS = 3
IMAGE_SIZES = [(64, 80), (56, 72)]


def _torch_dtype(dtype):
    return getattr(torch, np.dtype(dtype).name)


def _boxes(rng, n, h, w, dtype, low=4.0, high=40.0):
    xy = rng.uniform(0, [w - low, h - low], size=(n, 2))
    wh = rng.uniform(low, high, size=(n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1).astype(dtype)


def test_head_layers_keys_match_torchvision():
    assert list(TwoMLPHead(12, 8).state_dict()) == list(tv_faster.TwoMLPHead(12, 8).state_dict())
    assert list(FastRCNNPredictor(8, 3).state_dict()) == list(tv_faster.FastRCNNPredictor(8, 3).state_dict())
    assert list(MaskRCNNHeads(4, (5, 6, 7, 8), 1).state_dict()) == list(
        tv_mask.MaskRCNNHeads(4, (5, 6, 7, 8), 1).state_dict())
    assert list(MaskRCNNHeads(4, (5, 6), 1).state_dict())[:2] == ["0.0.weight", "0.0.bias"]
    assert list(MaskRCNNPredictor(4, 5, 3).state_dict()) == [
        "conv5_mask.weight", "conv5_mask.bias", "mask_fcn_logits.weight", "mask_fcn_logits.bias"]
    assert list(MaskRCNNPredictor(4, 5, 3).state_dict()) == list(tv_mask.MaskRCNNPredictor(4, 5, 3).state_dict())


@few
@given(seed=seeds, dtype=dtypes, dilation=st.sampled_from([1, 2]))
def test_head_layers_forward_and_gradients_equal_torchvision(seed, dtype, dilation):
    torch.manual_seed(seed % 2**31)
    tdtype = _torch_dtype(dtype)
    pairs = [
        (TwoMLPHead(CHANNELS * 49, 16), tv_faster.TwoMLPHead(CHANNELS * 49, 16), (5, CHANNELS, 7, 7)),
        (FastRCNNPredictor(16, NUM_CLASSES), tv_faster.FastRCNNPredictor(16, NUM_CLASSES), (5, 16)),
        (MaskRCNNHeads(CHANNELS, (6, 6, 6, 5), dilation), tv_mask.MaskRCNNHeads(CHANNELS, (6, 6, 6, 5), dilation),
         (3, CHANNELS, 14, 14)),
        (MaskRCNNPredictor(5, 6, NUM_CLASSES), tv_mask.MaskRCNNPredictor(5, 6, NUM_CLASSES), (3, 5, 14, 14)),
    ]
    tol = TOL[np.dtype(dtype)]
    for ours, theirs, shape in pairs:
        theirs.to(tdtype)
        copy_into_ours(theirs, ours)
        ours.to(dtype)
        x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
        mine_x, ref_x = mts.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, ref = ours(mine_x), theirs(ref_x)
        out, ref = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
        for o, r in zip(out, ref):
            assert o.shape == tuple(r.shape)
            np.testing.assert_allclose(o.numpy(), r.detach().numpy(), **tol)
        total = sum((o * mts.tensor(upstream(o.shape, dtype, i))).sum() for i, o in enumerate(out))
        ref_total = sum((r * torch.tensor(upstream(tuple(r.shape), dtype, i))).sum() for i, r in enumerate(ref))
        total.backward()
        ref_total.backward()
        assert_grads_equal(ours, theirs, tol)
        np.testing.assert_allclose(mine_x.grad.numpy(), ref_x.grad.numpy(), **tol)


@few
@given(seed=seeds, dtype=dtypes, positives=st.sampled_from([0, 1, 5]))
def test_fastrcnn_loss_equals_torchvision(seed, dtype, positives):
    rng = np.random.default_rng(seed)
    counts = (7, 4)
    labels = np.zeros(sum(counts), np.int64)
    labels[rng.permutation(sum(counts))[:positives]] = rng.integers(1, NUM_CLASSES, positives)
    logits = rng.standard_normal((sum(counts), NUM_CLASSES)).astype(dtype)
    deltas = rng.standard_normal((sum(counts), 4 * NUM_CLASSES)).astype(dtype) * 0.2
    targets = rng.standard_normal((sum(counts), 4)).astype(dtype) * 0.2
    split = [labels[:counts[0]], labels[counts[0]:]], [targets[:counts[0]], targets[counts[0]:]]
    m_logits, m_deltas = mts.tensor(logits, requires_grad=True), mts.tensor(deltas, requires_grad=True)
    t_logits, t_deltas = torch.tensor(logits, requires_grad=True), torch.tensor(deltas, requires_grad=True)
    mine = fastrcnn_loss(m_logits, m_deltas, *split)
    ref = tv_roi.fastrcnn_loss(t_logits, t_deltas, [torch.tensor(x) for x in split[0]],
                               [torch.tensor(x) for x in split[1]])
    tol = TOL[np.dtype(dtype)]
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.numpy(), r.detach().numpy(), **tol)
    (mine[0] * 0.7 + mine[1] * 1.3).backward()
    (ref[0] * 0.7 + ref[1] * 1.3).backward()
    np.testing.assert_allclose(m_logits.grad.numpy(), t_logits.grad.numpy(), **tol)
    np.testing.assert_allclose(m_deltas.grad.numpy(), t_deltas.grad.numpy(), **tol)


def _masks(rng, n, h, w):
    """Binary masks: an ellipse per object, so projections have soft borders."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, h, w), np.uint8)
    for k in range(n):
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(4, h / 3), rng.uniform(4, w / 3)
        out[k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return out


@few
@given(seed=seeds, dtype=dtypes)
def test_project_masks_on_boxes_equals_torchvision(seed, dtype):
    rng = np.random.default_rng(seed)
    masks = _masks(rng, 3, 40, 50)
    boxes = _boxes(rng, 6, 40, 50, dtype)
    idx = rng.integers(0, 3, 6)
    mine = project_masks_on_boxes(mts.tensor(masks), mts.tensor(boxes), mts.tensor(idx), 28)
    ref = tv_roi.project_masks_on_boxes(torch.tensor(masks), torch.tensor(boxes), torch.tensor(idx), 28)
    assert mine.dtype == np.dtype(dtype) and mine.shape == (6, 28, 28)
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), **TOL[np.dtype(dtype)])


def test_project_masks_literal_box_edge_is_soft():
    """An all-ones square on rows/columns 10..19 projected onto its box (10, 10, 20, 20) at M = 4: bins 2.5 wide,
    adaptive sampling ceil(2.5) = 3 samples per bin. The last bin samples 17.92, 18.75 and 19.58; the last lies
    between pixel 19 (1) and pixel 20 (0) with weight 0.42 on pixel 19: (1 + 1 + 5/12) / 3 = 29/36 (aligned=False)."""
    mask = np.zeros((1, 30, 30))
    mask[0, 10:20, 10:20] = 1
    out = project_masks_on_boxes(mts.tensor(mask), np.array([[10.0, 10.0, 20.0, 20.0]]), np.array([0]), 4).numpy()
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0, 29 / 36], rtol=1e-12)
    np.testing.assert_allclose(out[0, 3, 3], (29 / 36) ** 2, rtol=1e-12)


def test_mask_projection_path_gradcheck_float64():
    """Finite differences through project_masks_on_boxes (w.r.t. the masks) and maskrcnn_loss (w.r.t. both)."""
    rng = np.random.default_rng(3)
    masks = mts.tensor(rng.uniform(0.05, 0.95, size=(2, 12, 14)), requires_grad=True)
    boxes = _boxes(rng, 3, 12, 14, np.float64, low=2.0, high=9.0)
    idx = np.array([1, 0, 1])
    assert gradcheck(lambda m: project_masks_on_boxes(m, boxes, idx, 5), [masks])
    logits = mts.tensor(rng.standard_normal((3, NUM_CLASSES, 5, 5)), requires_grad=True)
    labels = np.array([2, 3], np.int64)
    assert gradcheck(lambda lg, m: maskrcnn_loss(lg, [boxes], [m], [labels], [idx]).reshape(1), [logits, masks])


@few
@given(seed=seeds, dtype=dtypes, counts=st.sampled_from([(3, 2), (0, 4), (0, 0)]))
def test_maskrcnn_loss_equals_torchvision(seed, dtype, counts):
    rng = np.random.default_rng(seed)
    sizes = [(40, 50), (36, 44)]
    gt_masks = [_masks(rng, 2, h, w) for h, w in sizes]
    gt_labels = [rng.integers(1, NUM_CLASSES, 2) for _ in sizes]
    proposals = [_boxes(rng, n, h, w, dtype) for n, (h, w) in zip(counts, sizes)]
    matched = [rng.integers(0, 2, n) for n in counts]
    logits = rng.standard_normal((sum(counts), NUM_CLASSES, 28, 28)).astype(dtype)
    m_logits, t_logits = mts.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    mine = maskrcnn_loss(m_logits, proposals, [mts.tensor(m) for m in gt_masks], gt_labels, matched)
    ref = tv_roi.maskrcnn_loss(t_logits, [torch.tensor(p) for p in proposals], [torch.tensor(m) for m in gt_masks],
                               [torch.tensor(x) for x in gt_labels], [torch.tensor(x) for x in matched])
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(mine.numpy(), ref.detach().numpy(), **tol)
    mine.backward()
    ref.backward()
    np.testing.assert_allclose(m_logits.grad.numpy(), t_logits.grad.numpy(), **tol)


def test_maskrcnn_inference_picks_each_detections_class():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, NUM_CLASSES, 28, 28)).astype(np.float32)
    labels = [np.array([1, 3, 2]), np.array([], np.int64), np.array([2, 2])]
    mine = maskrcnn_inference(mts.tensor(logits), labels)
    ref = tv_roi.maskrcnn_inference(torch.tensor(logits), [torch.tensor(x) for x in labels])
    assert [m.shape for m in mine] == [tuple(r.shape) for r in ref] == [(3, 1, 28, 28), (0, 1, 28, 28), (2, 1, 28, 28)]
    for m, r in zip(mine, ref):
        np.testing.assert_allclose(m.numpy(), r.numpy(), **TOL[np.dtype(np.float32)])


@few
@given(seed=seeds, dtype=dtypes, padding=st.sampled_from([1, 2]))
def test_paste_masks_in_image_equals_torchvision(seed, dtype, padding):
    """Boxes inside, across the border and partly outside the image; integer placement exact, values to TOL."""
    rng = np.random.default_rng(seed)
    h, w = 37, 45
    boxes = _boxes(rng, 6, h, w, dtype, low=1.0, high=30.0)
    boxes[0] = [-3.3, -2.7, 12.6, 9.1]
    boxes[1] = [30.2, 25.9, 47.5, 40.2]
    masks = rng.uniform(size=(6, 1, 28, 28)).astype(dtype)
    mine = paste_masks_in_image(mts.tensor(masks), boxes, (h, w), padding)
    ref = tv_roi.paste_masks_in_image(torch.tensor(masks), torch.tensor(boxes), (h, w), padding)
    assert mine.shape == tuple(ref.shape) and mine.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(mine.numpy() != 0, ref.numpy() != 0)
    scale = (28 + 2 * padding) / 28
    np.testing.assert_array_equal(expand_boxes(boxes, scale).astype(np.int64),
                                  tv_roi.expand_boxes(torch.tensor(boxes), scale).to(torch.int64).numpy())
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), **TOL[np.dtype(dtype)])
    empty = paste_masks_in_image(mts.tensor(masks[:0]), boxes[:0], (h, w))
    assert empty.shape == (0, 1, h, w)


def _heads_pair(dtype, seed, batch_size=24, detections=7, score_thresh=0.05):
    """RoIHeads with a box and a mask branch (small widths), torchvision's and ours with the same weights."""
    torch.manual_seed(seed % 2**31)
    names = ["0", "1"]
    theirs = tv_roi.RoIHeads(
        TVMultiScaleRoIAlign(names, 7, 2), tv_faster.TwoMLPHead(CHANNELS * 49, 32),
        tv_faster.FastRCNNPredictor(32, NUM_CLASSES), 0.5, 0.5, batch_size, 0.25, None, score_thresh, 0.5, detections,
        TVMultiScaleRoIAlign(names, 14, 2), tv_mask.MaskRCNNHeads(CHANNELS, (6, 6, 6, 6), 1),
        tv_mask.MaskRCNNPredictor(6, 6, NUM_CLASSES))
    ours = RoIHeads(
        MultiScaleRoIAlign(names, 7, 2), TwoMLPHead(CHANNELS * 49, 32), FastRCNNPredictor(32, NUM_CLASSES),
        0.5, 0.5, batch_size, 0.25, None, score_thresh, 0.5, detections,
        MultiScaleRoIAlign(names, 14, 2), MaskRCNNHeads(CHANNELS, (6, 6, 6, 6), 1),
        MaskRCNNPredictor(6, 6, NUM_CLASSES))
    for p in theirs.box_predictor.parameters():
        torch.nn.init.normal_(p, std=0.5)
    theirs.to(_torch_dtype(dtype))
    copy_into_ours(theirs, ours)
    ours.to(dtype)
    ours.fg_bg_sampler.generator = replay_torch_randperm
    return ours, theirs


def _heads_inputs(dtype, seed, counts):
    rng = np.random.default_rng(seed)
    features = OrderedDict([("0", rng.standard_normal((2, CHANNELS, 16, 20)).astype(dtype)),
                            ("1", rng.standard_normal((2, CHANNELS, 8, 10)).astype(dtype))])
    proposals = [_boxes(rng, 30, h, w, dtype, low=3.0, high=50.0) for h, w in IMAGE_SIZES]
    targets = []
    for n, (h, w) in zip(counts, IMAGE_SIZES):
        boxes = _boxes(rng, n, h, w, dtype, low=8.0, high=40.0)
        proposals_near = boxes + rng.uniform(-2, 2, size=boxes.shape).astype(dtype)
        targets.append({"boxes": boxes, "labels": rng.integers(1, NUM_CLASSES, n).astype(np.int64),
                        "masks": _masks(rng, n, 64, 80)})
        proposals[len(targets) - 1] = np.concatenate([proposals[len(targets) - 1], proposals_near])
    return features, proposals, targets


def _run_heads(ours, theirs, features, proposals, targets, grad):
    mine_f = OrderedDict((k, mts.tensor(v, requires_grad=grad)) for k, v in features.items())
    ref_f = OrderedDict((k, torch.tensor(v, requires_grad=grad)) for k, v in features.items())
    mine_t = None if targets is None else [{k: mts.tensor(v) for k, v in t.items()} for t in targets]
    ref_t = None if targets is None else [{k: torch.tensor(v) for k, v in t.items()} for t in targets]
    torch.manual_seed(1)
    ref = theirs(ref_f, [torch.tensor(p) for p in proposals], IMAGE_SIZES, ref_t)
    torch.manual_seed(1)
    mine = ours(mine_f, [mts.tensor(p) for p in proposals], IMAGE_SIZES, mine_t)
    return mine, ref, mine_f, ref_f


@few
@given(seed=seeds, dtype=dtypes, counts=st.sampled_from([(3, 2), (2, 0), (0, 0)]))
def test_roi_heads_training_losses_and_gradients_equal_torchvision(seed, dtype, counts):
    ours, theirs = _heads_pair(dtype, seed)
    features, proposals, targets = _heads_inputs(dtype, seed, counts)
    (result, losses), (_, ref_losses), mine_f, ref_f = _run_heads(ours, theirs, features, proposals, targets, True)
    assert result == [] and set(losses) == set(ref_losses) == {"loss_classifier", "loss_box_reg", "loss_mask"}
    tol = TOL[np.dtype(dtype)]
    for key in losses:
        np.testing.assert_allclose(losses[key].numpy(), ref_losses[key].detach().numpy(), **tol, err_msg=key)
    weights = upstream((3,), np.float64, seed % 1000)
    keys = sorted(losses)
    sum(losses[k] * float(w) for k, w in zip(keys, weights)).backward()
    sum(ref_losses[k] * float(w) for k, w in zip(keys, weights)).backward()
    assert assert_grads_equal(ours, theirs, tol) == 20
    for k in features:  # a level no RoI was pooled from has no gradient (None) in ours, zeros in torch
        got = np.zeros(features[k].shape) if mine_f[k].grad is None else mine_f[k].grad.numpy()
        np.testing.assert_allclose(got, ref_f[k].grad.numpy(), rtol=tol["rtol"],
                                   atol=tol["atol"] * max(1.0, float(ref_f[k].grad.abs().max())), err_msg=k)


@few
@given(seed=seeds)
def test_roi_heads_eval_detections_equal_torchvision_float64(seed):
    ours, theirs = _heads_pair(np.float64, seed, score_thresh=0.05)
    ours.eval()
    theirs.eval()
    features, proposals, _ = _heads_inputs(np.float64, seed, (3, 2))
    (result, losses), (ref, ref_losses), _, _ = _run_heads(ours, theirs, features, proposals, None, False)
    assert losses == {} == ref_losses
    tol = TOL[np.dtype(np.float64)]
    assert sum(len(r["boxes"]) for r in ref) > 0
    for r, t in zip(result, ref):
        np.testing.assert_array_equal(r["labels"].numpy(), t["labels"].numpy())
        for key in ("boxes", "scores", "masks"):
            assert r[key].shape == tuple(t[key].shape), key
            np.testing.assert_allclose(r[key].numpy(), t[key].detach().numpy(), **tol, err_msg=key)


@few
@given(seed=seeds)
def test_postprocess_detections_same_integer_decisions_float32(seed):
    """The same float32 logits and deltas: the same kept candidates (labels, order) and boxes, scores to ~1e-6."""
    ours, theirs = _heads_pair(np.float32, seed, detections=12, score_thresh=0.2)
    rng = np.random.default_rng(seed)
    proposals = [_boxes(rng, 25, h, w, np.float32, low=2.0, high=40.0) for h, w in IMAGE_SIZES]
    logits = (rng.standard_normal((50, NUM_CLASSES)) * 2).astype(np.float32)
    deltas = (rng.standard_normal((50, 4 * NUM_CLASSES)) * 0.5).astype(np.float32)
    boxes, scores, labels = ours.postprocess_detections(mts.tensor(logits), mts.tensor(deltas), proposals, IMAGE_SIZES)
    ref = theirs.postprocess_detections(torch.tensor(logits), torch.tensor(deltas),
                                        [torch.tensor(p) for p in proposals], IMAGE_SIZES)
    for b, s, lab, rb, rs, rl in zip(boxes, scores, labels, *ref):
        np.testing.assert_array_equal(lab, rl.numpy())
        np.testing.assert_allclose(b, rb.numpy(), **TOL[np.dtype(np.float32)])
        np.testing.assert_allclose(s, rs.numpy(), **TOL[np.dtype(np.float32)])


def test_roi_heads_state_dict_loads_into_torchvision_and_targets_are_checked():
    ours, theirs = _heads_pair(np.float32, 0)
    copy_into_torch(ours, theirs)
    features, proposals, targets = _heads_inputs(np.float32, 0, (1, 1))
    bad = [dict(t) for t in targets]
    bad[1]["labels"] = bad[1]["labels"].astype(np.int32)
    with pytest.raises(TypeError, match=r"targets\[1\]\['labels'\] must be int64"):
        ours(OrderedDict((k, mts.tensor(v)) for k, v in features.items()), proposals, IMAGE_SIZES, bad)
    with pytest.raises(ValueError, match="targets should not be None"):
        ours(OrderedDict((k, mts.tensor(v)) for k, v in features.items()), proposals, IMAGE_SIZES, None)
