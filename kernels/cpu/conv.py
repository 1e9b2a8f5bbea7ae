"""conv2d and conv_transpose2d on the CPU: im2col / col2im (or Winograd's transforms) in Numba, the products in BLAS.

Notation (per spatial dim, H shown, W identical): ``s`` stride, ``p`` padding,
``d`` dilation, ``k`` kernel size, ``g`` group index, ``Cg = Cin/groups``
input channels per group, ``Og = Cout/groups`` output channels per group,
``K = Cg·kh·kw`` the length of one receptive field.

conv2d is a matrix product once every receptive field is written out as a column::

    cols[(c, i, j), (y, x)] = x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]   (0 outside)
    out[n, g·Og : (g+1)·Og] = w[g·Og : (g+1)·Og].reshape(Og, K) @ cols                 (im2col + GEMM)

Its transpose (the adjoint: conv_transpose2d, and conv2d's input gradient)
runs the same picture backwards: a product writes the columns, then ``col2im``
adds each column entry back to the pixel it was read from::

    cols = w[g·Cg : (g+1)·Cg].reshape(Cg, Og·kh·kw).T @ x[n, g·Cg : (g+1)·Cg]       (GEMM)
    out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw] += cols[(o, i, j), (y, x)]  (col2im)

At stride 1 the transpose is itself a convolution, with the kernel rotated by
180° and input/output channels swapped (:func:`_flipped`), padded by
``d·(k−1) − p``; conv_transpose2d takes that route whenever it writes fewer
columns (``Cin ≤ Cout``: e.g. the input gradient of a 3x3 conv that keeps its
channel count) or runs as Winograd (below).

Stride-1 3x3 convolutions (dilation 1, one group) with at least
:data:`WINOGRAD_MIN_CHANNELS` input and output channels (forward, the input
gradient as the rotated-kernel conv, and the weight gradient) run as Winograd
F(2x2, 3x3) instead of im2col: 16 GEMMs over 2x2 output tiles with 2.25x fewer
multiply-adds (:mod:`kernels.cpu.winograd`, :func:`_conv2d_winograd`,
:func:`_conv2d_winograd_weight`), in the same blocks.

So the six entries below are a few ways to call two routines (plus the bias gradient, a sum):

=====================================  ===================================================
entry                                  computed as
=====================================  ===================================================
conv2d_forward                         im2col(x) then ``w @ cols``
conv2d_backward_input                  conv_transpose2d_forward(grad_out, w, ...)
conv2d_backward_weight                 ``Σ_n grad_out @ im2col(x).T``
conv_transpose2d_forward               ``w.T @ x`` then col2im (or, at stride 1, a conv2d)
conv_transpose2d_backward_input        conv2d_forward(grad_out, w, ...)
conv_transpose2d_backward_weight       conv2d_backward_weight with x and grad_out swapped
conv2d_backward_bias                   ``Σ_{n,y,x} grad_out`` (both convs' bias)
=====================================  ===================================================

The forward entries take the bias too and add it to each block while it is in cache
(Winograd's output transform adds it in its first pass), not in a pass of its own.

Memory traffic: the column matrix of a whole batch is large (N8 C64 128x128 k3:
8 · 576 · 16384 floats = 300 MB), so it is never built at once. The job is cut
into blocks of about :data:`kernels.cpu._runtime.BLOCK_BYTES` of columns — whole images when they fit,
else bands of output rows (for col2im: of output channels) of one image. A
block's columns are written by Numba and consumed at once by one BLAS call while
they are still in cache, in a per-thread buffer that is reused. The images of a
block sit side by side in that buffer (:func:`_columns`), so several small images
make one wide GEMM; for a block of one image (or a band of one) the GEMM writes
straight into the output array (a strided view), so nothing is copied or
transposed afterwards, for several its result is copied into their planes. A 1x1
kernel with stride 1 and no padding needs no columns at all: the image itself is
the column matrix.

Parallelism (:mod:`kernels.cpu._runtime`): each of Numba's threads takes every T-th
block and runs it start to finish, im2col or col2im included, with BLAS limited
to one thread. Each block writes its own rows of the output (its own planes for
col2im), so no two threads ever add into the same element; weight gradients are
per-worker partial sums added in worker order. Every result is the same on
every run (deterministic).

Sizes are validated by the caller (``minitorchseg.functional.conv``); the
kernels additionally clip every read and write to the array bounds, so no
geometry can index out of range.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from ..geometry import conv2d_output_hw, conv_transpose2d_output_hw, input_grad_output_padding, is_pointwise
from . import _runtime, winograd

__all__ = [
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weight",
]

def _valid_range(out_len: int, size: int, offset: int, stride: int) -> tuple[int, int]:
    """The ``[lo, hi)`` of ``o`` in ``[0, out_len)`` with ``0 ≤ o·stride + offset < size``."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    last = size - 1 - offset  # o·stride ≤ last
    hi = 0 if last < 0 else min(out_len, last // stride + 1)
    if hi < lo:
        hi = lo
    return lo, hi


_valid_range_jit = njit(cache=True, nogil=True)(_valid_range)


def _im2col_kernel(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, out_w, y0):
    """Write the column matrices of a block of images, for output rows ``y0 .. y0+T−1``.

    x: (B, C, H, W); cols: (B, C·kh·kw, T·out_w). One row ``r = (c, i, j)`` of one
    image per iteration::

        for (b, r) in prange(B × C·kh·kw):
            for t in range(T):                               # output row y = y0 + t
                iy = y·sh + i·dh − ph
                for xo in range(out_w):
                    ix = xo·sw + j·dw − pw
                    cols[b, r, t·out_w + xo] = x[b, c, iy, ix] if 0 ≤ iy < H and 0 ≤ ix < W else 0

    The in-image range ``[xo_lo, xo_hi)`` of ``xo`` is computed once per ``j``, so
    the copy loop has no branch. Offsets inside it are unsigned (they are ≥ 0 by
    construction): Numba then emits no negative-index wraparound test and the
    stride-1 copy vectorises.
    """
    C = x.shape[1]
    H = x.shape[2]
    W = x.shape[3]
    khw = kh * kw
    rows = cols.shape[1]
    tiles = cols.shape[2] // out_w if out_w > 0 else 0
    width = uint64(out_w)
    step = uint64(sw)
    for task in prange(min(cols.shape[0], x.shape[0]) * rows):
        b = task // rows
        r = task % rows
        c = r // khw
        i = (r // kw) % kh
        j = r % kw
        xo_lo, xo_hi = _valid_range_jit(out_w, W, j * dw - pw, sw)
        lo = uint64(xo_lo)
        hi = uint64(xo_hi)
        ix0 = xo_lo * sw + j * dw - pw  # first in-image column read (when hi > lo)
        dst = cols[b, r]
        src = x[b, min(c, C - 1)].ravel()
        for t in range(tiles):
            iy = (y0 + t) * sh + i * dh - ph
            base = uint64(t * out_w)
            if iy < 0 or iy >= H or c >= C or hi == lo:
                for k in range(width):
                    dst[base + k] = 0.0
                continue
            for k in range(lo):
                dst[base + k] = 0.0
            for k in range(hi, width):
                dst[base + k] = 0.0
            start = uint64(iy * W + ix0)
            if sw == 1:
                for k in range(hi - lo):
                    dst[base + lo + k] = src[start + k]
            else:
                for k in range(hi - lo):
                    dst[base + lo + k] = src[start + k * step]


def _col2im_kernel(cols, out, kh, kw, sh, sw, ph, pw, dh, dw, in_w, o0):
    """Scatter-add the column matrices of a block of images into whole output planes (im2col's adjoint).

    cols: (B, P·kh·kw, h·in_w) for the ``P`` output channels ``o0 .. o0+P−1``;
    out: (B, O, Ho, Wo), whose planes ``o0 .. o0+P−1`` are overwritten::

        for (b, o) in prange(B × P):                    # one plane per iteration: no races
            out[b, o0 + o] = 0
            for i, j in kh × kw:
                for y in range(h):
                    oy = y·sh + i·dh − ph
                    for x in range(in_w):
                        ox = x·sw + j·dw − pw
                        if 0 ≤ oy < Ho and 0 ≤ ox < Wo:
                            out[b, o0 + o, oy, ox] += cols[b, (o, i, j), y·in_w + x]

    The in-range ``y`` and ``x`` are computed once per ``(i, j)`` and the adds use
    unsigned offsets (as in im2col). Each plane's sum runs in the fixed order
    (i, j, y, x): deterministic.
    """
    Ho = out.shape[2]
    Wo = out.shape[3]
    khw = kh * kw
    planes = cols.shape[1] // khw
    h = cols.shape[2] // in_w if in_w > 0 else 0
    step = uint64(sw)
    for task in prange(min(cols.shape[0], out.shape[0]) * planes):
        b = task // planes
        o = task % planes
        if o0 + o >= out.shape[1]:
            continue
        plane = out[b, o0 + o].ravel()
        for k in range(uint64(Ho * Wo)):
            plane[k] = 0.0
        for i in range(kh):
            y_lo, y_hi = _valid_range_jit(h, Ho, i * dh - ph, sh)
            for j in range(kw):
                src = cols[b, o * khw + i * kw + j]
                x_lo, x_hi = _valid_range_jit(in_w, Wo, j * dw - pw, sw)
                if x_hi == x_lo:
                    continue
                n = uint64(x_hi - x_lo)
                ox0 = x_lo * sw + j * dw - pw
                for y in range(y_lo, y_hi):
                    s0 = uint64(y * in_w + x_lo)
                    d0 = uint64((y * sh + i * dh - ph) * Wo + ox0)
                    if sw == 1:
                        for k in range(n):
                            plane[d0 + k] += src[s0 + k]
                    else:
                        for k in range(n):
                            plane[d0 + k * step] += src[s0 + k]


# Two bindings of each raw kernel. The serial one runs its prange as a plain loop
# on the calling thread: the workers (Numba's threads, each already running its own
# blocks) and small jobs on the caller use it; nogil lets the workers run at the
# same time. The parallel one spreads the prange over Numba's threads:
# used on the caller when BLAS cannot be limited to one thread (no threadpoolctl).
_im2col = njit(parallel=True, cache=True, nogil=True)(_im2col_kernel)
_col2im = njit(parallel=True, cache=True, nogil=True)(_col2im_kernel)
_im2col_serial = njit(cache=True, nogil=True)(_im2col_kernel)
_col2im_serial = njit(cache=True, nogil=True)(_col2im_kernel)


# Stride-1 3x3 convolutions with at least this many input and output channels run
# as Winograd F(2x2, 3x3) (_conv2d_winograd). Below it the 16 GEMMs are too thin to
# gain overall (at 3 or 4 input channels the weight gradient gains, the rest loses).
# Measured at batch 4, 2 threads, ms, im2col vs Winograd, forward / input gradient /
# weight gradient: on an AVX-512 Xeon (OpenBLAS SkylakeX kernels) C3->8 176x240
# 1.6 / 2.3 / 3.6 vs 1.9 / 2.5 / 3.1 and C4->8 2.1 / 2.4 / 3.5 vs 2.5 / 2.4 / 2.5;
# C8->8 3.6 / 4.0 / 3.9 vs 3.1 / 2.9 / 3.9, C8->11 4.9 / 4.8 / 5.2 vs 3.4 / 3.8 / 4.0,
# C16->16 8.8 / 8.4 / 9.4 vs 7.7 / 7.6 / 8.5. On a Zen 5 with OpenBLAS's Haswell
# kernels C3->16 took 1.3 ms forward by im2col and 2.8 by Winograd.
WINOGRAD_MIN_CHANNELS = 8

# Weight gradients of layers with at most this many output channels per group are
# computed transposed (see _conv2d_weight_gemm).
_NARROW = 64


def _columns(x, n0, n1, y0, y1, kernel_hw, stride, padding, dilation, out_w, pointwise, im2col):
    """The columns of images ``[n0, n1)`` at output rows ``[y0, y1)``, the images side by side.

    x: (N, C, H, W) contiguous. Returns ``(C·kh·kw, b, T·Wo)`` (``b = n1 − n0``,
    ``T = y1 − y0``): reshaped to ``(groups, K, b·T·Wo)`` it is one matrix per group
    over every pixel of the block, so a block of several small images is one GEMM
    rather than ``b`` thin ones (FCN-8s' fc6 sees 6x8 pixels per image: 48
    columns each). im2col writes the scratch through its ``(b, C·kh·kw, T·Wo)``
    view, which for one image (or a band of one) is the buffer itself. A 1x1
    kernel with stride 1 and no padding needs no columns: one image is returned
    as a view of x, several are copied side by side.
    """
    b = n1 - n0
    C = x.shape[1]
    kh, kw = kernel_hw
    width = (y1 - y0) * out_w
    if pointwise:
        pixels = x[n0:n1].reshape(b, C, -1)[:, :, y0 * out_w : y1 * out_w]
        if b == 1:
            return pixels.transpose(1, 0, 2)
        cols = _runtime.scratch(C * b * width, x.dtype).reshape(C, b, width)
        np.copyto(cols.transpose(1, 0, 2), pixels)
        return cols
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    cols = _runtime.scratch(C * kh * kw * b * width, x.dtype).reshape(C * kh * kw, b, width)
    im2col(x[n0:n1], cols.transpose(1, 0, 2), kh, kw, sh, sw, ph, pw, dh, dw, out_w, y0)
    return cols


def _conv2d_gemm(x, w, stride, padding, dilation, groups, out_hw, bias=None, relu=False):
    """conv2d of contiguous ``x`` (N, C, H, W) with ``w`` (O, C/groups, kh, kw) into ``out_hw`` → (N, O, Ho, Wo),
    plus ``bias`` (O,) when given, through ReLU when ``relu``.

    The output size is given rather than derived, so that the transposed
    convolution's input gradient (whose size is the transposed conv's input
    size, not always the conv2d formula's) reuses this routine::

        for each block (images [n0, n1), output rows [y0, y1)):      # blocks shared out to the workers
            cols = im2col(x[n0:n1])                                   # (groups, K, b·T·Wo): images side by side
            out[n0:n1, :, rows] = w.reshape(groups, Og, K) @ cols     # one GEMM per group; in place for one image
            out[n0:n1, :, rows] += bias                               # while the block is in cache
            out[n0:n1, :, rows] = max(out[n0:n1, :, rows], 0)         # relu=True
    """
    if _winograd_applies(x.shape[1], w.shape[0], w.shape[2:], stride, dilation, groups):
        return _conv2d_winograd(x, winograd.weight_transform(w), padding, out_hw, bias, relu)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho, Wo = out_hw
    out = _runtime.empty((N, groups, Og, Ho * Wo), x.dtype)
    wm = w.reshape(groups, Og, K)
    if out.size == 0:
        return out.reshape(N, O, Ho, Wo)
    pointwise = is_pointwise((kh, kw), stride, padding, dilation) and (Ho, Wo) == (H, W)
    bias = None if bias is None else bias.reshape(groups, Og, 1)

    def work(blocks, serial):
        im2col = _im2col_serial if serial else _im2col
        for n0, n1, y0, y1 in blocks:
            b, width = n1 - n0, (y1 - y0) * Wo
            cols = _columns(x, n0, n1, y0, y1, (kh, kw), stride, padding, dilation, Wo, pointwise, im2col)
            cols = cols.reshape(groups, K, b * width)
            if b == 1:
                np.matmul(wm, cols, out=out[n0, :, :, y0 * Wo : y1 * Wo])
            else:
                product = np.matmul(wm, cols).reshape(groups, Og, b, width)
                out[n0:n1, :, :, y0 * Wo : y1 * Wo] = product.transpose(2, 0, 1, 3)
            if bias is not None:
                out[n0:n1, :, :, y0 * Wo : y1 * Wo] += bias
            if relu:   # ReLU's max(v, 0); NumPy's maximum keeps v when v >= 0 (-0.0 and NaN included), as ReLU
                np.maximum(out[n0:n1, :, :, y0 * Wo : y1 * Wo], 0, out=out[n0:n1, :, :, y0 * Wo : y1 * Wo])

    row_bytes = C * kh * kw * Wo * x.itemsize
    _runtime.workers.map(work, _runtime.blocks(N, Ho, row_bytes), N * Ho * row_bytes)
    return out.reshape(N, O, Ho, Wo)


def _winograd_applies(in_channels, out_channels, kernel_hw, stride, dilation, groups) -> bool:
    """Whether a conv2d runs as Winograd F(2x2, 3x3): a 3x3 kernel, stride 1, dilation 1, one group, and at
    least :data:`WINOGRAD_MIN_CHANNELS` input and output channels. The 16 GEMMs are ``(O, C) @ (C, P)``: a layer
    with 3 output channels (the input gradient of an RGB first layer) would give 16 GEMMs of 3 rows each, which
    BLAS runs at a fraction of its rate."""
    return (tuple(kernel_hw) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1
            and min(in_channels, out_channels) >= WINOGRAD_MIN_CHANNELS)


def _winograd_scratch(nv, nm, dtype):
    """The flat planes of V and M (or Z) in the calling thread's scratch: C-contiguous (16, ≥ nv) and
    (16, ≥ nm), each of the 16 planes (one per tile position ``ξ``) starting an odd number of cache lines
    after the previous one.

    The GEMMs and the transforms read several planes side by side. Planes a power of two apart map
    those reads to the same cache sets, which hold only a few lines each: when the input transform
    still wrote a tile's 16 values to the 16 planes at once, with C = 64 channels and P = 512 tiles
    (a band of 8 tile rows of a 128x128 image, planes 128 KiB apart) it took 1.74 ms instead of 0.20
    (single thread, Xeon with AVX-512); with today's one-plane-at-a-time loops 15% longer, not 9x.
    Padding each plane to an odd number of lines spreads them over different sets.
    """
    pv, pm = winograd.plane_stride(nv, dtype), winograd.plane_stride(nm, dtype)
    buf = _runtime.scratch(16 * (pv + pm), dtype)
    return buf[: 16 * pv].reshape(16, pv), buf[16 * pv :].reshape(16, pm)


def _conv2d_winograd(x, u, padding, out_hw, bias=None, relu=False):
    """conv2d of contiguous ``x`` (N, C, H, W) with a 3x3 kernel, stride 1, into ``out_hw``, by Winograd.

    ``u`` (16, O, C): the kernel's transform ``U = G w Gᵀ`` (:func:`kernels.cpu.winograd.weight_transform`);
    ``bias`` (O,) or None, added by the output transform, which also applies ReLU when ``relu``.
    F(2x2, 3x3) (:mod:`kernels.cpu.winograd`), blocked like the GEMM route: a block
    is images ``[n0, n1)`` at tile rows ``[t0, t1)`` (output rows ``2·t0 .. 2·t1 − 1``)::

        for each block:                                             # shared out to the workers
            V = input_transform(x[n0:n1], tile rows [t0, t1))       # (16, C, P), P = b·T·(tw + 1)
            M = U @ V                                               # 16 GEMMs, (16, O, P)
            out[n0:n1, :, 2·t0 : 2·t1] = output_transform(M) + bias
    """
    N, C, H, W = x.shape
    O = u.shape[1]
    Ho, Wo = out_hw
    out = _runtime.empty((N, O, Ho, Wo), x.dtype)
    if out.size == 0:
        return out
    th, tw = -(-Ho // 2), -(-Wo // 2)
    ph, pw = padding

    def work(blocks, serial):
        for n0, n1, t0, t1 in blocks:
            b, T = n1 - n0, t1 - t0
            P = b * T * (tw + 1)                        # each tile row and its zero column
            v, m = _winograd_scratch(C * P, O * P, x.dtype)
            winograd.input_transform(x[n0:n1], v, ph, pw, t0, T, parallel=not serial)
            np.matmul(u, v[:, : C * P].reshape(16, C, P), out=m[:, : O * P].reshape(16, O, P))
            winograd.output_transform(m, out[n0:n1], t0, T, parallel=not serial, bias=bias, relu=relu)

    row_bytes = 16 * (C + O) * (tw + 1) * x.itemsize
    _runtime.workers.map(work, _runtime.blocks(N, th, row_bytes), N * th * row_bytes)
    return out


def _conv2d_winograd_weight(x, grad_out, padding):
    """conv2d's weight gradient for a 3x3 kernel at stride 1 by Winograd F(2x2, 3x3) → (O, C, 3, 3).

    The adjoint of :func:`_conv2d_winograd`: with ``out = Aᵀ [U ⊙ V] A`` per tile and
    ``U = G w Gᵀ``, the gradient reaches ``U`` as ``Σ_tiles (A dY Aᵀ) ⊙ V`` and ``w`` as
    ``Gᵀ ∂L/∂U G``::

        for each block (images [n0, n1), tile rows [t0, t1)):      # shared out to the workers
            V = input_transform(x[n0:n1])                          # (16, C, P)
            Z = output_gradient_transform(grad_out[n0:n1])         # (16, O, P): A dY Aᵀ per tile
            part += Z @ Vᵀ                                         # 16 GEMMs, (16, O, C)
        grad_w = weight_gradient_transform(part of worker 0 + part of worker 1 + ...)
    """
    N, C = x.shape[:2]
    O, Ho, Wo = grad_out.shape[1:]
    if N * Ho * Wo == 0:
        return np.zeros((O, C, 3, 3), dtype=x.dtype)
    th, tw = -(-Ho // 2), -(-Wo // 2)
    ph, pw = padding

    def work(blocks, serial):
        # the block's products and their sum from the output pool: at 256x256 channels each is 4 MiB, whose
        # fresh pages took as long as the GEMMs (8x256->256 at 16x16: 20.4 ms, or 8.8 ms after a forward
        # had run)
        part = product = None
        for n0, n1, t0, t1 in blocks:
            b, T = n1 - n0, t1 - t0
            P = b * T * (tw + 1)                        # each tile row and its zero column
            v, z = _winograd_scratch(C * P, O * P, x.dtype)
            winograd.input_transform(x[n0:n1], v, ph, pw, t0, T, parallel=not serial)
            winograd.output_gradient_transform(grad_out[n0:n1], z, t0, T, parallel=not serial)
            if product is None or product is part:
                product = _runtime.empty((16, O, C), x.dtype)
            np.matmul(z[:, : O * P].reshape(16, O, P), v[:, : C * P].reshape(16, C, P).transpose(0, 2, 1),
                      out=product)
            if part is None:
                part = product
            else:
                part += product
        return part

    row_bytes = 16 * (C + O) * (tw + 1) * x.itemsize
    parts = _runtime.workers.map(work, _runtime.blocks(N, th, row_bytes), N * th * row_bytes)
    du = parts[0]
    for part in parts[1:]:
        du += part
    return winograd.weight_gradient_transform(du)


def _conv2d_weight_gemm(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """``grad_w[o, c, i, j] = Σ_{n,y,x} grad_out[n, o, y, x] · cols[n][(c, i, j), (y, x)]`` → (O, C/groups, kh, kw).

    x: (N, C, H, W), grad_out: (N, O, Ho, Wo), both contiguous; the output size is
    read from grad_out::

        for each block (images [n0, n1), output rows [y0, y1)):            # blocks shared out to the workers
            cols = im2col(x[n0:n1])                                        # (groups, K, b·T·Wo): images side by side
            part += grad_out[n0:n1, :, rows] @ cols.T                      # (groups, Og, K)
        grad_w = part of worker 0 + part of worker 1 + ...                 # fixed order: deterministic

    With at most :data:`_NARROW` output channels per group the product is computed
    transposed, ``grad_wᵀ = cols @ grad_outᵀ`` (then transposed back once): with the
    long side ``K = Cg·kh·kw`` as the rows and the few output channels as the
    columns, OpenBLAS ran it 1.3-1.6x faster on an AVX-512 Xeon at U-Net's widths
    (Og = 16..64, single thread, same run); on an AVX2 EPYC the two orders were
    within 10% of each other (either way round). Wider layers take the direct
    order: the final transpose of a large gradient (FCN-8s' fc6 at width 0.125:
    512 x 3136) cost 3x its product.
    """
    if _winograd_applies(x.shape[1], grad_out.shape[1], kernel_hw, stride, dilation, groups):
        return _conv2d_winograd_weight(x, grad_out, padding)
    N, C, H, W = x.shape
    O, Ho, Wo = grad_out.shape[1:]
    kh, kw = kernel_hw
    Cg = C // groups
    Og = O // groups
    K = Cg * kh * kw
    go = grad_out.reshape(N, groups, Og, Ho * Wo)
    if N * Ho * Wo == 0:
        return np.zeros((O, Cg, kh, kw), dtype=x.dtype)
    pointwise = is_pointwise(kernel_hw, stride, padding, dilation) and (Ho, Wo) == (H, W)
    narrow = Og <= _NARROW

    def work(blocks, serial):
        im2col = _im2col_serial if serial else _im2col
        part = np.zeros((groups, K, Og) if narrow else (groups, Og, K), dtype=x.dtype)
        for n0, n1, y0, y1 in blocks:
            b, width = n1 - n0, (y1 - y0) * Wo
            cols = _columns(x, n0, n1, y0, y1, kernel_hw, stride, padding, dilation, Wo, pointwise, im2col)
            cols = cols.reshape(groups, K, b * width)
            # (groups, Og, b·T·Wo), the pixels in the columns' order: a view for one image, a copy for several
            go_blk = go[n0:n1, :, :, y0 * Wo : y1 * Wo].transpose(1, 2, 0, 3).reshape(groups, Og, b * width)
            if narrow:
                part += np.matmul(cols, go_blk.transpose(0, 2, 1))
            else:
                part += np.matmul(go_blk, cols.transpose(0, 2, 1))
        return part

    row_bytes = C * kh * kw * Wo * x.itemsize
    parts = _runtime.workers.map(work, _runtime.blocks(N, Ho, row_bytes), N * Ho * row_bytes)
    grad_w = parts[0]
    for part in parts[1:]:
        grad_w += part
    if narrow:
        grad_w = np.ascontiguousarray(grad_w.transpose(0, 2, 1))
    return grad_w.reshape(O, Cg, kh, kw)


def _conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, out_hw, bias=None):
    """conv_transpose2d of contiguous ``x`` (N, Cin, H, W), ``w`` (Cin, Og, kh, kw) into ``out_hw``, plus ``bias``.

    Returns (N, Og·groups, Ho, Wo)::

        for each block (images [n0, n1), output channels [o0, o1) of group g):    # shared out to the workers
            cols = w[group g][:, o0:o1].reshape(Cg, P·kh·kw).T @ x[n0:n1, group g]   # (P·kh·kw, b·H·W), side by side
            out[n0:n1, g·Og + o0 : g·Og + o1] = col2im(cols)                          # whole planes per block
            out[n0:n1, g·Og + o0 : g·Og + o1] += bias[g·Og + o0 : g·Og + o1]           # while they are in cache

    As in the forward, the images of a block sit side by side in one GEMM (their
    pixels copied next to each other when there are several).
    """
    N, Cin, H, W = x.shape
    _, Og, kh, kw = w.shape
    Cg = Cin // groups
    O = Og * groups
    Ho, Wo = out_hw
    khw = kh * kw
    out = _runtime.empty((N, O, Ho, Wo), x.dtype)
    if out.size == 0:
        return out
    wt = w.reshape(groups, Cg, Og * khw)
    xm = x.reshape(N, groups, Cg, H * W)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation

    def work(blocks, serial):
        col2im = _col2im_serial if serial else _col2im
        for g, n0, n1, o0, o1 in blocks:
            b, rows = n1 - n0, (o1 - o0) * khw
            pixels = xm[n0:n1, g].transpose(1, 0, 2).reshape(Cg, b * H * W)   # a view for one image
            cols = _runtime.scratch(rows * b * H * W, x.dtype).reshape(rows, b, H * W)
            np.matmul(wt[g, :, o0 * khw : o1 * khw].T, pixels, out=cols.reshape(rows, b * H * W))
            col2im(cols.transpose(1, 0, 2), out[n0:n1], kh, kw, sh, sw, ph, pw, dh, dw, W, g * Og + o0)
            if bias is not None:
                out[n0:n1, g * Og + o0 : g * Og + o1] += bias[g * Og + o0 : g * Og + o1, None, None]

    # a block's "rows" are output channels of one group, each kh·kw rows of H·W columns
    row_bytes = khw * H * W * x.itemsize
    per_group = _runtime.blocks(N, Og, row_bytes)
    _runtime.workers.map(work, [(g,) + block for g in range(groups) for block in per_group], N * O * row_bytes)
    return out


def _flipped(w, groups: int):
    """A transposed-conv weight (Cin, Og, kh, kw) as the conv2d weight of the same map at stride 1.

    ``w'[g·Og + o, c, i, j] = w[g·Cg + c, o, kh−1−i, kw−1−j]``: channels swapped within
    each group, kernel rotated by 180°. Returns (groups·Og, Cg, kh, kw), contiguous.
    """
    cin, og, kh, kw = w.shape
    cg = cin // groups
    rotated = w.reshape(groups, cg, og, kh, kw).transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1]
    return np.ascontiguousarray(rotated).reshape(groups * og, cg, kh, kw)


def _flipped_padding(w, padding, dilation) -> tuple[int, int]:
    """The conv2d padding of a stride-1 transposed conv: ``d·(k−1) − p`` (negative: a crop)."""
    return tuple(d * (k - 1) - p for k, p, d in zip(w.shape[2:], padding, dilation))


def _contiguous(*arrays):
    """Each array C-contiguous in the first array's dtype (views stay views when possible); None stays None."""
    dtype = arrays[0].dtype
    return tuple(None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def conv2d_forward(x, w, stride, padding, dilation, groups, bias=None, relu=False):
    """conv2d (cross-correlation): x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), bias (Cout,) or None.

    Returns (N, Cout, Ho, Wo), ``Ho = (H + 2ph − dh(kh−1) − 1) // sh + 1``::

        out[n, o, y, x] = bias[o]
                          + Σ_{c<Cg, i<kh, j<kw} w[o, c, i, j] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]

    with ``g = o // Og`` and zero outside the image. im2col + GEMM in blocks, or Winograd
    F(2x2, 3x3) where :func:`_winograd_applies`; the bias is added to each block while it is in
    cache (by Winograd's output transform), not in a pass of its own. ``relu``: the output is
    ``relu_forward``'s of the above (``0 if v < 0 else v``), applied the same way.
    """
    x, w, bias = _contiguous(x, w, bias)
    out_hw = conv2d_output_hw(x.shape, w.shape, stride, padding, dilation)
    return _conv2d_gemm(x, w, stride, padding, dilation, groups, out_hw, bias, relu)


def conv2d_backward_input(grad_out, w, input_hw, stride, padding, dilation, groups):
    """∂L/∂x of conv2d: grad_out (N, Cout, Ho, Wo), w (Cout, Cin/groups, kh, kw) → (N, Cin, H, W).

    The input gradient of a convolution is its transpose, so this *is*
    ``conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)``
    (the duals share code), with ``w`` read in the transposed layout
    (in = Cout, out/groups = Cin/groups) and the output_padding that restores
    the rows of x that no window reached::

        output_padding = H − ((Ho − 1)·sh − 2ph + dh(kh − 1) + 1)        ∈ [0, sh − 1]
    """
    output_padding = input_grad_output_padding(input_hw, grad_out.shape, w.shape, stride, padding, dilation)
    return conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)


def conv2d_backward_weight(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """∂L/∂w of conv2d: x (N, Cin, H, W), grad_out (N, Cout, Ho, Wo) → (Cout, Cin/groups, kh, kw).

    ``grad_w[o, c, i, j] = Σ_{n, y, x} grad_out[n, o, y, x] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]``:
    the same columns as the forward, multiplied by grad_out instead of by w.
    """
    x, grad_out = _contiguous(x, grad_out)
    return _conv2d_weight_gemm(x, grad_out, tuple(kernel_hw), stride, padding, dilation, groups)


def conv_transpose2d_forward(x, w, stride, padding, output_padding, groups, dilation, bias=None):
    """conv_transpose2d: x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw), bias (Cout,) or None → (N, Cout, Ho, Wo).

    ``Ho = (H − 1)·sh − 2ph + dh(kh − 1) + oph + 1``. Every input pixel scatters its
    kernel-weighted value onto ``out = bias[o]``::

        out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw] += x[n, g·Cg + c, y, x] · w[g·Cg + c, o, i, j]

    (positions outside the output dropped). GEMM then col2im; at stride 1, when that
    writes fewer columns or Winograd applies, the conv2d with the rotated kernel
    (:func:`_flipped`; for Winograd, the rotated kernel's transform computed from ``w`` directly).
    Also serves as conv2d's input gradient (:func:`conv2d_backward_input`).
    """
    x, w, bias = _contiguous(x, w, bias)
    out_hw = conv_transpose2d_output_hw(x.shape, w.shape, stride, padding, output_padding, dilation)
    in_c, out_c = x.shape[1], w.shape[1] * groups
    if tuple(stride) == (1, 1) and _winograd_applies(in_c, out_c, w.shape[2:], stride, dilation, groups):
        # the rotated kernel's transform, read straight from w (no rotated copy first)
        return _conv2d_winograd(x, winograd.weight_transform(w, rotated=True),
                                _flipped_padding(w, padding, dilation), out_hw, bias)
    if tuple(stride) == (1, 1) and in_c <= out_c:
        return _conv2d_gemm(x, _flipped(w, groups), (1, 1), _flipped_padding(w, padding, dilation), dilation,
                            groups, out_hw, bias)
    return _conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, out_hw, bias)


def _bias_sums_kernel(grad_out, sums):
    """``sums[n, o] = Σ_k grad_out[n, o, k]``: grad_out (N, O, L), sums (N, O) float64::

        for (n, o) in prange(N × O):              # one plane per iteration
            sums[n, o] = Σ_k grad_out[n, o, k]    # in float64; reassociated, so it vectorises
    """
    N, O, L = grad_out.shape
    for task in prange(N * O):
        plane = grad_out[task // O, task % O]
        total = 0.0
        for k in range(L):
            total += plane[k]
        sums[task // O, task % O] = total


# reassoc: the loop's sum may be split into vector lanes (the order is fixed at compile time, so the
# result is still the same from run to run)
_bias_sums = njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc"})(_bias_sums_kernel)


def conv2d_backward_bias(grad_out):
    """∂L/∂bias of conv2d and of conv_transpose2d: grad_out (N, Cout, Ho, Wo) → (Cout,), grad_out's dtype.

    ``grad_b[o] = Σ_{n, y, x} grad_out[n, o, y, x]``, each plane summed in float64 on its own thread,
    then the planes of each channel. NumPy's ``grad_out.sum(axis=(0, 2, 3))`` runs on one thread:
    for a 4x8x176x240 float32 gradient 0.26 ms against 0.08 here (AVX-512 Xeon, 2 threads).
    """
    (grad_out,) = _contiguous(grad_out)
    N, O = grad_out.shape[:2]
    sums = np.empty((N, O), dtype=np.float64)
    _bias_sums(grad_out.reshape(N, O, grad_out.shape[2] * grad_out.shape[3]), sums)
    return sums.sum(axis=0).astype(grad_out.dtype)


def conv_transpose2d_backward_input(grad_out, w, stride, padding, groups, dilation):
    """∂L/∂x of conv_transpose2d: grad_out (N, Cout, Ho, Wo), w (Cin, Cout/groups, kh, kw) → (N, Cin, H, W).

    The transpose of a transpose is the convolution itself: this is
    ``conv2d_forward(grad_out, w, stride, padding, dilation, groups)`` with ``w``
    read as a conv2d weight (out = Cin, in/groups = Cout/groups).

    Size: the conv2d formula gives ``H' = (Ho + 2ph − dh(kh−1) − 1) // sh + 1 = H + oph // sh``.
    That is ``H`` except when ``output_padding ≥ stride`` (allowed when it is
    below the dilation); then the rows beyond ``H`` belong to no input pixel and
    the caller keeps ``[..., :H, :W]`` (row ``y`` of a convolution depends on ``y`` only).
    """
    grad_out, w = _contiguous(grad_out, w)
    out_hw = conv2d_output_hw(grad_out.shape, w.shape, stride, padding, dilation)
    return _conv2d_gemm(grad_out, w, stride, padding, dilation, groups, out_hw)


def conv_transpose2d_backward_weight(x, grad_out, kernel_hw, stride, padding, groups, dilation):
    """∂L/∂w of conv_transpose2d: x (N, Cin, H, W), grad_out (N, Cout, Ho, Wo) → (Cin, Cout/groups, kh, kw).

    ::

        grad_w[g·Cg + c, o, i, j] = Σ_{n, y, x} x[n, g·Cg + c, y, x]
                                              · grad_out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw]

    is conv2d's weight gradient with the roles swapped (grad_out is the conv2d input,
    x its output gradient), as ``torch.nn.grad.conv2d_weight(grad_out, w.shape, x, ...)``.
    """
    x, grad_out = _contiguous(x, grad_out)
    return _conv2d_weight_gemm(grad_out, x, tuple(kernel_hw), stride, padding, dilation, groups)
