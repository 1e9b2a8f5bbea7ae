"""`minitorchseg.kernels.cpu` conv_transpose2d entries against torch: forward, input and weight gradients."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import (
    conv2d_backward_bias,
    conv2d_forward,
    conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight,
    conv_transpose2d_forward,
)
from tests.kernels.conv_cases import (
    assert_conv_close,
    execution,
    executions,
    gradient_magnitudes,
    noncontiguous,
    transpose_geometries,
)
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream


def torch_conv_transpose2d(x, w, b, g, go):
    """torch's forward and the input, weight and bias gradients (None without a bias) for the upstream ``go``."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    out = torch.nn.functional.conv_transpose2d(
        xt, wt, bt, g.stride, g.padding, g.output_padding, g.groups, g.dilation
    )
    out.backward(torch.tensor(go))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy()


@settings_fast
@given(g=transpose_geometries(), seed=seeds, dtype=dtypes, strided=st.booleans(), biased=st.booleans(),
       run=executions)
def test_conv_transpose2d_entries_match_torch(g, seed, dtype, strided, biased, run):
    # transposed-conv weight (Cin, Cout/groups, kh, kw): here Cin = groups·cg, Cout/groups = og
    x = randn(seed, (g.n, g.cin, g.h, g.w), dtype)
    w = randn(seed + 1, (g.cin, g.og) + g.kernel, dtype)
    b = randn(seed + 2, (g.cout,), dtype) if biased else None
    go = upstream((g.n, g.cout) + g.transpose_out, dtype, seed)
    ref_out, ref_gx, ref_gw, ref_gb = torch_conv_transpose2d(x, w, b, g, go)
    if strided:
        x, w, go = noncontiguous(x), noncontiguous(w), noncontiguous(go)
    with execution(*run):
        out = conv_transpose2d_forward(x, w, g.stride, g.padding, g.output_padding, g.groups, g.dilation, b)
        gb = conv2d_backward_bias(go)
        gx = conv_transpose2d_backward_input(go, w, g.stride, g.padding, g.groups, g.dilation)
        gw = conv_transpose2d_backward_weight(x, go, g.kernel, g.stride, g.padding, g.groups, g.dilation)
    # rows past H exist only when output_padding ≥ stride (allowed below the dilation); they are dropped
    extra = tuple(o // s for o, s in zip(g.output_padding, g.stride))
    assert gx.shape == (g.n, g.cin, g.h + extra[0], g.w + extra[1])
    gx = gx[:, :, : g.h, : g.w]
    assert_conv_close(out, ref_out, "output", g.cg * g.kernel[0] * g.kernel[1], "forward")
    if biased:
        magnitude = float(np.abs(go.astype(np.float64)).sum(axis=(0, 2, 3)).max())
        assert_conv_close(gb, ref_gb, "weight", g.og * g.kernel[0] * g.kernel[1], "grad bias", magnitude)
    assert_conv_close(gx, ref_gx, "output", g.og * g.kernel[0] * g.kernel[1], "grad input")
    magnitude = gradient_magnitudes(
        lambda x, w: torch.nn.functional.conv_transpose2d(
            x, w, None, g.stride, g.padding, g.output_padding, g.groups, g.dilation
        ),
        [x, w], go,
    )[1]
    assert_conv_close(gw, ref_gw, "weight", g.og * g.kernel[0] * g.kernel[1], "grad weight", magnitude)


@settings_fast
@given(g=transpose_geometries(), seed=seeds)
def test_conv_transpose2d_adjoint_identity(g, seed):
    """``<conv_transpose2d(x, w), y> == <x, conv2d(y, w)>`` with w read as a conv2d weight."""
    x = randn(seed, (g.n, g.cin, g.h, g.w))
    w = randn(seed + 1, (g.cin, g.og) + g.kernel)
    y = randn(seed + 2, (g.n, g.cout) + g.transpose_out)
    out = conv_transpose2d_forward(x, w, g.stride, g.padding, g.output_padding, g.groups, g.dilation)
    back = conv2d_forward(y, w, g.stride, g.padding, g.dilation, g.groups)[:, :, : g.h, : g.w]
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(x, back), rtol=1e-10, atol=1e-10)


