"""minitorchseg.kernels.cpu bilinear / nearest resize entries against torch 2.14.1 (docs/semantics.md#interpolate).

Covers size vs scale_factor (torch maps coordinates with 1/scale_factor, not
in/out), recompute_scale_factor, align_corners, unchanged dimensions (copied),
output size 1, downsampling, NaN propagation through zero-weight taps, and
non-contiguous inputs; forward and backward with a non-uniform upstream gradient.
"""

import math

import numpy as np
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import (
    upsample_bilinear2d_backward,
    upsample_bilinear2d_forward,
    upsample_nearest2d_backward,
    upsample_nearest2d_forward,
)
from minitorchseg.kernels.shared.interpolate import bilinear_taps
from tests.strategies import dtypes, seeds, settings_fast
from tests.torch_ref import upstream

from .pool_cases import SCALE_FACTORS, strided

TF = torch.nn.functional

# docs/semantics.md#tolerances: bilinear (and the sums of nearest's backward) are not bit-exact.
TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}
# A backward element sums up to (Ho/H)·(Wo/W)·4 terms, in another order than torch's: on top of TOL,
# allow the rounding error of such a sum, SUM_ULPS · eps · Σ|term| (Σ|term| = the adjoint applied to |g|,
# computed by torch's backward in float64, never by the implementation under test).
SUM_ULPS = 8


def assert_backward_close(ours, ref, abs_sum, dtype):
    """``|ours − ref| ≤ atol + rtol·|ref| + SUM_ULPS·eps·abs_sum`` elementwise."""
    tol = TOL[np.dtype(dtype)]
    bound = tol["atol"] + tol["rtol"] * np.abs(ref) + SUM_ULPS * np.finfo(dtype).eps * abs_sum
    excess = np.abs(ours.astype(np.float64) - ref) - bound
    assert ours.shape == ref.shape and np.all(excess <= 0), (
        f"backward differs beyond the summation bound at {np.unravel_index(np.argmax(excess), excess.shape)}: "
        f"max excess {excess.max():.3g}"
    )


@st.composite
def resize_cases(draw):
    """``(h, w, torch_kwargs, output_hw, scales)`` for one resize, drawn as docs/semantics.md#interpolate says."""
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    how = draw(st.sampled_from(["size", "scale", "recompute"]))
    if how == "size":
        def one(n):
            return draw(st.one_of(st.just(n), st.just(1), st.integers(1, 24)))
        out_hw = (one(h), one(w))
        return h, w, dict(size=out_hw), out_hw, (None, None)
    factors = (draw(st.sampled_from(SCALE_FACTORS)), draw(st.sampled_from(SCALE_FACTORS)))
    out_hw = (math.floor(h * factors[0]), math.floor(w * factors[1]))
    assume(min(out_hw) >= 1)
    recompute = how == "recompute"
    kwargs = dict(scale_factor=factors, recompute_scale_factor=recompute)
    return h, w, kwargs, out_hw, (None, None) if recompute else factors


def torch_resize(x, mode, kwargs, grad_out, align_corners=None):
    """torch's ``(out, grad_x)`` as NumPy."""
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    extra = {} if mode == "nearest" else dict(align_corners=align_corners)
    out = TF.interpolate(xt, mode=mode, **kwargs, **extra)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), xt.grad.numpy()


def torch_abs_sum(shape, mode, kwargs, grad_out, align_corners=None):
    """Σ|term| of each input element's gradient sum: torch's float64 backward applied to ``|grad_out|``."""
    return torch_resize(np.zeros(shape), mode, kwargs, np.abs(grad_out).astype(np.float64), align_corners)[1]


def make_input(seed, shape, dtype, nans):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if nans:
        x[np.random.default_rng(seed + 1).random(shape) < 0.1] = np.nan
    return x


@settings_fast
@given(case=resize_cases(), seed=seeds, dtype=dtypes, align_corners=st.booleans(), contiguous=st.booleans(),
       nans=st.booleans())
