"""CUDA conv2d / conv_transpose2d entries (`minitorchseg.kernels.cuda`) against the CPU ones and torch, both gradients.

Tolerances: docs/semantics.md#tolerances's conv rule (:func:`tests.kernels.conv_cases.assert_conv_close`)
against torch *and* against the CPU kernel: both devices multiply with a BLAS
(cuBLAS on a GPU), whose blocking may order the dot products' sums differently.
The col2im gather itself adds in the CPU's order; there are no atomics here.
"""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from minitorchseg.kernels.cuda import conv as cuda_conv
from tests.kernels.conv_cases import Geometry, assert_conv_close, conv_geometries, noncontiguous, transpose_geometries
from tests.strategies import dtypes, randn, seeds
from tests.torch_ref import upstream

from .common import dev, host

pytestmark = pytest.mark.cudasim

# Column-block budgets: the default, and 1 byte (one image per block: the multi-block loop).
cols_bytes = st.sampled_from([cuda_conv._COLS_BYTES, 1])
few = settings(max_examples=20, deadline=None)


def _torch_grads(fn, x, w, go):
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out = fn(xt, wt)
    out.backward(torch.tensor(go))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def _check_conv2d(g: Geometry, seed: int, dtype, strided: bool, budget: int) -> None:
    x = randn(seed, (g.n, g.cin, g.h, g.w), dtype)
    w = randn(seed + 1, (g.cout, g.cg) + g.kernel, dtype)
    go = upstream((g.n, g.cout) + g.conv_out, dtype, seed % 1000)
    ref = _torch_grads(
        lambda a, b: torch.nn.functional.conv2d(a, b, None, g.stride, g.padding, g.dilation, g.groups), x, w, go
    )
    if strided:
        x, w, go = noncontiguous(x), noncontiguous(w), noncontiguous(go)
    geometry = (g.stride, g.padding, g.dilation, g.groups)
    cpu_results = (
        cpu.conv2d_forward(x, w, *geometry),
        cpu.conv2d_backward_input(go, w, (g.h, g.w), *geometry),
        cpu.conv2d_backward_weight(x, go, g.kernel, *geometry),
    )
    with mock.patch.object(cuda_conv, "_COLS_BYTES", budget):
        cuda_results = (
            gpu.conv2d_forward(dev(x), dev(w), *geometry),
            gpu.conv2d_backward_input(dev(go), dev(w), (g.h, g.w), *geometry),
            gpu.conv2d_backward_weight(dev(x), dev(go), g.kernel, *geometry),
        )
    lengths = (g.cg * g.kernel[0] * g.kernel[1], g.og * g.kernel[0] * g.kernel[1], g.cg * g.kernel[0] * g.kernel[1])
    kinds = ("output", "output", "weight")
    for name, ours, mine_cpu, theirs, k, kind in zip(("forward", "grad input", "grad weight"), cuda_results,
                                                      cpu_results, ref, lengths, kinds):
        assert_conv_close(host(ours), theirs, kind, k, f"{name} vs torch")
        assert_conv_close(host(ours), mine_cpu, kind, k, f"{name} vs cpu")


@few
@given(g=conv_geometries(max_extra=3), seed=seeds, dtype=dtypes, strided=st.booleans(), budget=cols_bytes)
def test_conv2d_matches_cpu_and_torch(g, seed, dtype, strided, budget):
    _check_conv2d(g, seed, dtype, strided, budget)


@pytest.mark.parametrize(
    "g",
    [
        Geometry(2, 1, 3, 2, 4, 5, (1, 1), (1, 1), (0, 0), (1, 1)),  # 1x1: the image is its own column matrix
        Geometry(1, 2, 2, 1, 5, 3, (3, 3), (2, 1), (1, 2), (1, 1)),  # odd sizes, padding, groups
        Geometry(1, 1, 1, 2, 3, 3, (3, 2), (1, 3), (3, 0), (2, 1)),  # padding wider than the image
    ],
)
def test_conv2d_edge_cases(g):
    _check_conv2d(g, 7, np.float64, False, cuda_conv._COLS_BYTES)


