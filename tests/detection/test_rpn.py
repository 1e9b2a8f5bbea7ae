"""RPNHead and RegionProposalNetwork against torchvision's ``models/detection/rpn.py`` with copied weights.

Eval: the same proposals in the same order. Training: with the sampler replaying
torch's ``randperm`` (same seed), the same two losses and the same gradients for
the head's parameters and the feature maps.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection import rpn as tv_rpn
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList as TVImageList

import minitorchseg as mts
from minitorchseg.models.detection.anchor_utils import AnchorGenerator
from minitorchseg.models.detection.image_list import ImageList
from minitorchseg.models.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers

from ..strategies import TOL, dtypes, seeds
from ..torch_ref import upstream
from .rcnn_common import assert_grads_equal, copy_into_ours, float64_rpn_labels, replay_torch_randperm

CHANNELS = 4
SIZES = ((16,), (32,))
RATIOS = ((0.5, 1.0, 2.0),) * 2
IMAGE_SIZES = [(64, 80), (56, 72)]
few = settings(max_examples=6, deadline=None)


def _pair(dtype, seed, pre=(60, 40), post=(30, 25), batch_size=64, score_thresh=0.0):
    """torchvision's RPN with random (not tiny) head weights, and ours with the same weights."""
    torch.manual_seed(seed % 2**31)
    head = tv_rpn.RPNHead(CHANNELS, 3)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.3)
    # Where the 3x3 conv's ReLU zeroes every channel, two anchors get equal scores, and torch.topk orders ties
    # arbitrarily; a large positive bias keeps every unit alive, so scores are distinct and the order defined.
    torch.nn.init.constant_(head.conv[0][0].bias, 10.0)
    for layer in (head.cls_logits, head.bbox_pred):  # deltas of order 0.5, not exp(10)
        torch.nn.init.normal_(layer.weight, std=0.03)
    args = (0.7, 0.3, batch_size, 0.5, dict(training=pre[0], testing=pre[1]), dict(training=post[0], testing=post[1]),
            0.7)
    theirs = tv_rpn.RegionProposalNetwork(TVAnchorGenerator(SIZES, RATIOS), head, *args, score_thresh=score_thresh)
    ours = RegionProposalNetwork(AnchorGenerator(SIZES, RATIOS), RPNHead(CHANNELS, 3), *args,
                                 score_thresh=score_thresh)
    copy_into_ours(theirs, ours)
    ours.to(dtype)
    theirs.to(getattr(torch, np.dtype(dtype).name))
    ours.fg_bg_sampler.generator = replay_torch_randperm
    if dtype == np.float64:
        float64_rpn_labels(theirs)
    return ours, theirs


