"""minitorchseg.kernels.cpu max_unpool2d entries against torch 2.14.1 (docs/semantics.md#max_unpool2d).

Unpooling is a scatter and its backward a gather: no arithmetic, so every
comparison is exact. Indices come from max_pool2d (duplicates then carry the
same value, so torch is deterministic too) or are unique; what duplicates with
different values do ("last write in C-order wins") is pinned by a literal example.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward
from minitorchseg.kernels.geometry import unpool_default_size
from tests.strategies import dtypes, seeds, settings_fast
from tests.torch_ref import upstream

from .pool_cases import pool_geometries, pool_input, strided

TF = torch.nn.functional


def torch_unpool(values, indices, kernel, stride, padding, output_hw, grad_out):
    """torch's ``(out, grad_values)`` as NumPy."""
    vt = torch.tensor(np.ascontiguousarray(values), requires_grad=True)
    out = TF.max_unpool2d(vt, torch.tensor(np.ascontiguousarray(indices)), kernel, stride, padding, output_hw)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), vt.grad.numpy()


@settings_fast
@given(g=pool_geometries(max_dilation=1), seed=seeds, dtype=dtypes, contiguous=st.booleans())
def test_pool_then_unpool_matches_torch(g, seed, dtype, contiguous):
    """Pool a map (odd sizes, ceil_mode, padding, overlapping windows), unpool to its own size: same as torch."""
    x = pool_input(seed, (g.n, g.c, g.h, g.w), dtype, "ties")
    values, indices = max_pool2d_forward(x, *g.args)
    go = upstream((g.n, g.c, g.h, g.w), dtype, seed % 1000)
    out = max_unpool2d_forward(values if contiguous else strided(values),
                               indices if contiguous else strided(indices), (g.h, g.w))
    grad = max_unpool2d_backward(go if contiguous else strided(go), indices if contiguous else strided(indices))
    expected, expected_grad = torch_unpool(values, indices, g.kernel, g.stride, g.padding, (g.h, g.w), go)
    assert out.dtype == dtype and grad.dtype == dtype and grad.shape == values.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(grad, expected_grad)
    if g.stride[0] >= g.kernel[0] and g.stride[1] >= g.kernel[1]:
        # non-overlapping windows: x at every argmax, zeros elsewhere
        kept = np.zeros(g.h * g.w, bool)
        flat_out = out.reshape(g.n * g.c, -1)
        flat_x = x.reshape(g.n * g.c, -1)
        for p, plane in enumerate(indices.reshape(g.n * g.c, -1)):
            kept[:] = False
            kept[plane] = True
            np.testing.assert_array_equal(flat_out[p, kept], flat_x[p, kept])
            assert np.all(flat_out[p, ~kept] == 0)


@st.composite
def unique_index_cases(draw):
    """Unique random indices into an output whose size is anywhere in torch's allowed range."""
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    default = (unpool_default_size(h, k[0], s[0], p[0]), unpool_default_size(w, k[1], s[1], p[1]))
    out_hw = tuple(draw(st.integers(max(d - st_ + 1, 0), d + st_ - 1)) for d, st_ in zip(default, s))
    assume(out_hw[0] * out_hw[1] >= h * w)
    return n, c, h, w, k, s, p, out_hw


@settings_fast
@given(case=unique_index_cases(), seed=seeds, dtype=dtypes)
def test_unpool_unique_indices_matches_torch(case, seed, dtype):
    n, c, h, w, k, s, p, out_hw = case
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, c, h, w)).astype(dtype)
    indices = np.stack([rng.permutation(out_hw[0] * out_hw[1])[: h * w] for _ in range(n * c)]).reshape(n, c, h, w)
    out = max_unpool2d_forward(values, indices, out_hw)
    go = upstream((n, c) + out_hw, dtype, seed % 1000)
    grad = max_unpool2d_backward(go, indices)
    expected, expected_grad = torch_unpool(values, indices, k, s, p, out_hw, go)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(grad, expected_grad)


def test_unpool_decodes_with_the_output_width():
    """docs/semantics.md#max_unpool2d: pooling 5×5 with k = s = 2 keeps x[1, 0] as index 5 (5-wide plane).

    Unpooled to the default 4×4, index 5 lands at (1, 1); with output_size (5, 5) back at (1, 0).
    """
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 1, 0] = 7.0
    values, indices = max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert indices[0, 0, 0, 0] == 5 and values[0, 0, 0, 0] == 7.0
    small = max_unpool2d_forward(values, indices, (4, 4))
    assert small[0, 0, 1, 1] == 7.0 and small.sum() == 7.0
    right = max_unpool2d_forward(values, indices, (5, 5))
    assert right[0, 0, 1, 0] == 7.0 and right.sum() == 7.0


def test_unpool_duplicates_last_write_wins_and_gather_duplicates_gradient():
    """Indices [[0, 0], [7, 5]] into a 4×2 output: out[0] = the later value 2; both duplicates get g[0]."""
    values = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    indices = np.array([[[[0, 0], [7, 5]]]])
    out = max_unpool2d_forward(values, indices, (4, 2))
    np.testing.assert_array_equal(out.reshape(8), [2.0, 0, 0, 0, 0, 4.0, 0, 3.0])
    go = np.arange(10.0, 18.0).reshape(1, 1, 4, 2)
    np.testing.assert_array_equal(max_unpool2d_backward(go, indices)[0, 0], [[10.0, 10.0], [17.0, 15.0]])


def test_unpool_hand_example():
    """Values [[5, 8], [7, 9]] at indices [[1, 6], [8, 11]] of a 4×4 plane (the max-pool hand example)."""
    values = np.array([[[[5.0, 8.0], [7.0, 9.0]]]], dtype=np.float32)
    indices = np.array([[[[1, 6], [8, 11]]]])
    out = max_unpool2d_forward(values, indices, (4, 4))
    expected = np.zeros(16, np.float32)
    expected[[1, 6, 8, 11]] = [5.0, 8.0, 7.0, 9.0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.reshape(16), expected)
    grad = max_unpool2d_backward(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), indices)
    np.testing.assert_array_equal(grad[0, 0], [[1.0, 6.0], [8.0, 11.0]])


@pytest.mark.parametrize("bad", [-1, 16, 2**40])
@pytest.mark.parametrize("plane", [0, 5])
def test_unpool_index_outside_the_plane_raises(bad, plane):
    """The scatter flags a plane holding an index outside ``[0, Ho·Wo)`` (any plane, not only the first) and
    the entry raises torch's message for the first such index in C-order, with nothing returned."""
    values = np.ones((2, 3, 2, 2), np.float32)
    indices = np.tile(np.array([0, 5, 10, 15], np.int64).reshape(2, 2), (2, 3, 1, 1))
    indices.reshape(6, 4)[plane, 3] = bad
    with pytest.raises(ValueError, match=rf"max_unpool2d: Found an invalid max index: {bad} \(output volumes are "
                                         rf"of size 4x4\); allowed 0\.\.15"):
        max_unpool2d_forward(values, indices, (4, 4))
