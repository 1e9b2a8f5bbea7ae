"""The inputs people actually have: each fault kind with a hand-written right value, and its neighbours.

Batched NMS far from the origin, all-ignored cross-entropy batches, state dicts
with several problems at once, batch-norm statistics in float64, and the image
files that cameras, microscopes and labelling tools write (16-bit, alpha,
palette transparency, CMYK, EXIF orientation, 0/255 binary masks).
"""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn
from minitorchseg.ops import batched_nms

from .strategies import TOL, dtypes, randn, seeds, settings_fast


# ----------------------------------------------------------------------------------------- batched NMS
def test_batched_nms_never_suppresses_across_categories_below_zero():
    boxes = np.array([[-20, -20, 0, 0], [-20, -20, 0, 0]], dtype=np.float64)
    keep = batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.5)
    np.testing.assert_array_equal(keep, [0, 1])
    same_category = batched_nms(boxes, np.array([0.9, 0.8]), np.array([1, 1]), 0.5)
    np.testing.assert_array_equal(same_category, [0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("corner", [(-20, -20, 0, 0), (-1000, -500, -990, -480), (-3, 2, 5, 9), (0, 0, 4, 4)])
def test_batched_nms_identical_boxes_of_other_categories_all_survive(dtype, corner):
    boxes = np.array([corner] * 4, dtype=dtype)
    scores = np.array([0.5, 0.9, 0.7, 0.8], dtype=dtype)
    keep = batched_nms(boxes, scores, np.array([3, 0, 7, 1]), 0.5)
    np.testing.assert_array_equal(keep, [1, 3, 2, 0])  # every category alone, decreasing score


def _per_category_nms(boxes, scores, idxs, threshold):
    """torchvision's ``nms`` run on each category alone; kept indices merged in stable decreasing score order."""
    kept = []
    for c in np.unique(idxs):
        members = np.flatnonzero(idxs == c)
        keep = torchvision.ops.nms(torch.tensor(boxes[members]), torch.tensor(scores[members]), threshold).numpy()
        kept.extend(members[keep].tolist())
    kept = np.array(kept, dtype=np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")]


@settings_fast
@given(seed=seeds, n=st.integers(1, 25), dtype=dtypes, low=st.sampled_from([-10000, -300, -40, -1, 0, 5]),
       categories=st.sampled_from([(0, 1), (0, 1, 2, 3), (2, 5, 9)]), threshold=st.sampled_from([0.0, 0.3, 0.7]))
def test_batched_nms_matches_nms_per_category_anywhere(seed, n, dtype, low, categories, threshold):
    # Integer coordinates and distinct scores: every IoU is exact in both dtypes, so the keep list is exact.
    rng = np.random.default_rng(seed)
    xy = rng.integers(low, low + 40, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(1, 15, (n, 2))], axis=1).astype(dtype)
    scores = rng.permutation(n).astype(dtype)
    idxs = rng.choice(np.array(categories), n)
    expected = _per_category_nms(boxes, scores, idxs, threshold)
    np.testing.assert_array_equal(batched_nms(boxes, scores, idxs, threshold), expected)
    if boxes.min() >= 0:  # the same shift as torchvision's when no coordinate is negative
        theirs = torchvision.ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(idxs), threshold)
        np.testing.assert_array_equal(batched_nms(boxes, scores, idxs, threshold), theirs.numpy())


# ----------------------------------------------------------------------------------------- all-ignored losses
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 5)])
@pytest.mark.parametrize("ignore_index", [255, -100])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_of_an_all_ignored_batch_has_zero_gradient(shape, ignore_index, weighted):
    x = randn(0, shape)
    target_shape = (shape[0],) + shape[2:]
    target = np.full(target_shape, ignore_index, dtype=np.int64)
    weight = np.array([0.5, 2.0, 1.5]) if weighted else None
    ours_x = mts.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy divide/invalid warnings
        loss = F.cross_entropy(ours_x, mts.tensor(target), None if weight is None else mts.tensor(weight),
                               ignore_index=ignore_index)
        loss.backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(target),
                                            None if weight is None else torch.tensor(weight),
                                            ignore_index=ignore_index)
    ref.backward()
    assert np.isnan(loss.item()) and torch.isnan(ref)
    np.testing.assert_array_equal(theirs_x.grad.numpy(), 0.0)
    np.testing.assert_array_equal(ours_x.grad.numpy(), theirs_x.grad.numpy())


@pytest.mark.parametrize("loss_fn", ["cross_entropy", "nll_loss"])
def test_cross_entropy_ignored_rows_get_zero_gradient_when_the_weights_sum_to_zero(loss_fn):
    # Non-ignored targets of weight 0: torch gives NaN in those rows only (0/0), exact zeros in ignored rows.
    x = randn(1, (4, 3))
    target = np.array([0, 0, -100, 0])
    weight = np.array([0.0, 1.0, 1.0])
    ours_x = mts.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(F, loss_fn)(ours_x, mts.tensor(target), mts.tensor(weight)).backward()
    theirs_x = torch.tensor(x, requires_grad=True)
    getattr(torch.nn.functional, loss_fn)(theirs_x, torch.tensor(target), torch.tensor(weight)).backward()
    np.testing.assert_array_equal(np.isnan(ours_x.grad.numpy()), np.isnan(theirs_x.grad.numpy()))
    np.testing.assert_array_equal(ours_x.grad.numpy()[2], 0.0)


