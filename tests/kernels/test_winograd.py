"""Winograd F(2x2, 3x3) (`minitorchseg.kernels.cpu.winograd`): its matrices, its transforms, and the
convolutions that run through it against torch (forward, input gradient, weight gradient), which convolutions
take it, and that it gives the same bits on every run."""

import contextlib
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import (
    conv,
    conv2d_backward_input,
    conv2d_backward_weight,
    conv2d_forward,
    conv_transpose2d_forward,
)
from minitorchseg.kernels.cpu import winograd as wg
from tests.kernels.conv_cases import assert_conv_close, execution, executions, gradient_magnitudes, noncontiguous
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream


@contextlib.contextmanager
def route_spies():
    """Spies on the Winograd routes (forward and input gradient; weight gradient) that still run them."""
    with mock.patch.object(conv, "_conv2d_winograd", wraps=conv._conv2d_winograd) as spy, \
            mock.patch.object(conv, "_conv2d_winograd_weight", wraps=conv._conv2d_winograd_weight) as spy_weight:
        yield spy, spy_weight


def test_one_dimensional_identity_by_hand():
    """F(2, 3): d = (1, 2, 3, 4), g = (1, 10, 100): y0 = 1 + 20 + 300 = 321, y1 = 2 + 30 + 400 = 432."""
    d = np.array([1.0, 2.0, 3.0, 4.0])
    g = np.array([1.0, 10.0, 100.0])
    np.testing.assert_array_equal(wg.A_T @ ((wg.G @ g) * (wg.B_T @ d)), [321.0, 432.0])


@given(seed=seeds, dtype=dtypes)
def test_transforms_match_their_matrices(seed, dtype):
    """The kernels' unrolled transforms equal the products with B_T, G and A_T written as matrices."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    u = wg.weight_transform(w)
    ref_u = np.einsum("ai,ocij,bj->aboc", wg.G, w.astype(np.float64), wg.G).reshape(16, 3, 2)
    np.testing.assert_allclose(u, ref_u, rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-6)
    # one 4x4 image, padding 0: a single tile, V = Bᵀ d B, then the zero column
    x = rng.standard_normal((1, 1, 4, 4)).astype(dtype)
    v = np.full((16, 2), np.nan, dtype)
    wg.input_transform(x, v, 0, 0, 0, 1)
    np.testing.assert_allclose(v[:, 0], (wg.B_T @ x[0, 0].astype(np.float64) @ wg.B_T.T).ravel(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(v[:, 1], 0)
    out = np.empty((1, 1, 2, 2), dtype)
    m = rng.standard_normal((16, 2)).astype(dtype)
    wg.output_transform(m, out, 0, 1)
    np.testing.assert_allclose(out[0, 0], wg.A_T @ m[:, 0].reshape(4, 4).astype(np.float64) @ wg.A_T.T,
                               rtol=1e-6, atol=1e-6)
    # the adjoints: Z = A Y Aᵀ of a 2x2 upstream tile, and grad_w = Gᵀ dU G
    y = rng.standard_normal((1, 1, 2, 2)).astype(dtype)
    z = np.full((16, 2), np.nan, dtype)
    wg.output_gradient_transform(y, z, 0, 1)
    np.testing.assert_allclose(z[:, 0].reshape(4, 4), wg.A_T.T @ y[0, 0].astype(np.float64) @ wg.A_T,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(z[:, 1], 0)
    du = rng.standard_normal((16, 3, 2)).astype(dtype)
    ref_gw = np.einsum("ai,aboc,bj->ocij", wg.G, du.reshape(4, 4, 3, 2).astype(np.float64), wg.G)
    np.testing.assert_allclose(wg.weight_gradient_transform(du), ref_gw, rtol=1e-6, atol=1e-6)


@given(seed=seeds, dtype=dtypes, shape=st.tuples(st.integers(1, 5), st.integers(1, 5)))
def test_rotated_weight_transform_is_the_transform_of_the_rotated_kernel(seed, dtype, shape):
    """weight_transform(w, rotated=True), read straight from w, equals the transform of the rotated kernel
    with its channels swapped (conv._flipped), up to the order of G's three-term sums (1 ulp)."""
    w = np.random.default_rng(seed).standard_normal(shape + (3, 3)).astype(dtype)
    u = wg.weight_transform(w, rotated=True)
    assert u.shape == (16, shape[1], shape[0])
    np.testing.assert_allclose(u, wg.weight_transform(conv._flipped(w, 1)),
                               rtol=2 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)


