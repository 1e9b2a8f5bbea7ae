"""minitorchseg.kernels.cpu batch_norm entries against torch: forward (batch or given statistics), backward.

The kernels accumulate the per-channel sums in float64 and evaluate the
elementwise formulas in the input dtype, so float64 agrees with torch to the
reordering tolerance and float32 to ``TOL``. Through ``F.batch_norm``: gradcheck
in both modes.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import gradcheck
from minitorchseg.kernels.cpu import batch_norm_backward, batch_norm_forward, relu_backward, relu_forward
from tests.strategies import TOL, dtypes, randn, seeds, settings_fast, strided
from tests.torch_ref import upstream

shapes = st.sampled_from([(4, 3), (2, 3, 5), (3, 2, 4, 5), (1, 4, 3, 3), (2, 1, 1, 7), (2, 3, 2, 2, 3)])


def _torch_batch_norm(x, weight, bias, mean, var, eps, grad_out):
    """torch's forward and gradients (x, weight, bias) for the same arrays; mean/var None: batch statistics."""
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    wt = None if weight is None else torch.tensor(weight, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    training = mean is None
    rm = None if training else torch.tensor(mean)
    rv = None if training else torch.tensor(var)
    y = torch.nn.functional.batch_norm(xt, rm, rv, wt, bt, training=training, eps=eps)
    y.backward(torch.tensor(grad_out))
    return (y.detach().numpy(), xt.grad.numpy(), None if wt is None else wt.grad.numpy(),
            None if bt is None else bt.grad.numpy())


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, training=st.booleans(), affine=st.booleans(),
       contiguous=st.booleans(), offset=st.sampled_from([0.0, 3.0, -50.0]))
def test_batch_norm_kernels_match_torch(shape, seed, dtype, training, affine, contiguous, offset):
    """Forward, the batch statistics and all three gradients, any (N, C, *) shape, strided inputs, and a large
    common offset (|μ| ≫ σ, where a one-pass Σx² − (Σx)²/m formula would lose float32's digits)."""
    channels = shape[1]
    x = (randn(seed, shape, dtype, scale=2.0) + dtype(offset)).astype(dtype)
    weight = randn(seed + 1, (channels,), dtype) if affine else None
    bias = randn(seed + 2, (channels,), dtype) if affine else None
    mean = None if training else (randn(seed + 3, (channels,), dtype) + dtype(offset)).astype(dtype)
    var = None if training else (np.abs(randn(seed + 4, (channels,), dtype)) + 0.5).astype(dtype)
    g = upstream(shape, dtype, seed)
    xin = x if contiguous else strided(x)
    gin = g if contiguous else strided(g)
    eps = 1e-5

    y, used_mean, used_var, inv_std = batch_norm_forward(xin, weight, bias, mean, var, eps)
    gx, gw, gb = batch_norm_backward(gin, xin, weight, used_mean, inv_std, training)
    ty, tgx, tgw, tgb = _torch_batch_norm(x, weight, bias, mean, var, eps, g)

    tol = TOL[np.dtype(dtype)]
    assert y.shape == x.shape and y.dtype == x.dtype and gx.dtype == x.dtype
    ours_all = {"forward": y, "grad_x": gx, "grad_weight": gw, "grad_bias": gb}
    torch_all = {"forward": ty, "grad_x": tgx, "grad_weight": tgw, "grad_bias": tgb}
    names = ["forward", "grad_x"] + (["grad_weight", "grad_bias"] if affine else [])
    if dtype == np.float32 and abs(offset) > 10:
        # float32 data 50 away from 0 carry only ~3e-6 absolute precision, so two correct float32
        # implementations differ by more than TOL: compare both with torch in float64 instead, and
        # require ours to be no less accurate than torch's float32 (a float32 one-pass Σx² − (Σx)²/m fails this).
        exact = _torch_batch_norm(x.astype(np.float64), *(None if a is None else a.astype(np.float64)
                                  for a in (weight, bias, mean, var)), eps, g.astype(np.float64))
        exact_all = dict(zip(["forward", "grad_x", "grad_weight", "grad_bias"], exact))
        for name in names:
            ours_err = np.abs(ours_all[name] - exact_all[name]).max()
            torch_err = np.abs(torch_all[name] - exact_all[name]).max()
            assert ours_err <= 2 * torch_err + 1e-6, (name, ours_err, torch_err)
    else:
        for name in names:
            np.testing.assert_allclose(ours_all[name], torch_all[name], **tol, err_msg=name)
    axes = (0,) + tuple(range(2, len(shape)))
    if training:
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(used_mean, x64.mean(axis=axes), **tol, err_msg="batch mean")
        np.testing.assert_allclose(used_var, x64.var(axis=axes), **tol, err_msg="batch variance")
    else:
        np.testing.assert_array_equal(used_mean, mean)
        np.testing.assert_array_equal(used_var, var)
    np.testing.assert_allclose(inv_std, 1.0 / np.sqrt(used_var.astype(np.float64) + eps), rtol=1e-15, atol=0)


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, training=st.booleans(), affine=st.booleans(),
       contiguous=st.booleans())