def _inputs(dtype, seed):
    """A padded 2-image batch (64×80) and two feature levels of strides 4 and 8."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(2, 3, 64, 80)).astype(dtype)
    features = OrderedDict([("0", rng.standard_normal((2, CHANNELS, 16, 20)).astype(dtype)),
                            ("1", rng.standard_normal((2, CHANNELS, 8, 10)).astype(dtype))])
    return images, features


def _targets(dtype, seed, counts):
    rng = np.random.default_rng(seed + 7)
    targets = []
    for (h, w), n in zip(IMAGE_SIZES, counts):
        xy = rng.uniform(0, [w - 20, h - 20], size=(n, 2))
        wh = rng.uniform(8, 30, size=(n, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1).astype(dtype)
        targets.append(boxes)
    return targets


def _run(ours, theirs, images, features, targets=None, grad=False):
    mine_f = OrderedDict((k, mts.tensor(v, requires_grad=grad)) for k, v in features.items())
    ref_f = OrderedDict((k, torch.tensor(v, requires_grad=grad)) for k, v in features.items())
    mine_t = None if targets is None else [{"boxes": mts.tensor(b)} for b in targets]
    ref_t = None if targets is None else [{"boxes": torch.tensor(b)} for b in targets]
    torch.manual_seed(0)
    ref = theirs(TVImageList(torch.tensor(images), IMAGE_SIZES), ref_f, ref_t)
    torch.manual_seed(0)
    mine = ours(ImageList(mts.tensor(images), IMAGE_SIZES), mine_f, mine_t)
    return mine, ref, mine_f, ref_f


def test_rpn_head_keys_and_outputs_equal_torchvision():
    theirs = tv_rpn.RPNHead(CHANNELS, 3, conv_depth=2).double()
    ours = RPNHead(CHANNELS, 3, conv_depth=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict())[:2] == ["conv.0.0.weight", "conv.0.0.bias"]
    copy_into_ours(theirs, ours)
    ours.to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, CHANNELS, 5, 6))
    logits, reg = ours([mts.tensor(x)])
    ref_logits, ref_reg = theirs([torch.tensor(x)])
    np.testing.assert_allclose(logits[0].numpy(), ref_logits[0].detach().numpy(), **TOL[np.dtype(np.float64)])
    np.testing.assert_allclose(reg[0].numpy(), ref_reg[0].detach().numpy(), **TOL[np.dtype(np.float64)])
    fresh = RPNHead(64, 3)
    assert abs(fresh.cls_logits.weight.numpy().std() - 0.01) < 0.003 and not fresh.bbox_pred.bias.numpy().any()


def test_concat_box_prediction_layers_is_torchvisions_permutation():
    rng = np.random.default_rng(1)
    cls = [rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 2, 3))]
    reg = [rng.standard_normal((2, 12, 4, 5)), rng.standard_normal((2, 12, 2, 3))]
    mine = concat_box_prediction_layers([mts.tensor(c) for c in cls], [mts.tensor(r) for r in reg])
    ref = tv_rpn.concat_box_prediction_layers([torch.tensor(c) for c in cls], [torch.tensor(r) for r in reg])
    for m, r in zip(mine, ref):
        np.testing.assert_array_equal(m.numpy(), r.numpy())


@few
@given(seed=seeds)
def test_rpn_eval_proposals_same_boxes_same_order_float64(seed):
    ours, theirs = _pair(np.float64, seed)
    ours.eval()
    theirs.eval()
    images, features = _inputs(np.float64, seed)
    (boxes, losses), (ref_boxes, ref_losses), _, _ = _run(ours, theirs, images, features)
    assert losses == {} and ref_losses == {}
    for b, r in zip(boxes, ref_boxes):
        assert b.shape == tuple(r.shape) and b.shape[0] > 0
        np.testing.assert_allclose(b.numpy(), r.numpy(), **TOL[np.dtype(np.float64)])


@few
@given(seed=seeds, score_thresh=st.sampled_from([0.0, 0.5]))
def test_rpn_filter_proposals_equal_on_the_same_float32_predictions(seed, score_thresh):
    """Given the same decoded proposals and objectness, the integer geometry is identical in float32."""
    ours, theirs = _pair(np.float32, seed, score_thresh=score_thresh)
    ours.eval()
    theirs.eval()
    rng = np.random.default_rng(seed)
    counts = [16 * 20 * 3, 8 * 10 * 3]
    proposals = rng.uniform(-10, 90, size=(2, sum(counts), 2)).astype(np.float32)
    proposals = np.concatenate([proposals, proposals + rng.uniform(0, 40, size=proposals.shape)], axis=2)
    proposals = proposals.astype(np.float32)
    objectness = rng.standard_normal((2 * sum(counts), 1)).astype(np.float32)
    boxes, _ = ours.filter_proposals(proposals, objectness, IMAGE_SIZES, counts)
    ref_boxes, _ = theirs.filter_proposals(torch.tensor(proposals), torch.tensor(objectness), IMAGE_SIZES, counts)
    for b, r in zip(boxes, ref_boxes):
        np.testing.assert_array_equal(b, r.numpy())


@few
@given(seed=seeds, dtype=dtypes, counts=st.sampled_from([(3, 2), (2, 0), (0, 0), (1, 4)]))
def test_rpn_training_losses_and_gradients_equal_torchvision(seed, dtype, counts):
    ours, theirs = _pair(dtype, seed)
    ours.train()
    theirs.train()
    images, features = _inputs(dtype, seed)
    targets = _targets(dtype, seed, counts)
    (boxes, losses), (ref_boxes, ref_losses), mine_f, ref_f = _run(ours, theirs, images, features, targets, grad=True)
    assert set(losses) == set(ref_losses) == {"loss_objectness", "loss_rpn_box_reg"}
    tol = TOL[np.dtype(dtype)]
    for key in losses:
        np.testing.assert_allclose(losses[key].numpy(), ref_losses[key].detach().numpy(), **tol, err_msg=key)
    if dtype == np.float64:
        for b, r in zip(boxes, ref_boxes):
            np.testing.assert_allclose(b.numpy(), r.numpy(), **tol)
    weights = upstream((2,), np.float64, seed % 1000)
    total = losses["loss_objectness"] * float(weights[0]) + losses["loss_rpn_box_reg"] * float(weights[1])
    ref_total = ref_losses["loss_objectness"] * float(weights[0]) + ref_losses["loss_rpn_box_reg"] * float(weights[1])
    total.backward()
    ref_total.backward()
    assert assert_grads_equal(ours, theirs, tol) == 6
    for k in features:
        np.testing.assert_allclose(mine_f[k].grad.numpy(), ref_f[k].grad.numpy(), rtol=tol["rtol"],
                                   atol=tol["atol"] * max(1.0, float(ref_f[k].grad.abs().max())), err_msg=k)


def test_rpn_training_without_targets_is_an_error():
    ours, _ = _pair(np.float32, 0)
    images, features = _inputs(np.float32, 0)
    with pytest.raises(ValueError, match="targets should not be None"):
        ours(ImageList(mts.tensor(images), IMAGE_SIZES), OrderedDict((k, mts.tensor(v)) for k, v in features.items()))
