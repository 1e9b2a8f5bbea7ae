"""`minitorchseg.kernels.cpu` conv2d entries against torch: forward, input and weight gradients (torch autograd)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import (
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_forward,
    conv_transpose2d_forward,
)
from tests.kernels.conv_cases import (
    assert_conv_close,
    conv_geometries,
    execution,
    executions,
    gradient_magnitudes,
    noncontiguous,
)
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream


def torch_conv2d(x, w, b, g, go):
    """torch's forward and the input, weight and bias gradients (None without a bias) for the upstream ``go``."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, bt, g.stride, g.padding, g.dilation, g.groups)
    out.backward(torch.tensor(go))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy()


@settings_fast
@given(g=conv_geometries(), seed=seeds, dtype=dtypes, strided=st.booleans(), biased=st.booleans(), run=executions)
def test_conv2d_entries_match_torch(g, seed, dtype, strided, biased, run):
    x = randn(seed, (g.n, g.cin, g.h, g.w), dtype)
    w = randn(seed + 1, (g.cout, g.cg) + g.kernel, dtype)
    b = randn(seed + 2, (g.cout,), dtype) if biased else None
    go = upstream((g.n, g.cout) + g.conv_out, dtype, seed)
    ref_out, ref_gx, ref_gw, ref_gb = torch_conv2d(x, w, b, g, go)
    if strided:
        x, w, go = noncontiguous(x), noncontiguous(w), noncontiguous(go)
    k = g.cg * g.kernel[0] * g.kernel[1]
    with execution(*run):
        out = conv2d_forward(x, w, g.stride, g.padding, g.dilation, g.groups, b)
        gx = conv2d_backward_input(go, w, (g.h, g.w), g.stride, g.padding, g.dilation, g.groups)
        gw = conv2d_backward_weight(x, go, g.kernel, g.stride, g.padding, g.dilation, g.groups)
        gb = conv2d_backward_bias(go)
    assert_conv_close(out, ref_out, "output", k, "forward")
    if biased:
        magnitude = float(np.abs(go.astype(np.float64)).sum(axis=(0, 2, 3)).max())
        assert_conv_close(gb, ref_gb, "weight", k, "grad bias", magnitude)
    assert_conv_close(gx, ref_gx, "output", g.og * g.kernel[0] * g.kernel[1], "grad input")
    magnitude = gradient_magnitudes(
        lambda x, w: torch.nn.functional.conv2d(x, w, None, g.stride, g.padding, g.dilation, g.groups), [x, w], go
    )[1]
    assert_conv_close(gw, ref_gw, "weight", k, "grad weight", magnitude)


@settings_fast
@given(g=conv_geometries(), seed=seeds)
def test_conv2d_adjoint_identity(g, seed):
    """``<conv2d(x, w), y> == <x, conv_transpose2d(y, w, output_padding)>``: the input gradient is the adjoint."""
    x = randn(seed, (g.n, g.cin, g.h, g.w))
    w = randn(seed + 1, (g.cout, g.cg) + g.kernel)
    y = randn(seed + 2, (g.n, g.cout) + g.conv_out)
    output_padding = tuple(
        n - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
        for n, o, s, p, d, k in zip((g.h, g.w), g.conv_out, g.stride, g.padding, g.dilation, g.kernel)
    )
    assert all(0 <= op < s for op, s in zip(output_padding, g.stride))
    left = np.vdot(conv2d_forward(x, w, g.stride, g.padding, g.dilation, g.groups), y)
    right = np.vdot(x, conv_transpose2d_forward(y, w, g.stride, g.padding, output_padding, g.groups, g.dilation))
    np.testing.assert_allclose(left, right, rtol=1e-10, atol=1e-10)


@settings_fast
@given(seed=seeds, dtype=dtypes, n=st.integers(1, 4), cin=st.integers(1, 5), cout=st.integers(1, 5),
       h=st.integers(1, 7), w=st.integers(1, 7), run=executions)