@settings_fast
@given(seed=seeds, dtype=dtypes, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_partly_ignored_batch_still_matches_torch(seed, dtype, reduction):
    x = randn(seed, (2, 3, 3, 4), dtype)
    target = np.random.default_rng(seed + 1).integers(0, 3, (2, 3, 4))
    target[0] = 255  # the whole first image is ignored, the second is not
    ours_x = mts.tensor(x, requires_grad=True)
    loss = F.cross_entropy(ours_x, mts.tensor(target), ignore_index=255, reduction=reduction)
    g = randn(seed + 2, loss.shape, dtype)
    loss.backward(mts.tensor(g))
    theirs_x = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(theirs_x, torch.tensor(target), ignore_index=255, reduction=reduction)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(ours_x.grad.numpy(), theirs_x.grad.numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_array_equal(ours_x.grad.numpy()[0], 0.0)


def test_dice_loss_of_an_all_ignored_batch_is_finite_with_zero_gradient():
    x = mts.tensor(randn(3, (2, 3, 2, 2)), requires_grad=True)
    target = mts.tensor(np.full((2, 2, 2), 255))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.dice_loss(x, target, ignore_index=255)
        loss.backward()
    assert loss.item() == 0.0  # every class: (0 + eps) / (0 + eps) = 1
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


# ----------------------------------------------------------------------------------------- state dicts
class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(4, 3)


def test_load_state_dict_lists_every_missing_unexpected_and_misshaped_key():
    model = _Two()
    state = model.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    del state["conv.bias"], state["bn.running_var"]
    state["fc.weight"] = np.zeros((4, 4))
    state["bn.weight"] = np.zeros(3)
    state["head.weight"] = np.zeros(1)
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys ['conv.bias', 'bn.running_var'] (2)" in message
    assert "unexpected keys ['head.weight', 'extra'] (2)" in message
    assert "wrong shapes (2): 'bn.weight' has shape (3,) in the state dict, but the module expects (2,)" in message
    assert "'fc.weight' has shape (4, 4) in the state dict, but the module expects (3, 4)" in message
    for key, value in model.state_dict().items():  # nothing was copied
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_load_state_dict_lists_every_misshaped_key_even_when_not_strict():
    model = _Two()
    state = model.state_dict()
    state["fc.weight"] = np.zeros((4, 4))
    state["conv.weight"] = np.zeros((2, 1, 2, 2))
    state["fc.bias"] = np.ones(3)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(state, strict=False)
    message = str(info.value)
    assert message.startswith("load_state_dict for _Two: wrong shapes (2): ")
    assert "'conv.weight' has shape (2, 1, 2, 2) in the state dict, but the module expects (2, 1, 3, 3)" in message
    assert "'fc.weight' has shape (4, 4)" in message
    np.testing.assert_array_equal(model.fc.bias.numpy(), model.state_dict()["fc.bias"])
    assert not np.all(model.fc.bias.numpy() == 1.0)
    with pytest.raises(KeyError, match=r"missing keys \['fc.bias'\] \(1\), unexpected keys \[\] \(0\), "
                                       r"wrong shapes \(0\): none"):
        model.load_state_dict({k: v for k, v in model.state_dict().items() if k != "fc.bias"})


# ----------------------------------------------------------------------------------------- batch-norm dtypes
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("convert", ["double", "to"])
def test_batchnorm_running_statistics_follow_the_parameters_dtype(affine, convert):
    ours = nn.BatchNorm2d(3, affine=affine)
    theirs = torch.nn.BatchNorm2d(3, affine=affine)
    ours = ours.double() if convert == "double" else ours.to(np.float64)
    theirs = theirs.double()
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].dtype == value.numpy().dtype, name
    x = randn(5, (4, 3, 3, 2), scale=1e4) + 1e8  # float32 statistics would lose these digits
    for _ in range(2):
        np.testing.assert_allclose(ours(mts.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-10)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12, err_msg=name)
    ours.float()
    theirs.float()
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].dtype == value.numpy().dtype, name


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_refuses_an_input_of_another_dtype(affine):
    layer = nn.BatchNorm2d(3, affine=affine)
    first = "weight" if affine else "running_mean"
    with pytest.raises(TypeError, match=rf"BatchNorm2d: {first}: expected dtype float64 \(the input's\), "
                                        r"got float32; convert the layer with \.to\(np\.float64\)"):
        layer(mts.tensor(randn(0, (2, 3, 2, 2))))
    assert layer.num_batches_tracked.item() == 0 and np.all(layer.running_mean.numpy() == 0)