@settings_fast
@given(seed=seeds, dtype=dtypes, parallel=st.booleans(), data=st.data())
def test_tile_transforms_on_flat_planes(seed, dtype, parallel, data):
    """Every tile of a band of tile rows, on the flat planes: V = Bᵀ d B (d read from the zero-padded image),
    the output tiles Aᵀ M A plus a bias when given (only the band's rows written), Z = A Y Aᵀ (a half
    tile's missing pixels as 0), the zero column after each tile row, and nothing written past the block's entries."""
    b, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
    h, w = data.draw(st.integers(max(1, 3 - 2 * ph), 9)), data.draw(st.integers(max(1, 3 - 2 * pw), 9))
    ho, wo = h + 2 * ph - 2, w + 2 * pw - 2
    th, tw = -(-ho // 2), -(-wo // 2)
    ty0 = data.draw(st.integers(0, th - 1))
    T = data.draw(st.integers(1, th - ty0))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, c, h, w)).astype(dtype)
    n = c * b * T * (tw + 1)
    v = np.full((16, n + 3), np.nan, dtype)
    wg.input_transform(x, v, ph, pw, ty0, T, parallel=parallel)
    xpad = np.zeros((b, c, 2 * th + 2, 2 * tw + 2))
    xpad[:, :, ph : ph + h, pw : pw + w] = x                                # 2th + 2 ≥ h + 2ph
    tiles = np.lib.stride_tricks.sliding_window_view(xpad, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # (b, c, th, tw, 4, 4)
    ref_v = np.einsum("ar,bctxrs,es->aecbtx", wg.B_T, tiles[:, :, ty0 : ty0 + T], wg.B_T).reshape(16, c, b, T, tw)
    planes = v[:, :n].reshape(16, c, b, T, tw + 1)
    np.testing.assert_allclose(planes[..., :tw], ref_v, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(planes[..., tw], 0)
    assert np.isnan(v[:, n:]).all()
    # output tiles: only rows 2·ty0 .. 2·(ty0 + T) − 1 (those below ho) are written
    o = data.draw(st.integers(1, 3))
    m = rng.standard_normal((16, o * b * T * (tw + 1))).astype(dtype)
    out = np.full((b, o, ho, wo), np.nan, dtype)
    bias = rng.standard_normal(o).astype(dtype) if data.draw(st.booleans()) else None
    wg.output_transform(m, out, ty0, T, parallel=parallel, bias=bias)
    mt = m.reshape(4, 4, o, b, T, tw + 1)[..., :tw].astype(np.float64)                      # (a, b, o, i, t, tx)
    band = np.einsum("ya,abkitq,xb->iktyqx", wg.A_T, mt, wg.A_T).reshape(b, o, 2 * T, 2 * tw)[..., :wo]
    if bias is not None:
        band += bias[:, None, None]
    rows = slice(2 * ty0, min(ho, 2 * (ty0 + T)))
    np.testing.assert_allclose(out[:, :, rows], band[:, :, : rows.stop - rows.start], rtol=1e-5, atol=1e-5)
    outside = np.ones(ho, bool)
    outside[rows] = False
    assert np.isnan(out[:, :, outside]).all()
    # the adjoint: Z = A Y Aᵀ per tile of the upstream gradient, a half tile padded with zeros
    go = rng.standard_normal((b, o, ho, wo)).astype(dtype)
    z = np.full((16, o * b * T * (tw + 1) + 3), np.nan, dtype)
    wg.output_gradient_transform(go, z, ty0, T, parallel=parallel)
    gpad = np.zeros((b, o, 2 * th, 2 * tw))
    gpad[:, :, :ho, :wo] = go
    ytiles = gpad.reshape(b, o, th, 2, tw, 2)[:, :, ty0 : ty0 + T]                               # (b, o, T, 2, tw, 2)
    ref_z = np.einsum("ya,iotyxe,eb->aboitx", wg.A_T, ytiles, wg.A_T).reshape(16, o, b, T, tw)
    zplanes = z[:, : o * b * T * (tw + 1)].reshape(16, o, b, T, tw + 1)
    np.testing.assert_allclose(zplanes[..., :tw], ref_z, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(zplanes[..., tw], 0)
    assert np.isnan(z[:, o * b * T * (tw + 1) :]).all()


@st.composite
def winograd_geometries(draw):
    """A stride-1 3x3 conv2d: channels, padding 0..3, any size the padded kernel fits (odd sizes give half tiles)."""
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    h = draw(st.integers(max(1, 3 - 2 * padding[0]), 11))
    w = draw(st.integers(max(1, 3 - 2 * padding[1]), 11))
    return draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), h, w, padding


@settings_fast
@given(geometry=winograd_geometries(), seed=seeds, dtype=dtypes, strided=st.booleans(), biased=st.booleans(),
       run=executions)
def test_winograd_conv2d_matches_torch(geometry, seed, dtype, strided, biased, run):
    """Forward (with or without a bias, added by the output transform), input gradient (the flipped 3x3 conv)
    and weight gradient (the adjoint transforms) through Winograd, at the tolerances of the im2col route."""
    n, cin, cout, h, w, padding = geometry
    x = randn(seed, (n, cin, h, w), dtype)
    wt = randn(seed + 1, (cout, cin, 3, 3), dtype)
    b = randn(seed + 2, (cout,), dtype) if biased else None
    xt, wtt = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
    ref = torch.nn.functional.conv2d(xt, wtt, None if b is None else torch.tensor(b), 1, padding)
    go = upstream(tuple(ref.shape), dtype, seed)
    ref.backward(torch.tensor(go))
    if strided:
        x, wt, go = noncontiguous(x), noncontiguous(wt), noncontiguous(go)
    geometry = ((1, 1), padding, (1, 1), 1)
    with execution(*run), mock.patch.object(conv, "WINOGRAD_MIN_CHANNELS", 1), route_spies() as (spy, spy_weight):
        out = conv2d_forward(x, wt, *geometry, b)
        gx = conv2d_backward_input(go, wt, (h, w), *geometry)
        gw = conv2d_backward_weight(x, go, (3, 3), *geometry)
    assert (spy.call_count, spy_weight.call_count) == (2, 1)  # all three ran as Winograd
    assert_conv_close(out, ref.detach().numpy(), "output", cin * 9, "forward")
    assert_conv_close(gx, xt.grad.numpy(), "output", cout * 9, "grad input")
    magnitude = gradient_magnitudes(lambda x, w: torch.nn.functional.conv2d(x, w, None, 1, padding), [x, wt], go)[1]
    assert_conv_close(gw, wtt.grad.numpy(), "weight", cin * 9, "grad weight", magnitude)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_widening_conv_input_gradient_runs_as_winograd(dtype):
    """The input gradient of a conv that doubles the channels (U-Net's encoder: C -> 2C) is a stride-1
    transposed conv with more input than output channels (2C -> C). im2col would write more columns on the
    rotated-kernel route, so without Winograd it takes GEMM + col2im; with Winograd it takes the rotated
    kernel through Winograd."""
    x = randn(0, (2, 32, 9, 10), dtype)
    w = randn(1, (32, 16, 3, 3), dtype)   # conv_transpose2d weight (Cin, Cout, 3, 3)
    b = randn(2, (16,), dtype)
    ref = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), 1, 1).numpy()
    with route_spies() as (spy, _):
        out = conv_transpose2d_forward(x, w, (1, 1), (1, 1), (0, 0), 1, (1, 1), b)
    assert spy.call_count == 1
    assert_conv_close(out, ref, "output", 32 * 9, "conv_transpose2d")


