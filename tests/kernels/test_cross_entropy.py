"""minitorchseg.kernels.cpu cross_entropy entries against torch: per-pixel losses, the softmax and the gradient.

``cross_entropy_forward`` returns the per-pixel losses ``−w[t]·log softmax(x)[t]``, the
per-pixel weights ``w[t]`` (0 where ignored) and the softmax; ``cross_entropy_backward``
turns a per-pixel scale into ``scale·(softmax − onehot)``. Compared with torch's
``F.cross_entropy(reduction="none")`` and its gradient for an upstream gradient ``g``
(then ``scale = g·w[t]``). Through ``F.cross_entropy``/``F.nll_loss``: gradcheck.
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import gradcheck
from minitorchseg.kernels.cpu import cross_entropy_backward, cross_entropy_forward
from minitorchseg.kernels.cpu.cross_entropy import exp
from tests.strategies import TOL, dtypes, randn, seeds, settings_fast, strided
from tests.torch_ref import upstream

shapes = st.sampled_from([(5, 3), (2, 4, 3, 5), (1, 11, 7, 6), (3, 2, 4), (2, 1, 3, 3), (2, 3, 2, 2, 3)])


def _case(shape, seed, dtype, weighted, ignore_index, offset):
    rng = np.random.default_rng(seed)
    classes = shape[1]
    x = (randn(seed, shape, dtype, scale=3.0) + dtype(offset)).astype(dtype)
    target = rng.integers(0, classes, size=(shape[0],) + shape[2:])
    target[rng.random(target.shape) < 0.25] = ignore_index
    weight = rng.uniform(0.5, 2.0, classes).astype(dtype) if weighted else None
    return x, target, weight


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, weighted=st.booleans(), ignore_index=st.sampled_from([-100, 255]),
       contiguous=st.booleans(), offset=st.sampled_from([0.0, 40.0, -300.0, 800.0]))
def test_cross_entropy_kernels_match_torch(shape, seed, dtype, weighted, ignore_index, contiguous, offset):
    """Any (N, C, *) shape, strided logits, ignored pixels, and logits far from 0 (the max shift keeps exp finite)."""
    x, target, weight = _case(shape, seed, dtype, weighted, ignore_index, offset)
    g = upstream(target.shape, dtype, seed % 1000)
    losses, w, probs = cross_entropy_forward(x if contiguous else strided(x), target, weight, ignore_index, False)
    scale = (g.reshape(w.shape) * w).astype(dtype)
    gx = cross_entropy_backward(scale, probs, target, ignore_index, False)

    xt = torch.tensor(x, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(target), wt, ignore_index=ignore_index,
                                            reduction="none")
    ref.backward(torch.tensor(g))
    tol = TOL[np.dtype(dtype)]
    assert losses.dtype == w.dtype == probs.dtype == gx.dtype == x.dtype
    assert probs.shape == gx.shape == x.shape and losses.shape == w.shape == (shape[0], int(np.prod(shape[2:])))
    np.testing.assert_allclose(losses.reshape(target.shape), ref.detach().numpy(), **tol, err_msg="losses")
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol, err_msg="grad_x")
    np.testing.assert_allclose(probs, torch.softmax(torch.tensor(x), 1).numpy(), **tol, err_msg="softmax")
    ignored = target == ignore_index
    expected_w = np.where(ignored, 0.0, 1.0 if weight is None else weight[np.where(ignored, 0, target)])
    np.testing.assert_array_equal(w.reshape(target.shape), expected_w.astype(dtype))
    assert not gx.swapaxes(0, 1)[:, ignored].any(), "ignored pixels get exactly zero gradient"
    any_scale = cross_entropy_backward(np.ones_like(scale), probs, target, ignore_index, False)
    assert not any_scale.swapaxes(0, 1)[:, ignored].any(), "... whatever their scale"


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, weighted=st.booleans())
def test_nll_kernels_match_torch(shape, seed, dtype, weighted):
    """``log_probs_given``: the input is read as log-probabilities; no softmax is computed or used."""
    x, target, weight = _case(shape, seed, dtype, weighted, -100, 0.0)
    g = upstream(target.shape, dtype, seed % 1000)
    losses, w, probs = cross_entropy_forward(x, target, weight, -100, True)
    assert probs is None
    gx = cross_entropy_backward((g.reshape(w.shape) * w).astype(dtype), x, target, -100, True)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.nll_loss(xt, torch.tensor(target), None if weight is None else torch.tensor(weight),
                                       reduction="none")
    ref.backward(torch.tensor(g))
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(losses.reshape(target.shape), ref.detach().numpy(), **tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    ignored = np.zeros(target.shape, bool)
    ignored.flat[::3] = True
    any_scale = cross_entropy_backward(np.ones(w.shape, dtype), x, np.where(ignored, -100, target), -100, True)
    assert not any_scale.swapaxes(0, 1)[:, ignored].any(), "ignored pixels get exactly zero gradient"


_EXP_EDGES = {
    # 0, tiny, |r| = ln(2)/2 (the reduction's edge), the smallest normal and subnormal results, the rounding
    # to 0, the clamp, −inf, NaN
    np.float64: [0.0, -0.0, -1e-300, -0.34657359, -0.3465736, -708.3964, -708.4, -744.44, -745.13, -745.14,
                 -746.0, -1e4, -np.inf, np.nan],
    np.float32: [0.0, -0.0, -1e-30, -0.34657359, -0.3465736, -87.3365, -87.34, -103.27, -103.97, -103.98,
                 -104.0, -1e4, -np.inf, np.nan],
}


@settings_fast
@given(seed=seeds, dtype=dtypes, scale=st.sampled_from([0.5, 30.0, 300.0]))
def test_exp_within_two_ulp(seed, dtype, scale):
    """The softmax's vectorised ``exp`` (values ≤ 0) against NumPy's float64 ``exp`` rounded to the dtype: within
    2 ulp where the result is normal, one subnormal step where it is subnormal, 0 and NaN where it is."""
    v = (-np.random.default_rng(seed).exponential(scale, 4099)).astype(dtype)   # odd: the vector loop's tail too
    v[:len(_EXP_EDGES[dtype])] = _EXP_EDGES[dtype]
    got = exp(v)
    with np.errstate(under="ignore"):
        ref = np.exp(v.astype(np.float64)).astype(dtype)
    info = np.finfo(dtype)
    assert got.dtype == dtype and got.shape == v.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(v))
    ok = ~np.isnan(v)
    step = info.smallest_subnormal
    np.testing.assert_array_less(np.abs(got[ok] - ref[ok]), 2 * info.eps * ref[ok] + 1.5 * step)
    assert not got[ok & (ref == 0)].any(), "exp rounds to exactly 0 where the reference does"


def test_cross_entropy_hand_example():
    """One pixel, logits [0, ln 3] (softmax [1/4, 3/4]), target 1, weight 2: loss = −2·ln(3/4); with scale 1
    the gradient is [1/4, 3/4 − 1] = [0.25, −0.25]."""
    x = np.array([[0.0, np.log(3.0)]])
    losses, w, probs = cross_entropy_forward(x, np.array([1]), np.array([1.0, 2.0]), -100, False)
    np.testing.assert_allclose(losses, [[-2.0 * np.log(0.75)]], rtol=1e-15)
    np.testing.assert_array_equal(w, [[2.0]])
    np.testing.assert_allclose(probs, [[0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(cross_entropy_backward(np.array([[1.0]]), probs, np.array([1]), -100, False),
                               [[0.25, -0.25]], rtol=1e-15)


def test_cross_entropy_empty_batch():
    x = np.zeros((0, 3, 4, 4), np.float32)
    t = np.zeros((0, 4, 4), np.int64)
    losses, w, probs = cross_entropy_forward(x, t, None, -100, False)
    assert losses.shape == w.shape == (0, 16) and probs.shape == x.shape
    assert cross_entropy_backward(losses, probs, t, -100, False).shape == x.shape


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradcheck(fn, reduction):
    """Finite differences through F.cross_entropy / F.nll_loss (float64), class weights and an ignored pixel."""
    rng = np.random.default_rng(4)
    x = mts.tensor(rng.standard_normal((2, 3, 2, 3)), requires_grad=True)
    target = rng.integers(0, 3, (2, 2, 3))
    target[0, 0, 0] = 255
    w = mts.tensor(rng.uniform(0.5, 2.0, 3))
    assert gradcheck(lambda a: getattr(F, fn)(a, mts.tensor(target), w, ignore_index=255, reduction=reduction),
                     [x], eps=1e-6, atol=1e-6, rtol=1e-5)
