"""Soft multi-class Dice loss: a literal example, torch transcription (forward and gradient),
finite differences, ignored pixels and argument errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import gradcheck
from minitorchseg.functional.dice import dice_loss
from tests.strategies import TOL, dtypes, randn, seeds
from tests.torch_ref import check_against_torch


def torch_dice_loss(x, t, ignore_index=None, eps=1.0, reduction="mean"):
    """The formula of minitorchseg.functional.dice written with torch ops."""
    classes = x.shape[1]
    valid = t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    safe = torch.where(valid, t, torch.zeros_like(t))
    v = valid.unsqueeze(1).to(x.dtype)
    y = torch.nn.functional.one_hot(safe, classes).movedim(-1, 1).to(x.dtype) * v
    p = torch.softmax(x, dim=1) * v
    dims = (0,) + tuple(range(2, x.ndim))
    intersection = (p * y).sum(dims)
    cardinality = p.sum(dims) + y.sum(dims)
    loss = 1 - (2 * intersection + eps) / (cardinality + eps)
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def test_literal_example():
    assert F.dice_loss is dice_loss
    x = mts.tensor(np.zeros((1, 2, 1, 2)), requires_grad=True)
    t = mts.tensor(np.array([[[0, 1]]]))
    # p = 1/2 everywhere; per class I = 1/2, S = 1 + 1 = 2.
    np.testing.assert_allclose(dice_loss(x, t, eps=0.0).item(), 0.5, rtol=1e-15)
    np.testing.assert_allclose(dice_loss(x, t, eps=1.0).item(), 1 - 2 / 3, rtol=1e-15)
    np.testing.assert_allclose(dice_loss(x, t, reduction="none").numpy(), [1 / 3, 1 / 3], rtol=1e-15)
    np.testing.assert_allclose(dice_loss(x, t, reduction="sum").item(), 2 / 3, rtol=1e-15)
    perfect = mts.tensor(np.array([[[[30.0, -30.0]], [[-30.0, 30.0]]]]))
    np.testing.assert_allclose(dice_loss(perfect, t, eps=0.0).item(), 0.0, atol=1e-12)


@st.composite
def dice_cases(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=2)))
    return dict(
        n=n,
        c=c,
        spatial=spatial,
        ignore_index=draw(st.sampled_from([None, 255, -1])),
        eps=draw(st.sampled_from([1.0, 0.5, 1e-3])),
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        dtype=draw(dtypes),
        contiguous=draw(st.booleans()),
        seed=draw(seeds),
    )


@settings(max_examples=40, deadline=None)
@given(dice_cases())
def test_dice_loss_vs_torch(case):
    n, c, spatial, seed = case["n"], case["c"], case["spatial"], case["seed"]
    shape = (n, c) + spatial
    if case["contiguous"]:
        x = randn(seed, shape, case["dtype"], scale=2.0)
    else:
        x = np.moveaxis(randn(seed, (c, n) + spatial, case["dtype"], scale=2.0), 0, 1)
    rng = np.random.default_rng(seed + 1)
    t = rng.integers(0, c, size=(n,) + spatial)
    if case["ignore_index"] is not None:
        t = np.where(rng.random(t.shape) < 0.25, case["ignore_index"], t)
    kw = dict(ignore_index=case["ignore_index"], eps=case["eps"], reduction=case["reduction"])
    check_against_torch(
        lambda a, b: dice_loss(a, b, **kw),
        lambda a, b: torch_dice_loss(a, b, **kw),
        [x, t],
    )


def test_ignored_pixels_get_no_gradient():
    x = mts.tensor(randn(0, (2, 3, 4, 4)), requires_grad=True)
    t = np.random.default_rng(1).integers(0, 3, size=(2, 4, 4))
    t[0, 1:3] = 255
    loss = dice_loss(x, mts.tensor(t), ignore_index=255)
    loss.backward()
    assert (x.grad.numpy()[0, :, 1:3] == 0).all()
    assert (np.abs(x.grad.numpy()[1]) > 0).all()
    changed = mts.tensor(np.where(t == 255, 0, t))
    x2 = mts.tensor(np.where(np.broadcast_to((t == 255)[:, None], x.shape), 7.0, x.numpy()))
    np.testing.assert_allclose(
        dice_loss(x2, mts.tensor(t), ignore_index=255).item(), loss.item(), **TOL[np.dtype(np.float64)]
    )
    assert dice_loss(x, changed).item() != loss.item()


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck(reduction):
    x = mts.tensor(randn(3, (2, 3, 3, 2)), requires_grad=True)
    t = np.random.default_rng(4).integers(0, 3, size=(2, 3, 2))
    t[1, 0, 0] = 255
    assert gradcheck(lambda a: dice_loss(a, mts.tensor(t), ignore_index=255, reduction=reduction), [x])


def test_errors():
    x = mts.tensor(np.zeros((2, 3, 4, 4)))
    t = mts.tensor(np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target has shape \(2, 4, 3\), expected \(2, 4, 4\)"):
        dice_loss(x, mts.tensor(np.zeros((2, 4, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"target value 3 is out of range: expected class indices in \[0, 2\]"):
        dice_loss(x, mts.tensor(np.full((2, 4, 4), 3)))
    with pytest.raises(ValueError, match="target value 255 is out of range"):
        dice_loss(x, mts.tensor(np.full((2, 4, 4), 255)), ignore_index=-1)
    dice_loss(x, mts.tensor(np.full((2, 4, 4), 255)), ignore_index=255)
    with pytest.raises(TypeError, match="target must hold integer class indices, got dtype float64"):
        dice_loss(x, mts.tensor(np.zeros((2, 4, 4))))
    with pytest.raises(TypeError, match="input must hold floating-point logits"):
        dice_loss(mts.tensor(np.zeros((2, 3, 4, 4), dtype=np.int64)), t)
    with pytest.raises(ValueError, match="reduction must be one of"):
        dice_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="eps must be >= 0"):
        dice_loss(x, t, eps=-1.0)
    with pytest.raises(TypeError, match="expected Tensors for input and target"):
        dice_loss(x, np.zeros((2, 4, 4), dtype=np.int64))
