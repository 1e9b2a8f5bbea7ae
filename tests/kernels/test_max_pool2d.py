"""minitorchseg.kernels.cpu max_pool2d entries against torch 2.14.1 (docs/semantics.md#max_pool2d).

Values and int64 indices are compared exactly (a selection: no arithmetic),
on integer-valued data full of ties and with NaN/±inf sprinkled in. The
backward is a scatter-add of the upstream gradient by the saved indices; sums
of more than two terms may round differently from torch's order, hence the
named gradient tolerances.
"""

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import max_pool2d_backward, max_pool2d_forward
from tests.strategies import dtypes, seeds, settings_fast
from tests.torch_ref import upstream

from .pool_cases import PoolGeometry, pool_geometries, pool_input, strided, torch_max_pool2d

# Max-pool backward is exact for sums of ≤ 2 terms, else 1e-12 (float64) / 1e-6 (float32): docs/semantics.md#tolerances.
GRAD_TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-6, atol=1e-6)}

kinds = st.sampled_from(["normal", "ties", "special"])


def scatter_oracle(grad_out, indices, hw):
    """NumPy oracle of the backward: ``grad_x.plane.flat[idx] += g``, indices outside the plane dropped."""
    n, c = grad_out.shape[:2]
    grad = np.zeros((n * c, hw[0] * hw[1]), dtype=grad_out.dtype)
    go = grad_out.reshape(n * c, -1)
    idx = indices.reshape(n * c, -1)
    for p in range(n * c):
        keep = (idx[p] >= 0) & (idx[p] < hw[0] * hw[1])
        np.add.at(grad[p], idx[p][keep], go[p][keep])
    return grad.reshape(n, c, *hw)


def check_against_torch(g: PoolGeometry, seed, dtype, kind, contiguous):
    shape = (g.n, g.c, g.h, g.w)
    x = pool_input(seed, shape, dtype, kind)
    out, idx = max_pool2d_forward(x if contiguous else strided(x), *g.args)
    expected, expected_idx = torch_max_pool2d(x, g)
    assert out.dtype == dtype and idx.dtype == np.int64
    assert out.shape == expected.shape == (g.n, g.c) + g.out_hw
    np.testing.assert_array_equal(out, expected)  # NaN == NaN here
    np.testing.assert_array_equal(idx, expected_idx)

    go = upstream(out.shape, dtype, seed % 1000)
    grad = max_pool2d_backward(go if contiguous else strided(go), idx, (g.h, g.w))
    assert grad.dtype == dtype and grad.shape == shape
    np.testing.assert_allclose(grad, scatter_oracle(go, idx, (g.h, g.w)), **GRAD_TOL[np.dtype(dtype)])
    if ((idx >= 0) & (idx < g.h * g.w)).all():  # torch writes outside the plane otherwise (see test below)
        _, _, expected_grad = torch_max_pool2d(x, g, go)
        np.testing.assert_allclose(grad, expected_grad, **GRAD_TOL[np.dtype(dtype)])


@settings_fast
@given(g=pool_geometries(), seed=seeds, dtype=dtypes, kind=kinds, contiguous=st.booleans())
def test_max_pool2d_matches_torch(g, seed, dtype, kind, contiguous):
    check_against_torch(g, seed, dtype, kind, contiguous)


@st.composite
def long_row_geometries(draw):
    """Wide maps (Wo ≥ 8), so the vectorised row loops of both kernels run full vectors and remainders."""
    kernel, stride = draw(st.sampled_from([((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 2), (1, 1)), ((2, 3), (3, 3))]))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    return PoolGeometry(
        n=1, c=2, h=draw(st.integers(3, 6)), w=draw(st.integers(17, 70)), kernel=kernel, stride=stride,
        padding=padding, dilation=(1, 1), ceil_mode=draw(st.booleans()),
    )


@settings_fast
@given(g=long_row_geometries(), seed=seeds, dtype=dtypes, kind=kinds, contiguous=st.booleans())
def test_max_pool2d_long_rows_match_torch(g, seed, dtype, kind, contiguous):
    check_against_torch(g, seed, dtype, kind, contiguous)


def test_max_pool2d_hand_example():
    """2×2 windows of a 4×4 map: maxima 5, 8, 7, 9; the tied 7s and 9s report their first position."""
    x = np.array([[1, 5, 2, 0], [3, 4, 8, 6], [7, 7, 1, 9], [2, 7, 0, 9]], dtype=np.float64)[None, None]
    out, idx = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(out[0, 0], [[5, 8], [7, 9]])
    np.testing.assert_array_equal(idx[0, 0], [[1, 6], [8, 11]])
    grad = max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), idx, (4, 4))
    expected = np.zeros(16)
    expected[[1, 6, 8, 11]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(grad.reshape(16), expected)


def test_max_pool2d_ties_nan_and_minus_inf():
    """docs/semantics.md#max_pool2d: ties → first; NaN → NaN at the last NaN; all −inf → first in-bounds tap."""
    one = (1, 1)
    out, idx = max_pool2d_forward(np.ones((1, 1, 2, 2)), (2, 2), (2, 2), (0, 0), one, False)
    assert out.item() == 1.0 and idx.item() == 0
    x = np.array([[0.0, np.nan], [np.nan, 5.0]])[None, None]
    out, idx = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), one, False)
    assert np.isnan(out.item()) and idx.item() == 2
    out, idx = max_pool2d_forward(np.full((1, 1, 3, 3), -np.inf, np.float32), (3, 3), one, one, one, False)
    assert np.all(out == -np.inf) and out.dtype == np.float32
    np.testing.assert_array_equal(idx[0, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])


def test_max_pool2d_window_without_in_bounds_tap():
    """H = W = 2, k = 2, d = 3, p = 1: the only window reads no pixel → −inf, index 6 (≥ H·W), as torch.

    torch's backward then writes outside the plane; ours drops that gradient (the output is a constant).
    """
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    out, idx = max_pool2d_forward(x, (2, 2), (2, 2), (1, 1), (3, 3), False)
    expected_out, expected_idx = torch_max_pool2d(x, PoolGeometry(1, 1, 2, 2, (2, 2), (2, 2), (1, 1), (3, 3), False))
    assert out.item() == -np.inf and idx.item() == 6
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_array_equal(max_pool2d_backward(np.ones((1, 1, 1, 1)), idx, (2, 2)), np.zeros((1, 1, 2, 2)))


def test_max_pool2d_backward_accumulates_overlapping_windows():
    """3×3 with the max in the centre, k = 2, s = 1: all four windows pick it, its gradient is their sum."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    out, idx = max_pool2d_forward(x, (2, 2), (1, 1), (0, 0), (1, 1), False)
    assert np.all(idx == 4)
    go = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    grad = max_pool2d_backward(go, idx, (3, 3))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(grad, expected)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2, 1).backward(torch.tensor(go))
    np.testing.assert_array_equal(grad, xt.grad.numpy())


def test_max_pool2d_ceil_mode_last_window_rule():
    """H = 3, k = 2, s = 2, p = 1, ceil_mode: a third window would start at 4 ≥ H + p, so Ho = 2 (torch too)."""
    g = PoolGeometry(1, 1, 3, 3, (2, 2), (2, 2), (1, 1), (1, 1), True)
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out, idx = max_pool2d_forward(x, *g.args)
    expected, expected_idx = torch_max_pool2d(x, g)
    assert out.shape == expected.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[0, 2], [6, 8]])
    np.testing.assert_array_equal(idx, expected_idx)