def _check_conv_transpose2d(g: Geometry, seed: int, dtype, strided: bool, budget: int) -> None:
    x = randn(seed, (g.n, g.cin, g.h, g.w), dtype)
    w = randn(seed + 1, (g.cin, g.og) + g.kernel, dtype)
    go = upstream((g.n, g.cout) + g.transpose_out, dtype, seed % 1000)
    ref = _torch_grads(
        lambda a, b: torch.nn.functional.conv_transpose2d(
            a, b, None, g.stride, g.padding, g.output_padding, g.groups, g.dilation
        ),
        x, w, go,
    )
    if strided:
        x, w, go = noncontiguous(x), noncontiguous(w), noncontiguous(go)
    cpu_results = (
        cpu.conv_transpose2d_forward(x, w, g.stride, g.padding, g.output_padding, g.groups, g.dilation),
        cpu.conv_transpose2d_backward_input(go, w, g.stride, g.padding, g.groups, g.dilation)[..., : g.h, : g.w],
        cpu.conv_transpose2d_backward_weight(x, go, g.kernel, g.stride, g.padding, g.groups, g.dilation),
    )
    with mock.patch.object(cuda_conv, "_COLS_BYTES", budget):
        cuda_results = (
            gpu.conv_transpose2d_forward(dev(x), dev(w), g.stride, g.padding, g.output_padding, g.groups, g.dilation),
            gpu.conv_transpose2d_backward_input(dev(go), dev(w), g.stride, g.padding, g.groups, g.dilation),
            gpu.conv_transpose2d_backward_weight(dev(x), dev(go), g.kernel, g.stride, g.padding, g.groups, g.dilation),
        )
    cuda_results = (cuda_results[0], host(cuda_results[1])[..., : g.h, : g.w], cuda_results[2])
    k_out = g.cg * g.kernel[0] * g.kernel[1]
    k_in = g.og * g.kernel[0] * g.kernel[1]
    for name, ours, mine_cpu, theirs, k, kind in zip(("forward", "grad input", "grad weight"), cuda_results,
                                                      cpu_results, ref, (k_out, k_in, k_out),
                                                      ("output", "output", "weight")):
        assert_conv_close(host(ours), theirs, kind, k, f"{name} vs torch")
        assert_conv_close(host(ours), mine_cpu, kind, k, f"{name} vs cpu")


@few
@given(g=transpose_geometries(), seed=seeds, dtype=dtypes, strided=st.booleans(), budget=cols_bytes)
def test_conv_transpose2d_matches_cpu_and_torch(g, seed, dtype, strided, budget):
    _check_conv_transpose2d(g, seed, dtype, strided, budget)


def test_conv_transpose2d_output_padding_beyond_stride():
    """output_padding ≥ stride (allowed below the dilation): rows past E hold no tap; the input gradient is cropped."""
    g = Geometry(1, 1, 2, 2, 3, 2, (2, 2), (1, 1), (0, 0), (3, 2), output_padding=(2, 1))
    _check_conv_transpose2d(g, 3, np.float64, False, cuda_conv._COLS_BYTES)


def test_col2im_hand_example():
    """conv_transpose2d of a 2x2 input with a 2x2 all-ones kernel, stride 1: every output pixel counts its taps."""
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.ones((1, 1, 2, 2))
    out = host(gpu.conv_transpose2d_forward(dev(x), dev(w), (1, 1), (0, 0), (0, 0), 1, (1, 1)))
    np.testing.assert_array_equal(out[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


@few
@given(g=transpose_geometries(), seed=seeds, dtype=dtypes)
def test_bias_matches_cpu_and_torch(g, seed, dtype):
    """The forward kernels' bias (conv2d and conv_transpose2d, and conv2d's ReLU) and conv2d_backward_bias, against
    the CPU and torch."""
    x = randn(seed, (g.n, g.cin, g.h, g.w), dtype)
    w_t = randn(seed + 1, (g.cin, g.og) + g.kernel, dtype)    # conv_transpose2d weight; read as conv2d's below
    b_t = randn(seed + 2, (g.cout,), dtype)
    b_c = randn(seed + 3, (g.cin,), dtype)
    y = randn(seed + 4, (g.n, g.cout) + g.transpose_out, dtype)
    geometry = (g.stride, g.padding, g.dilation, g.groups)
    ref_t = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w_t), torch.tensor(b_t), g.stride,
                                                 g.padding, g.output_padding, g.groups, g.dilation).numpy()
    ref_c = torch.nn.functional.conv2d(torch.tensor(y), torch.tensor(w_t), torch.tensor(b_c), *geometry).numpy()
    cases = (
        ("conv_transpose2d", ref_t, cpu.conv_transpose2d_forward(x, w_t, g.stride, g.padding, g.output_padding,
                                                                 g.groups, g.dilation, b_t),
         gpu.conv_transpose2d_forward(dev(x), dev(w_t), g.stride, g.padding, g.output_padding, g.groups, g.dilation,
                                      dev(b_t))),
        ("conv2d", ref_c, cpu.conv2d_forward(y, w_t, *geometry, b_c),
         gpu.conv2d_forward(dev(y), dev(w_t), *geometry, dev(b_c))),
        ("conv2d + relu", np.maximum(ref_c, 0), cpu.conv2d_forward(y, w_t, *geometry, b_c, relu=True),
         gpu.conv2d_forward(dev(y), dev(w_t), *geometry, dev(b_c), relu=True)),
    )
    for name, ref, mine_cpu, ours in cases:
        assert_conv_close(host(ours), ref, "output", g.og * g.kernel[0] * g.kernel[1], f"{name} vs torch")
        assert_conv_close(host(ours), mine_cpu, "output", g.og * g.kernel[0] * g.kernel[1], f"{name} vs cpu")
    magnitude = float(np.abs(y.astype(np.float64)).sum(axis=(0, 2, 3)).max())
    grad_b = host(gpu.conv2d_backward_bias(dev(y)))
    ref_gb = y.astype(np.float64).sum(axis=(0, 2, 3)).astype(dtype)
    assert_conv_close(grad_b, ref_gb, "weight", 1, "bias gradient vs float64 sum", magnitude)
    assert_conv_close(grad_b, cpu.conv2d_backward_bias(y), "weight", 1, "bias gradient vs cpu", magnitude)