def test_bilinear_matches_torch(case, seed, dtype, align_corners, contiguous, nans):
    h, w, kwargs, out_hw, scales = case
    x = make_input(seed, (2, 3, h, w), dtype, nans)
    out = upsample_bilinear2d_forward(x if contiguous else strided(x), out_hw, align_corners, scales)
    go = upstream(out.shape, dtype, seed % 1000)
    expected, expected_grad = torch_resize(x, "bilinear", kwargs, go, align_corners)
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, **TOL[np.dtype(dtype)])
    if not nans:
        grad = upsample_bilinear2d_backward(go if contiguous else strided(go), (h, w), align_corners, scales)
        assert grad.dtype == dtype and grad.shape == x.shape
        abs_sum = torch_abs_sum(x.shape, "bilinear", kwargs, go, align_corners)
        assert_backward_close(grad, expected_grad, abs_sum, dtype)


@settings_fast
@given(case=resize_cases(), seed=seeds, dtype=dtypes, contiguous=st.booleans())
def test_nearest_matches_torch(case, seed, dtype, contiguous):
    h, w, kwargs, out_hw, scales = case
    x = make_input(seed, (2, 3, h, w), dtype, False)
    out = upsample_nearest2d_forward(x if contiguous else strided(x), out_hw, scales)
    go = upstream(out.shape, dtype, seed % 1000)
    grad = upsample_nearest2d_backward(go if contiguous else strided(go), (h, w), scales)
    expected, expected_grad = torch_resize(x, "nearest", kwargs, go)
    assert out.dtype == dtype and grad.dtype == dtype
    np.testing.assert_array_equal(out, expected)  # a gather: exact
    abs_sum = torch_abs_sum(x.shape, "nearest", kwargs, go)
    assert_backward_close(grad, expected_grad, abs_sum, dtype)


@settings_fast
@given(seed=seeds, dtype=dtypes, align_corners=st.booleans(), hw=st.tuples(st.integers(3, 40), st.integers(3, 40)),
       out_hw=st.tuples(st.integers(1, 90), st.integers(1, 90)))
def test_bilinear_larger_maps_match_torch(seed, dtype, align_corners, hw, out_hw):
    """Rows long enough for the vectorised loops (full vectors and remainders), up- and downsampling."""
    x = make_input(seed, (1, 2) + hw, dtype, False)
    out = upsample_bilinear2d_forward(x, out_hw, align_corners, (None, None))
    go = upstream(out.shape, dtype, seed % 1000)
    grad = upsample_bilinear2d_backward(go, hw, align_corners, (None, None))
    expected, expected_grad = torch_resize(x, "bilinear", dict(size=out_hw), go, align_corners)
    np.testing.assert_allclose(out, expected, **TOL[np.dtype(dtype)])
    abs_sum = torch_abs_sum(x.shape, "bilinear", dict(size=out_hw), go, align_corners)
    assert_backward_close(grad, expected_grad, abs_sum, dtype)


def test_bilinear_hand_examples():
    """Row [0, 1, 2] ×2 → [0, .25, .75, 1.25, 1.75, 2] (align False), [0, .4, …, 2] (align True).

    The worked example of docs/semantics.md#interpolate.
    """
    row = np.array([0.0, 1.0, 2.0]).reshape(1, 1, 1, 3)
    no_align = upsample_bilinear2d_forward(row, (1, 6), False, (None, 2.0))
    np.testing.assert_allclose(no_align.reshape(6), [0, 0.25, 0.75, 1.25, 1.75, 2], rtol=0, atol=1e-15)
    align = upsample_bilinear2d_forward(row, (1, 6), True, (None, None))
    np.testing.assert_allclose(align.reshape(6), [0, 0.4, 0.8, 1.2, 1.6, 2], rtol=0, atol=1e-15)
    # W 4 → 1 without align_corners: src = 4·0.5 − 0.5 = 1.5, the mean of x[1] and x[2]
    assert upsample_bilinear2d_forward(np.arange(4.0).reshape(1, 1, 1, 4), (1, 1), False, (None, None)).item() == 1.5
    # 2×2 → 3×3 with align_corners: the centre is the mean of the four corners
    square = np.array([[1.0, 2.0], [3.0, 5.0]]).reshape(1, 1, 2, 2)
    out = upsample_bilinear2d_forward(square, (3, 3), True, (None, None))
    np.testing.assert_allclose(out[0, 0], [[1, 1.5, 2], [2, 2.75, 3.5], [3, 4, 5]], rtol=0, atol=1e-15)
    # backward of that: the centre's gradient is spread 1/4 to each corner
    go = np.zeros((1, 1, 3, 3))
    go[0, 0, 1, 1] = 1.0
    np.testing.assert_allclose(upsample_bilinear2d_backward(go, (2, 2), True, (None, None))[0, 0],
                               [[0.25, 0.25], [0.25, 0.25]], rtol=0, atol=1e-15)


