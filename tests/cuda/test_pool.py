"""minitorchseg.kernels.cuda max-pool / max-unpool entries against minitorchseg.kernels.cpu and torch.

Rules: docs/semantics.md#max_pool2d and #max_unpool2d.

Pooled values and indices, unpooled values and the unpool gradient are
selections, compared exactly with both. Max-pool's backward scatters with float
atomics (:func:`minitorchseg.kernels.cuda.pool._scatter_add_kernel`): with overlapping windows
one input can receive several terms in an order left to the threads, so it is
compared with :data:`tests.cuda.common.ATOMIC_TOL`; with non-overlapping windows
every input receives at most one term and the comparison is exact.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.kernels.pool_cases import PoolGeometry, pool_geometries, pool_input, strided, torch_max_pool2d
from tests.strategies import TOL, dtypes, seeds
from tests.torch_ref import upstream

from .common import assert_atomic_close, assert_same_as_cpu, dev, host

pytestmark = pytest.mark.cudasim

few = settings(max_examples=30, deadline=None)
kinds = st.sampled_from(["normal", "ties", "special"])


def _windows_overlap(g: PoolGeometry) -> bool:
    return any(s < (k - 1) * d + 1 for k, s, d in zip(g.kernel, g.stride, g.dilation))


@few
@given(g=pool_geometries(max_size=8), seed=seeds, dtype=dtypes, kind=kinds, contiguous=st.booleans())
def test_max_pool2d_matches_cpu_and_torch(g, seed, dtype, kind, contiguous):
    x = pool_input(seed, (g.n, g.c, g.h, g.w), dtype, kind)
    xin = x if contiguous else strided(x)
    out, idx = gpu.max_pool2d_forward(dev(xin), *g.args)
    cpu_out, cpu_idx = cpu.max_pool2d_forward(xin, *g.args)
    expected, expected_idx = torch_max_pool2d(x, g)
    assert_same_as_cpu(out, cpu_out, "values")
    assert_same_as_cpu(idx, cpu_idx, "indices")
    np.testing.assert_array_equal(host(out), expected)
    np.testing.assert_array_equal(host(idx), expected_idx)

    go = upstream(cpu_out.shape, dtype, seed % 1000)
    grad = gpu.max_pool2d_backward(dev(go if contiguous else strided(go)), idx, (g.h, g.w))
    cpu_grad = cpu.max_pool2d_backward(go, cpu_idx, (g.h, g.w))
    if _windows_overlap(g):
        assert_atomic_close(grad, cpu_grad, "backward")
    else:
        assert_same_as_cpu(grad, cpu_grad, "backward")
    if ((cpu_idx >= 0) & (cpu_idx < g.h * g.w)).all():  # torch writes outside the plane otherwise
        _, _, expected_grad = torch_max_pool2d(x, g, go)
        np.testing.assert_allclose(host(grad), expected_grad, **TOL[np.dtype(dtype)])


def test_max_pool2d_window_without_in_bounds_tap():
    """H = W = 2, k = 2, d = 3, p = 1: −inf and index 6 (≥ H·W); the backward drops that gradient."""
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    out, idx = gpu.max_pool2d_forward(dev(x), (2, 2), (2, 2), (1, 1), (3, 3), False)
    assert host(out).item() == -np.inf and host(idx).item() == 6
    grad = gpu.max_pool2d_backward(dev(np.ones((1, 1, 1, 1))), idx, (2, 2))
    np.testing.assert_array_equal(host(grad), np.zeros((1, 1, 2, 2)))


def test_max_pool2d_backward_sums_overlapping_windows():
    """3×3 with the max in the centre, k = 2, s = 1: four threads add 1 + 2 + 3 + 4 into one element (atomics)."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    out, idx = gpu.max_pool2d_forward(dev(x), (2, 2), (1, 1), (0, 0), (1, 1), False)
    assert np.all(host(idx) == 4)
    grad = host(gpu.max_pool2d_backward(dev(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])), idx, (3, 3)))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0  # small integers: exact in any order
    np.testing.assert_array_equal(grad, expected)