def test_conv_transpose2d_checkerboard_counts():
    """All-ones x and w, k = 3, s = 2: each output pixel counts the taps that reach it, periodic with period 2.

    Along one dim, output position Y receives #{(y, i): 2y + i = Y, y < 4, i < 3} taps:
    2 at the even interior positions, 1 elsewhere; in 2-D the product of the two counts.
    """
    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 3, 3))
    out = conv_transpose2d_forward(x, w, (2, 2), (0, 0), (0, 0), 1, (1, 1))[0, 0]
    counts = np.array([1, 1, 2, 1, 2, 1, 2, 1, 1], dtype=float)  # Y = 0..8: 2y + i = Y, y < 4, i < 3
    np.testing.assert_array_equal(out, np.outer(counts, counts))


def test_conv_transpose2d_is_deterministic():
    x = randn(0, (2, 4, 5, 6), np.float32)
    w = randn(1, (4, 3, 3, 3), np.float32)
    args = ((2, 1), (1, 0), (1, 0), 2, (1, 2))
    first = conv_transpose2d_forward(x, w, *args)
    np.testing.assert_array_equal(first, conv_transpose2d_forward(x, w, *args))


def test_conv_transpose2d_hand_example():
    """x = [[1, 2], [3, 4]], w = [[1, 2], [3, 4]].

    Stride 1: every input pixel adds ``x[y, x]·w`` at offset (y, x) of a 3x3 output:
    out[1, 1] = 1·4 + 2·3 + 3·2 + 4·1 = 20, out[0, 1] = 1·2 + 2·1 = 4, ...
    Stride 2 (U-Net's 2x2 up-convolution): the copies do not overlap, out[2y + i, 2x + j] = x[y, x]·w[i, j].
    With padding 1 the stride-1 output loses its border: only out[1, 1] = 20 is left.
    """
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    stride1 = conv_transpose2d_forward(x, w, (1, 1), (0, 0), (0, 0), 1, (1, 1))[0, 0]
    np.testing.assert_array_equal(stride1, [[1, 4, 4], [6, 20, 16], [9, 24, 16]])
    stride2 = conv_transpose2d_forward(x, w, (2, 2), (0, 0), (0, 0), 1, (1, 1))[0, 0]
    np.testing.assert_array_equal(stride2, [[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]])
    padded = conv_transpose2d_forward(x, w, (1, 1), (1, 1), (0, 0), 1, (1, 1))[0, 0]
    np.testing.assert_array_equal(padded, [[20]])
    # gradients of the stride-2 case for an upstream gradient of ones: grad_x[y, x] = Σ w = 10,
    # grad_w[i, j] = Σ x = 10
    ones = np.ones((1, 1, 4, 4))
    np.testing.assert_array_equal(conv_transpose2d_backward_input(ones, w, (2, 2), (0, 0), 1, (1, 1)), 10.0 * x ** 0)
    np.testing.assert_array_equal(
        conv_transpose2d_backward_weight(x, ones, (2, 2), (2, 2), (0, 0), 1, (1, 1)), np.full((1, 1, 2, 2), 10.0)
    )


@pytest.mark.parametrize("cg, og", [(2, 3), (3, 2)])
@pytest.mark.parametrize("padding, output_padding, dilation", [
    ((0, 0), (0, 0), (1, 1)),
    ((3, 1), (1, 0), (2, 1)),
    ((5, 2), (1, 0), (2, 1)),  # rotated-kernel padding (−1, −1)
])
def test_stride1_routes_agree(cg, og, padding, output_padding, dilation):
    """At stride 1 the transposed conv may run as a conv2d with the rotated kernel (padding d(k−1) − p,
    negative = a crop); it must equal the GEMM + col2im route, groups included."""
    from minitorchseg.kernels.cpu import conv as conv_kernels

    x = randn(0, (2, 2 * cg, 8, 6))
    w = randn(1, (2 * cg, og, 3, 2))
    out = conv_transpose2d_forward(x, w, (1, 1), padding, output_padding, 2, dilation)
    scatter = conv_kernels._conv_transpose2d_gemm(x, w, (1, 1), padding, dilation, 2, out.shape[2:])
    np.testing.assert_allclose(out, scatter, rtol=1e-12, atol=1e-12)
