"""minitorchseg.kernels.cuda bilinear / nearest resize entries against minitorchseg.kernels.cpu and torch.

Rules: docs/semantics.md#interpolate.

Both devices sample with the same taps (computed by the CPU module's helpers),
and the CUDA backwards are gathers that add in the CPU's order (no atomics), so
the CUDA results equal the CPU's bit for bit under the simulator
(:func:`tests.cuda.common.assert_same_as_cpu`). Against torch: the CPU tests'
tolerances (docs/semantics.md#tolerances: bilinear is not bit-exact in torch either).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.kernels.pool_cases import SCALE_FACTORS, strided
from tests.strategies import dtypes, seeds
from tests.torch_ref import upstream

from .common import assert_same_as_cpu, dev, host

pytestmark = pytest.mark.cudasim

# docs/semantics.md#tolerances, as in tests/kernels/test_interpolate.py.
TORCH_TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}
few = settings(max_examples=30, deadline=None)


@st.composite
def resize_cases(draw):
    """``(h, w, torch_kwargs, output_hw, scales)``: by size (up, down, 1, unchanged) or by scale_factor."""
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    if draw(st.booleans()):
        out_hw = (draw(st.sampled_from([h, 1, 2 * h, h + 3])), draw(st.integers(1, 9)))
        return h, w, dict(size=out_hw), out_hw, (None, None)
    factors = (draw(st.sampled_from(SCALE_FACTORS)), draw(st.sampled_from(SCALE_FACTORS)))
    out_hw = (math.floor(h * factors[0]), math.floor(w * factors[1]))
    assume(min(out_hw) >= 1)
    return h, w, dict(scale_factor=factors), out_hw, factors


def _torch_resize(x, mode, kwargs, grad_out, align_corners=None):
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    extra = {} if mode == "nearest" else dict(align_corners=align_corners)
    out = torch.nn.functional.interpolate(xt, mode=mode, **kwargs, **extra)
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), xt.grad.numpy()


@few
@given(case=resize_cases(), seed=seeds, dtype=dtypes, align_corners=st.booleans(), contiguous=st.booleans())
def test_bilinear_matches_cpu_and_torch(case, seed, dtype, align_corners, contiguous):
    h, w, kwargs, out_hw, scales = case
    x = np.random.default_rng(seed).standard_normal((2, 2, h, w)).astype(dtype)
    xin = x if contiguous else strided(x)
    out = gpu.upsample_bilinear2d_forward(dev(xin), out_hw, align_corners, scales)
    assert_same_as_cpu(out, cpu.upsample_bilinear2d_forward(xin, out_hw, align_corners, scales), "forward")
    go = upstream((2, 2) + out_hw, dtype, seed % 1000)
    grad = gpu.upsample_bilinear2d_backward(dev(go if contiguous else strided(go)), (h, w), align_corners, scales)
    assert_same_as_cpu(grad, cpu.upsample_bilinear2d_backward(go, (h, w), align_corners, scales), "backward")
    expected, expected_grad = _torch_resize(x, "bilinear", kwargs, go, align_corners)
    np.testing.assert_allclose(host(out), expected, **TORCH_TOL[np.dtype(dtype)])
    np.testing.assert_allclose(host(grad), expected_grad, **TORCH_TOL[np.dtype(dtype)])


@few
@given(case=resize_cases(), seed=seeds, dtype=dtypes, contiguous=st.booleans())
def test_nearest_matches_cpu_and_torch(case, seed, dtype, contiguous):
    h, w, kwargs, out_hw, scales = case
    x = np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(dtype)
    xin = x if contiguous else strided(x)
    out = gpu.upsample_nearest2d_forward(dev(xin), out_hw, scales)
    assert_same_as_cpu(out, cpu.upsample_nearest2d_forward(xin, out_hw, scales), "forward")
    go = upstream((1, 3) + out_hw, dtype, seed % 1000)
    grad = gpu.upsample_nearest2d_backward(dev(go if contiguous else strided(go)), (h, w), scales)
    assert_same_as_cpu(grad, cpu.upsample_nearest2d_backward(go, (h, w), scales), "backward")
    expected, expected_grad = _torch_resize(x, "nearest", kwargs, go)
    np.testing.assert_array_equal(host(out), expected)
    np.testing.assert_allclose(host(grad), expected_grad, **TORCH_TOL[np.dtype(dtype)])


def test_bilinear_hand_example():
    """2×2 → 3×3 with align_corners: corners copied, edges the mean of two, centre the mean of four.

    The backward of a unit gradient: each corner pixel collects 1 + 2·½ + ¼ = 2.25.
    """
    x = np.array([[[[0.0, 4.0], [8.0, 12.0]]]])
    out = host(gpu.upsample_bilinear2d_forward(dev(x), (3, 3), True, (None, None)))
    np.testing.assert_array_equal(out[0, 0], [[0, 2, 4], [4, 6, 8], [8, 10, 12]])
    grad = host(gpu.upsample_bilinear2d_backward(dev(np.ones((1, 1, 3, 3))), (2, 2), True, (None, None)))
    np.testing.assert_array_equal(grad[0, 0], [[2.25, 2.25], [2.25, 2.25]])


def test_nearest_downsampling_leaves_unread_pixels_without_gradient():
    """4 → 2 by size: outputs read inputs 0 and 2; inputs 1 and 3 get no gradient (their reader range is empty)."""
    go = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    grad = host(gpu.upsample_nearest2d_backward(dev(go), (4, 4), (None, None)))
    expected = np.zeros((4, 4))
    expected[::2, ::2] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(grad[0, 0], expected)