@few
@given(g=pool_geometries(max_size=8, max_dilation=1), seed=seeds, dtype=dtypes, contiguous=st.booleans())
def test_max_unpool2d_after_pool_matches_cpu_and_torch(g, seed, dtype, contiguous):
    """pool → unpool(output_size = x's size) → the gather backward; exact against the CPU and torch.

    Integer-valued data: ties, so overlapping windows produce duplicate indices.
    """
    x = pool_input(seed, (g.n, g.c, g.h, g.w), dtype, "ties")
    cpu_out, cpu_idx = cpu.max_pool2d_forward(x, *g.args)
    values = cpu_out if contiguous else strided(cpu_out)
    unpooled = gpu.max_unpool2d_forward(dev(values), dev(cpu_idx), (g.h, g.w))
    assert_same_as_cpu(unpooled, cpu.max_unpool2d_forward(values, cpu_idx, (g.h, g.w)), "unpool forward")
    expected = torch.nn.functional.max_unpool2d(
        torch.tensor(cpu_out), torch.tensor(cpu_idx), g.kernel, g.stride, g.padding, output_size=(g.h, g.w)
    )
    np.testing.assert_array_equal(host(unpooled), expected.numpy())

    go = upstream((g.n, g.c, g.h, g.w), dtype, seed % 1000)
    grad = gpu.max_unpool2d_backward(dev(go), dev(cpu_idx))
    assert_same_as_cpu(grad, cpu.max_unpool2d_backward(go, cpu_idx), "unpool backward")
    vt = torch.tensor(cpu_out, requires_grad=True)
    torch.nn.functional.max_unpool2d(
        vt, torch.tensor(cpu_idx), g.kernel, g.stride, g.padding, output_size=(g.h, g.w)
    ).backward(torch.tensor(go))
    np.testing.assert_array_equal(host(grad), vt.grad.numpy())


def test_max_unpool2d_duplicate_indices_last_in_c_order_wins():
    """Indices [[0, 0], [3, 0]]: three values claim position 0; the last in C-order (8) wins, as on the CPU.

    The backward gives every duplicate the full gradient of its position.
    """
    x = np.array([[[[5.0, 6.0], [7.0, 8.0]]]])
    idx = np.array([[[[0, 0], [3, 0]]]], dtype=np.int64)
    out = host(gpu.max_unpool2d_forward(dev(x), dev(idx), (2, 2)))
    np.testing.assert_array_equal(out, cpu.max_unpool2d_forward(x, idx, (2, 2)))
    np.testing.assert_array_equal(out[0, 0], [[8.0, 0.0], [0.0, 7.0]])
    grad = host(gpu.max_unpool2d_backward(dev(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])), dev(idx)))
    np.testing.assert_array_equal(grad[0, 0], [[1.0, 1.0], [4.0, 1.0]])


def test_max_unpool2d_odd_output_size_and_empty_input():
    """5×5 → pool 2×2 → unpool to 5×5 (indices decoded with the 5-wide output); an empty batch gives empty outputs."""
    x = np.random.default_rng(0).permutation(25).astype(np.float32).reshape(1, 1, 5, 5)
    out, idx = cpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    unpooled = gpu.max_unpool2d_forward(dev(out), dev(idx), (5, 5))
    assert_same_as_cpu(unpooled, cpu.max_unpool2d_forward(out, idx, (5, 5)))
    empty = np.zeros((0, 2, 4, 4), np.float32)
    pooled, pooled_idx = gpu.max_pool2d_forward(dev(empty), (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert host(pooled).shape == (0, 2, 2, 2)
    assert host(gpu.max_pool2d_backward(pooled, pooled_idx, (4, 4))).shape == (0, 2, 4, 4)
    assert host(gpu.max_unpool2d_forward(pooled, pooled_idx, (4, 4))).shape == (0, 2, 4, 4)


def test_max_unpool2d_index_outside_the_plane_raises_as_on_the_cpu():
    values = np.ones((1, 2, 2, 2), np.float32)
    indices = np.array([0, 5, 10, 15, 0, 5, 10, -3], np.int64).reshape(1, 2, 2, 2)
    with pytest.raises(ValueError, match=r"Found an invalid max index: -3 \(output volumes are of size 4x4\)"):
        gpu.max_unpool2d_forward(dev(values), dev(indices), (4, 4))
    with pytest.raises(ValueError, match=r"Found an invalid max index: -3 \(output volumes are of size 4x4\)"):
        cpu.max_unpool2d_forward(values, indices, (4, 4))