def test_batch_norm_relu_is_batch_norm_then_relu(shape, seed, dtype, training, affine, contiguous):
    """relu=True (and the backward given its output) gives what batch norm then ReLU give, bit for bit, and
    torch's relu(batch_norm(x)) within TOL, forward and all three gradients (outputs drawn away from ReLU's kink)."""
    channels = shape[1]
    x = randn(seed, shape, dtype, scale=2.0)
    weight = randn(seed + 1, (channels,), dtype) if affine else None
    bias = randn(seed + 2, (channels,), dtype) if affine else None
    mean = None if training else randn(seed + 3, (channels,), dtype)
    var = None if training else (np.abs(randn(seed + 4, (channels,), dtype)) + 0.5).astype(dtype)
    g = upstream(shape, dtype, seed)
    xin, gin = (x, g) if contiguous else (strided(x), strided(g))

    y, m, v, inv_std = batch_norm_forward(xin, weight, bias, mean, var, 1e-5, relu=True)
    gx, gw, gb = batch_norm_backward(gin, xin, weight, m, inv_std, training, out=y)
    y0, m0, v0, inv_std0 = batch_norm_forward(xin, weight, bias, mean, var, 1e-5)
    relu_y = relu_forward(y0)
    gx0, gw0, gb0 = batch_norm_backward(relu_backward(gin, relu_y), xin, weight, m0, inv_std0, training)
    for name, fused, chained in [("y", y, relu_y), ("mean", m, m0), ("var", v, v0), ("inv_std", inv_std, inv_std0),
                                 ("grad_x", gx, gx0), ("grad_weight", gw, gw0), ("grad_bias", gb, gb0)]:
        np.testing.assert_array_equal(fused, chained, err_msg=name)

    xt = torch.tensor(x, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    pre = torch.nn.functional.batch_norm(xt, None if training else torch.tensor(mean),
                                         None if training else torch.tensor(var), wt, bt, training=training)
    assume(bool((pre.detach().abs() > 1e-3).all()))
    torch.relu(pre).backward(torch.tensor(g))
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(y, torch.relu(pre).detach().numpy(), **tol, err_msg="forward vs torch")
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol, err_msg="grad_x vs torch")
    if affine:
        np.testing.assert_allclose(gw, wt.grad.numpy(), **tol, err_msg="grad_weight vs torch")
        np.testing.assert_allclose(gb, bt.grad.numpy(), **tol, err_msg="grad_bias vs torch")


def test_batch_norm_hand_example():
    """One channel of (1, 1, 4): x = [1, 2, 3, 6], μ = 3, σ² = (4 + 1 + 0 + 9)/4 = 3.5; with eps = 0.5,
    sqrt(σ² + eps) = 2, so y = (x − 3)/2·w + b with w = 2, b = 1: [−1, 0, 1, 4]. Backward with dy = [1, 0, 0, 0]:
    db = 1, x̂ = [−1, −0.5, 0, 1.5], dw = Σ dy·x̂ = −1, dx = w/2·(dy − db/4 − x̂·dw/4) = [0.5, −0.375, −0.25, 0.125]."""
    x = np.array([[[1.0, 2.0, 3.0, 6.0]]])
    y, mean, var, inv_std = batch_norm_forward(x, np.array([2.0]), np.array([1.0]), None, None, 0.5)
    np.testing.assert_array_equal(y, [[[-1.0, 0.0, 1.0, 4.0]]])
    np.testing.assert_array_equal(mean, [3.0])
    np.testing.assert_array_equal(var, [3.5])
    gx, gw, gb = batch_norm_backward(np.array([[[1.0, 0.0, 0.0, 0.0]]]), x, np.array([2.0]), mean, inv_std, True)
    np.testing.assert_allclose(gx, [[[0.5, -0.375, -0.25, 0.125]]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(gw, [-1.0])
    np.testing.assert_array_equal(gb, [1.0])


def test_batch_norm_empty_batch_in_eval():
    """Given statistics, an input with no elements gives empty outputs (no division by m = 0)."""
    x = np.zeros((0, 3, 4, 4), np.float32)
    ones = np.ones(3, np.float32)
    y, mean, var, inv_std = batch_norm_forward(x, ones, ones, ones, ones, 1e-5)
    gx, gw, gb = batch_norm_backward(x, x, ones, mean, inv_std, False)
    assert y.shape == gx.shape == x.shape
    np.testing.assert_array_equal(gw, np.zeros(3))
    np.testing.assert_array_equal(gb, np.zeros(3))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck(training, affine):
    """Finite differences through F.batch_norm (float64), both modes, with and without weight/bias."""
    rng = np.random.default_rng(3)
    x = mts.tensor(rng.standard_normal((3, 2, 2, 3)) * 1.5 + 0.3, requires_grad=True)
    w = mts.tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = mts.tensor(rng.standard_normal(2), requires_grad=True)
    rm = mts.tensor(rng.standard_normal(2))
    rv = mts.tensor(rng.uniform(0.5, 2.0, 2))

    def fn(a, *wb):
        return F.batch_norm(a, None if training else rm, None if training else rv, *(wb or (None, None)),
                            training=training)

    assert gradcheck(fn, [x, w, b] if affine else [x], eps=1e-6, atol=1e-6, rtol=1e-5)