def test_conv2d_pointwise_path(seed, dtype, n, cin, cout, h, w, run):
    """1x1 kernel, stride 1, no padding: the image is used as its own column matrix (copied side by side
    when a block holds several images)."""
    x = randn(seed, (n, cin, h, w), dtype)
    wt = randn(seed + 1, (cout, cin, 1, 1), dtype)
    go = upstream((n, cout, h, w), dtype, seed)
    ref_out = np.einsum("oc,nchw->nohw", wt[:, :, 0, 0].astype(np.float64), x.astype(np.float64))
    ref_gw = np.einsum("nohw,nchw->oc", go.astype(np.float64), x.astype(np.float64))[:, :, None, None]
    one = ((1, 1), (0, 0), (1, 1), 1)
    with execution(*run):
        out, gw = conv2d_forward(x, wt, *one), conv2d_backward_weight(x, go, (1, 1), *one)
    assert_conv_close(out, ref_out.astype(dtype), "output", cin, "forward")
    magnitude = np.einsum("nohw,nchw->oc", np.abs(go.astype(np.float64)), np.abs(x.astype(np.float64))).max()
    assert_conv_close(gw, ref_gw.astype(dtype), "weight", cin, "grad w", magnitude)


@pytest.mark.parametrize("mode", ["caller", "workers", "caller-parallel", "one-thread"])
def test_conv2d_is_deterministic(mode):
    """Same inputs, same bits: planes are owned by one thread, partial sums are added in a fixed order."""
    g = dict(stride=(1, 2), padding=(1, 1), dilation=(1, 1), groups=2)
    x = randn(0, (3, 4, 9, 8), np.float32)
    w = randn(1, (6, 2, 3, 3), np.float32)
    go = randn(2, (3, 6, 9, 4), np.float32)
    runs = []
    for _ in range(2):
        with execution(600, mode):
            runs.append((conv2d_forward(x, w, *g.values()), conv2d_backward_input(go, w, (9, 8), *g.values()),
                         conv2d_backward_weight(x, go, (3, 3), *g.values())))
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def test_conv2d_hand_example():
    """x = 1..9 as 3x3, w = [[1, 2], [3, 4]], no padding, stride 1: a 2x2 output.

    out[0,0] = 1·1 + 2·2 + 3·4 + 4·5 = 37, then 47, 67, 77. With an upstream
    gradient of ones: grad_w[i, j] = sum of the window's pixels at offset (i, j)
    (12, 16, 24, 28) and grad_x counts the kernel taps covering each pixel.
    """
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    geometry = ((1, 1), (0, 0), (1, 1), 1)
    np.testing.assert_array_equal(conv2d_forward(x, w, *geometry)[0, 0], [[37.0, 47.0], [67.0, 77.0]])
    ones = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(conv2d_backward_weight(x, ones, (2, 2), *geometry)[0, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(
        conv2d_backward_input(ones, w, (3, 3), *geometry)[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]]
    )


def test_conv2d_padding_stride_dilation_example():
    """Padding 1, stride 2, dilation 2, a 2x2 kernel of ones on x[r, c] = 4r + c (4x4): a 2x2 output.

    Output (y, c) sums the padded image at rows {2y, 2y + 2} and columns {2c, 2c + 2},
    i.e. x at rows/cols {2y − 1, 2y + 1}, zero outside 0..3:
    (0,0): x[1,1] = 5; (0,1): x[1,1] + x[1,3] = 12; (1,0): x[1,1] + x[3,1] = 18;
    (1,1): 5 + 7 + 13 + 15 = 40.
    """
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2))
    out = conv2d_forward(x, w, (2, 2), (1, 1), (2, 2), 1)[0, 0]
    np.testing.assert_array_equal(out, [[5.0, 12.0], [18.0, 40.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cin, cout, n, biased",
                         [(3, 8, 1, True), (3, 8, 3, False), (8, 8, 2, True), (16, 8, 3, False)])
def test_conv2d_relu_is_relu_of_the_conv_bit_for_bit(dtype, cin, cout, n, biased):
    """``relu=True``: the forward kernel's output is relu_forward of its output without, bit for bit, on the
    im2col route (3 input channels; one image per block and several) and Winograd's (8 and 16 channels), and
    torch's relu(conv2d) within the conv tolerance."""
    from minitorchseg.kernels.cpu import relu_forward

    x = randn(0, (n, cin, 9, 11), dtype)
    w = randn(1, (cout, cin, 3, 3), dtype)
    b = randn(2, (cout,), dtype) if biased else None
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    fused = conv2d_forward(x, w, *geometry, b, relu=True)
    np.testing.assert_array_equal(fused, relu_forward(conv2d_forward(x, w, *geometry, b)))
    assert (fused == 0).any() and (fused > 0).any()
    ref = torch.relu(torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), None if b is None else
                                                torch.tensor(b), 1, 1)).numpy()
    assert_conv_close(fused, ref, "output", cin * 9, "conv2d + relu")