def test_bilinear_scale_factor_is_not_size():
    """H = 5: scale_factor 1.5 maps with r = 2/3, size 7 with r = 5/7; recompute_scale_factor ≡ size."""
    taps_scale = bilinear_taps(5, 7, False, 1.5, np.float64)
    taps_size = bilinear_taps(5, 7, False, None, np.float64)
    assert not np.allclose(taps_scale[3], taps_size[3])
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    by_scale = upsample_bilinear2d_forward(x, (7, 1), False, (1.5, None))
    by_size = upsample_bilinear2d_forward(x, (7, 1), False, (None, None))
    # out[1]: src = (2/3)(1.5) − 0.5 = 0.5 by scale; (5/7)(1.5) − 0.5 = 4/7 by size
    np.testing.assert_allclose([by_scale[0, 0, 1, 0], by_size[0, 0, 1, 0]], [0.5, 4 / 7], rtol=1e-15)
    xt = torch.tensor(x)
    np.testing.assert_allclose(by_scale, TF.interpolate(xt, scale_factor=(1.5, 1), mode="bilinear").numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(by_size, TF.interpolate(xt, scale_factor=(1.5, 1), mode="bilinear",
                                                       recompute_scale_factor=True).numpy(), rtol=1e-12)


def test_bilinear_unchanged_dimension_is_copied():
    """H = 3 with scale_factor 1.3 → 3 rows: copied verbatim (a 1/1.3 mapping would mix rows by up to 2.1)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    out = upsample_bilinear2d_forward(x, (3, 8), False, (1.3, 2.0))
    np.testing.assert_array_equal(out[..., 0], x[..., 0])  # rows copied; column 0 of the ×2 is x[..., 0]
    rows_only = upsample_bilinear2d_forward(x, (3, 4), False, (1.3, 1.3))
    np.testing.assert_array_equal(rows_only, x)


def test_bilinear_zero_weight_taps_propagate_nan():
    """align_corners, [0, nan, 2, 3] 4 → 7: out[0..3] are NaN (out[0] has weight 0 on the NaN), as torch."""
    x = np.array([0.0, np.nan, 2.0, 3.0]).reshape(1, 1, 1, 4)
    out = upsample_bilinear2d_forward(x, (1, 7), True, (None, None)).reshape(7)
    assert np.all(np.isnan(out[:4])) and not np.any(np.isnan(out[4:]))
    expected = TF.interpolate(torch.tensor(x), size=(1, 7), mode="bilinear", align_corners=True).numpy().reshape(7)
    np.testing.assert_array_equal(out, expected)


def test_nearest_hand_example():
    """3 → 7 by size: r = 3/7, src = floor(o·r) = [0, 0, 0, 1, 1, 2, 2]; backward sums per source."""
    x = np.array([10.0, 20.0, 30.0]).reshape(1, 1, 1, 3)
    out = upsample_nearest2d_forward(x, (1, 7), (None, None))
    np.testing.assert_array_equal(out.reshape(7), [10, 10, 10, 20, 20, 30, 30])
    grad = upsample_nearest2d_backward(np.arange(7.0).reshape(1, 1, 1, 7), (1, 3), (None, None))
    np.testing.assert_array_equal(grad.reshape(3), [0 + 1 + 2, 3 + 4, 5 + 6])