def test_threshold_keeps_few_channels_on_im2col():
    """Below WINOGRAD_MIN_CHANNELS input or output channels the im2col route runs: the first layer's RGB
    input in its forward and weight gradient, and its 3 output channels in its input gradient (32 -> 3)."""
    x = randn(0, (1, 3, 8, 8), np.float32)
    w = randn(1, (32, 3, 3, 3), np.float32)
    go = randn(2, (1, 32, 8, 8), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    with route_spies() as (spy, spy_weight):
        conv2d_forward(x, w, *geometry)
        conv2d_backward_input(go, w, (8, 8), *geometry)
        conv2d_backward_weight(x, go, (3, 3), *geometry)
    assert (spy.call_count, spy_weight.call_count) == (0, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nv, nm", [(64 * 512, 65 * 512), (3 * 5, 4 * 5), (16, 17)])
def test_scratch_planes_are_an_odd_number_of_cache_lines_apart(dtype, nv, nm):
    """The 16 flat planes of V and M are C-contiguous, start an odd number of 64-byte lines apart (never a
    power of two), hold at least the entries asked for, and V and M do not overlap."""
    v, m = conv._winograd_scratch(nv, nm, dtype)
    assert v.shape[0] == m.shape[0] == 16 and v.shape[1] >= nv and m.shape[1] >= nm
    for planes in (v, m):
        assert planes.flags.c_contiguous
        assert planes.strides[0] % 64 == 0 and (planes.strides[0] // 64) % 2 == 1
    assert v[-1, -1:].ctypes.data + v.itemsize <= m.ctypes.data


@pytest.mark.parametrize("kernel, stride, dilation, groups, expected", [
    (3, 1, 1, 1, True),
    (3, 2, 1, 1, False),
    (3, 1, 2, 1, False),
    (3, 1, 1, 2, False),
    (5, 1, 1, 1, False),
    (1, 1, 1, 1, False),
])
def test_only_stride_one_3x3_single_group_convs_take_winograd(kernel, stride, dilation, groups, expected):
    """With enough channels (16 in and out), the route depends on the geometry alone: a 3x3 kernel, stride 1,
    dilation 1, one group; every other conv (and its weight gradient) stays on im2col, and matches torch."""
    x = randn(0, (2, 16, 10, 11), np.float64)
    w = randn(1, (16, 16 // groups, kernel, kernel), np.float64)
    geometry = ((stride, stride), (1, 1), (dilation, dilation), groups)
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), None, stride, 1, dilation, groups)
    go = upstream(tuple(ref.shape), np.float64, 2)
    with route_spies() as (spy, spy_weight):
        out = conv2d_forward(x, w, *geometry)
        conv2d_backward_weight(x, go, (kernel, kernel), *geometry)
    assert (spy.call_count, spy_weight.call_count) == ((1, 1) if expected else (0, 0))
    assert_conv_close(out, ref.numpy(), "output", 16 * kernel * kernel, "forward")


@pytest.mark.parametrize("run", [(600, "workers"), (None, "workers")])
def test_winograd_is_deterministic(run):
    """Forward and weight gradient give the same bits twice (the weight gradient's per-worker parts are added
    in worker order), with blocks of a tile row or two and with the default block size, on the workers."""
    x = randn(3, (3, 16, 13, 18), np.float32)
    w = randn(4, (24, 16, 3, 3), np.float32)
    go = randn(5, (3, 24, 13, 18), np.float32)
    geometry = ((1, 1), (1, 1), (1, 1), 1)
    with execution(*run), route_spies() as (spy, _):
        first = conv2d_forward(x, w, *geometry), conv2d_backward_weight(x, go, (3, 3), *geometry)
        second = conv2d_forward(x, w, *geometry), conv2d_backward_weight(x, go, (3, 3), *geometry)
    assert spy.call_count == 2
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weight_transform_planes_are_an_odd_number_of_cache_lines_apart(rotated, dtype):
    """U's 16 planes, written one entry each per kernel, start an odd number of 64-byte lines apart (64x32
    channels would put them 8 KiB apart otherwise); each plane is a C-contiguous matrix for the GEMMs."""
    u = wg.weight_transform(randn(0, (64, 32, 3, 3), dtype), rotated=rotated)
    assert u.shape == ((16, 32, 64) if rotated else (16, 64, 32))
    assert u.strides[0] % 64 == 0 and (u.strides[0] // 64) % 2 == 1
    assert all(plane.flags.c_contiguous for plane in u)
