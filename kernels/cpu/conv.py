"""conv2d and conv_transpose2d on the CPU: im2col / col2im in Numba, the products in BLAS.

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

So the six entries below are four ways to call two routines:

=====================================  ===========================================
entry                                  computed as
=====================================  ===========================================
conv2d_forward                         im2col(x) then ``w @ cols``
conv2d_backward_input                  conv_transpose2d_forward(grad_out, w, ...)
conv2d_backward_weight                 ``Σ_n grad_out @ im2col(x).T``
conv_transpose2d_forward               ``w.T @ x`` then col2im
conv_transpose2d_backward_input        conv2d_forward(grad_out, w, ...)
conv_transpose2d_backward_weight       conv2d_backward_weight with x and grad_out swapped
=====================================  ===========================================

Memory traffic: the column matrix of a whole batch is large (N8 C64 128x128 k3:
8 · 576 · 16384 floats = 300 MB), so it is never built at once. Each image is
cut into tiles of output rows (or, for col2im, of output channels) whose column
block fits in ``_TILE_BYTES``; a tile is written by Numba, consumed at once by
one BLAS call while it is still in cache, and the buffer is reused. The GEMM
writes straight into the output array (a strided view), so nothing is copied
or transposed afterwards. A 1x1 kernel with stride 1 and no padding needs no
columns at all: the image itself is the column matrix.

Parallelism: im2col runs ``prange`` over the rows ``(c, i, j)`` of the column
matrix (each writes its own row); col2im runs ``prange`` over output channel
planes, each plane owned by one thread, so the scatter-adds never race and every
sum is taken in the same order on every run (deterministic). The GEMMs use
BLAS's own threads.

Sizes are validated by the caller (``minitorchseg.functional.conv``); the
kernels additionally clip every read and write to the array bounds, so no
geometry can index out of range.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kernels.geometry import conv_output_size, conv_transpose_output_size

__all__ = [
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weight",
]

# Bytes of one column tile: a few MB stays in this machine's cache (1 MB L2 per
# core, 32 MB shared L3) while keeping each GEMM large enough for full speed.
_TILE_BYTES = 4 << 20


def _valid_range(out_len: int, size: int, offset: int, stride: int) -> tuple[int, int]:
    """The ``[lo, hi)`` of ``o`` in ``[0, out_len)`` with ``0 ≤ o·stride + offset < size``."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = out_len
    last = size - 1 - offset  # o·stride ≤ last
    if last < 0:
        hi = 0
    else:
        hi = min(out_len, last // stride + 1)
    if hi < lo:
        hi = lo
    return lo, hi


_valid_range_jit = njit(cache=True)(_valid_range)


def _im2col_kernel(x, c0, kh, kw, sh, sw, ph, pw, dh, dw, y0, wo, cols):
    """Write one tile of the column matrix of one image.

    x: (C, H, W) one image; cols: (Cg·kh·kw, T·wo), where ``Cg = cols.shape[0] // (kh·kw)``
    and the tile covers output rows ``y0 .. y0+T−1``::

        for r = (c, i, j) in prange(Cg·kh·kw):       # one row of cols per iteration
            for t in range(T):                        # output row y = y0 + t
                iy = y·sh + i·dh − ph
                for xo in range(wo):
                    ix = xo·sw + j·dw − pw
                    cols[r, t·wo + xo] = x[c0 + c, iy, ix] if 0 ≤ iy < H and 0 ≤ ix < W else 0

    The valid ``xo`` range of each ``(j)`` is computed once, so the copy loop has no branch.
    """
    H = x.shape[1]
    W = x.shape[2]
    khw = kh * kw
    rows = cols.shape[0]
    tiles = cols.shape[1] // wo if wo > 0 else 0
    for r in prange(rows):
        c = c0 + r // khw
        i = (r // kw) % kh
        j = r % kw
        xo_lo, xo_hi = _valid_range_jit(wo, W, j * dw - pw, sw)
        for t in range(tiles):
            iy = (y0 + t) * sh + i * dh - ph
            base = t * wo
            if iy < 0 or iy >= H:
                for xo in range(wo):
                    cols[r, base + xo] = 0.0
                continue
            for xo in range(xo_lo):
                cols[r, base + xo] = 0.0
            ix0 = xo_lo * sw + j * dw - pw
            if sw == 1:
                for xo in range(xo_lo, xo_hi):
                    cols[r, base + xo] = x[c, iy, ix0 + xo - xo_lo]
            else:
                for xo in range(xo_lo, xo_hi):
                    cols[r, base + xo] = x[c, iy, ix0 + (xo - xo_lo) * sw]
            for xo in range(xo_hi, wo):
                cols[r, base + xo] = 0.0


def _col2im_kernel(cols, out, o0, kh, kw, sh, sw, ph, pw, dh, dw, h, w):
    """Scatter-add a column matrix into whole output planes (the adjoint of im2col).

    cols: (P·kh·kw, h·w) for the ``P = cols.shape[0] // (kh·kw)`` output channels
    ``o0 .. o0+P−1``; out: (Cout, Ho, Wo) one image, whose planes ``o0 ..`` are
    overwritten::

        for o in prange(P):                            # one plane per thread: no races
            out[o0 + o] = 0
            for i, j in kh × kw:
                for y in range(h):
                    oy = y·sh + i·dh − ph
                    for x in range(w):
                        ox = x·sw + j·dw − pw
                        if 0 ≤ oy < Ho and 0 ≤ ox < Wo:
                            out[o0 + o, oy, ox] += cols[(o, i, j), y·w + x]

    Each plane's sum runs in the fixed order (i, j, y, x): deterministic.
    """
    Ho = out.shape[1]
    Wo = out.shape[2]
    khw = kh * kw
    planes = cols.shape[0] // khw
    for o in prange(planes):
        plane = out[o0 + o]
        for oy in range(Ho):
            for ox in range(Wo):
                plane[oy, ox] = 0.0
        for i in range(kh):
            y_lo, y_hi = _valid_range_jit(h, Ho, i * dh - ph, sh)
            for j in range(kw):
                r = o * khw + i * kw + j
                x_lo, x_hi = _valid_range_jit(w, Wo, j * dw - pw, sw)
                for y in range(y_lo, y_hi):
                    oy = y * sh + i * dh - ph
                    src = y * w
                    ox0 = x_lo * sw + j * dw - pw
                    if sw == 1:
                        for x in range(x_lo, x_hi):
                            plane[oy, ox0 + x - x_lo] += cols[r, src + x]
                    else:
                        for x in range(x_lo, x_hi):
                            plane[oy, ox0 + (x - x_lo) * sw] += cols[r, src + x]


_im2col = njit(parallel=True, cache=True)(_im2col_kernel)
_col2im = njit(parallel=True, cache=True)(_col2im_kernel)


def _is_pointwise(kernel_hw, stride, padding, dilation) -> bool:
    """A 1x1 kernel, stride 1, no padding: the image is its own column matrix."""
    return kernel_hw == (1, 1) and stride == (1, 1) and padding == (0, 0)


def _rows_per_tile(k: int, wo: int, ho: int, itemsize: int) -> int:
    """Output rows per im2col tile so that a ``(k, rows·wo)`` block is about ``_TILE_BYTES``."""
    return max(1, min(ho, _TILE_BYTES // max(1, k * wo * itemsize)))


def _conv2d_gemm(x, w, stride, padding, dilation, groups, out_hw):
    """conv2d of contiguous ``x`` (N, C, H, W) with ``w`` (O, C/groups, kh, kw) into ``out_hw``.

    The output size is given rather than derived, so that the transposed
    convolution's input gradient (whose size is the transposed conv's input
    size, not always the conv2d formula's) reuses this routine. Returns
    (N, O, Ho, Wo)::

        for n, tile of output rows, g:
            cols = im2col(x[n], channels of group g, tile)        # (K, T·Wo)
            out[n, group g, tile] = w_g (Og, K) @ cols            # BLAS, written in place
    """
    N, _, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho, Wo = out_hw
    out = np.empty((N, O, Ho * Wo), dtype=x.dtype)
    wm = w.reshape(groups, Og, K)
    if _is_pointwise((kh, kw), stride, padding, dilation) and (Ho, Wo) == (H, W):
        xm = x.reshape(N, groups, Cg, H * W)
        for n in range(N):
            for g in range(groups):
                np.matmul(wm[g], xm[n, g], out=out[n, g * Og : (g + 1) * Og])
        return out.reshape(N, O, Ho, Wo)
    rows = _rows_per_tile(K, Wo, Ho, x.itemsize)
    buffer = np.empty(K * rows * Wo, dtype=x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    for n in range(N):
        for y0 in range(0, Ho, rows):
            y1 = min(Ho, y0 + rows)
            cols = buffer[: K * (y1 - y0) * Wo].reshape(K, (y1 - y0) * Wo)
            for g in range(groups):
                _im2col(x[n], g * Cg, kh, kw, sh, sw, ph, pw, dh, dw, y0, Wo, cols)
                np.matmul(wm[g], cols, out=out[n, g * Og : (g + 1) * Og, y0 * Wo : y1 * Wo])
    return out.reshape(N, O, Ho, Wo)


def _conv2d_weight_gemm(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """``grad_w[o, c, i, j] = Σ_{n,y,x} grad_out[n, o, y, x] · cols[n][(c, i, j), (y, x)]``.

    x: (N, C, H, W), grad_out: (N, O, Ho, Wo), both contiguous; the output size is
    read from grad_out. Returns (O, C/groups, kh, kw)::

        for n, tile of output rows, g:
            cols = im2col(x[n], channels of group g, tile)                # (K, T·Wo)
            grad_w[group g] += grad_out[n, group g, tile] (Og, T·Wo) @ cols.T
    """
    N, C, H, W = x.shape
    O, Ho, Wo = grad_out.shape[1:]
    kh, kw = kernel_hw
    Cg = C // groups
    Og = O // groups
    K = Cg * kh * kw
    grad_w = np.zeros((groups, Og, K), dtype=x.dtype)
    part = np.empty((Og, K), dtype=x.dtype)
    go = grad_out.reshape(N, O, Ho * Wo)
    if _is_pointwise(kernel_hw, stride, padding, dilation) and (Ho, Wo) == (H, W):
        xm = x.reshape(N, groups, Cg, H * W)
        for n in range(N):
            for g in range(groups):
                np.matmul(go[n, g * Og : (g + 1) * Og], xm[n, g].T, out=part)
                grad_w[g] += part
        return grad_w.reshape(O, Cg, kh, kw)
    rows = _rows_per_tile(K, Wo, Ho, x.itemsize)
    buffer = np.empty(K * rows * Wo, dtype=x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    for n in range(N):
        for y0 in range(0, Ho, rows):
            y1 = min(Ho, y0 + rows)
            cols = buffer[: K * (y1 - y0) * Wo].reshape(K, (y1 - y0) * Wo)
            for g in range(groups):
                _im2col(x[n], g * Cg, kh, kw, sh, sw, ph, pw, dh, dw, y0, Wo, cols)
                np.matmul(go[n, g * Og : (g + 1) * Og, y0 * Wo : y1 * Wo], cols.T, out=part)
                grad_w[g] += part
    return grad_w.reshape(O, Cg, kh, kw)


def _conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, out_hw):
    """conv_transpose2d of contiguous ``x`` (N, Cin, H, W), ``w`` (Cin, Og, kh, kw) into ``out_hw``.

    Returns (N, Og·groups, Ho, Wo)::

        for n, g, block of output channels [o0, o1) of group g:
            cols = w[group g][:, o0:o1].reshape(Cg, P·kh·kw).T @ x[n, group g]   # (P·kh·kw, H·W)
            out[n, g·Og + o0 : g·Og + o1] = col2im(cols)                           # planes owned by threads
    """
    N, Cin, H, W = x.shape
    _, Og, kh, kw = w.shape
    Cg = Cin // groups
    O = Og * groups
    Ho, Wo = out_hw
    khw = kh * kw
    out = np.empty((N, O, Ho, Wo), dtype=x.dtype)
    wt = w.reshape(groups, Cg, Og * khw)
    xm = x.reshape(N, groups, Cg, H * W)
    block = max(1, min(Og, _TILE_BYTES // max(1, khw * H * W * x.itemsize)))
    buffer = np.empty(block * khw * H * W, dtype=x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    for n in range(N):
        for g in range(groups):
            for o0 in range(0, Og, block):
                o1 = min(Og, o0 + block)
                cols = buffer[: (o1 - o0) * khw * H * W].reshape((o1 - o0) * khw, H * W)
                np.matmul(wt[g, :, o0 * khw : o1 * khw].T, xm[n, g], out=cols)
                _col2im(cols, out[n], g * Og + o0, kh, kw, sh, sw, ph, pw, dh, dw, H, W)
    return out


def _contiguous(*arrays):
    """Each array C-contiguous in the first array's dtype (views stay views when possible)."""
    dtype = arrays[0].dtype
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in arrays)


def conv2d_forward(x, w, stride, padding, dilation, groups):
    """conv2d (cross-correlation, no bias): x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw).

    Returns (N, Cout, Ho, Wo), ``Ho = (H + 2ph − dh(kh−1) − 1) // sh + 1``::

        out[n, o, y, x] = Σ_{c<Cg, i<kh, j<kw} w[o, c, i, j] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]

    with ``g = o // Og`` and zero outside the image. im2col + GEMM, tiled per image.
    """
    x, w = _contiguous(x, w)
    kh, kw = w.shape[2:]
    Ho = conv_output_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    Wo = conv_output_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    return _conv2d_gemm(x, w, stride, padding, dilation, groups, (Ho, Wo))


def conv2d_backward_input(grad_out, w, input_hw, stride, padding, dilation, groups):
    """∂L/∂x of conv2d: grad_out (N, Cout, Ho, Wo), w (Cout, Cin/groups, kh, kw) → (N, Cin, H, W).

    The input gradient of a convolution is its transpose, so this *is*
    ``conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)``
    (the duals share code), with ``w`` read in the transposed layout
    (in = Cout, out/groups = Cin/groups) and the output_padding that restores
    the rows of x that no window reached::

        output_padding = H − ((Ho − 1)·sh − 2ph + dh(kh − 1) + 1)        ∈ [0, sh − 1]
    """
    H, W = input_hw
    kh, kw = w.shape[2:]
    Ho, Wo = grad_out.shape[2:]
    output_padding = (
        H - conv_transpose_output_size(Ho, kh, stride[0], padding[0], 0, dilation[0]),
        W - conv_transpose_output_size(Wo, kw, stride[1], padding[1], 0, dilation[1]),
    )
    return conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)


def conv2d_backward_weight(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """∂L/∂w of conv2d: x (N, Cin, H, W), grad_out (N, Cout, Ho, Wo) → (Cout, Cin/groups, kh, kw).

    ``grad_w[o, c, i, j] = Σ_{n, y, x} grad_out[n, o, y, x] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]``:
    the same columns as the forward, multiplied by grad_out instead of by w.
    """
    x, grad_out = _contiguous(x, grad_out)
    return _conv2d_weight_gemm(x, grad_out, tuple(kernel_hw), stride, padding, dilation, groups)


def conv_transpose2d_forward(x, w, stride, padding, output_padding, groups, dilation):
    """conv_transpose2d (no bias): x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw) → (N, Cout, Ho, Wo).

    ``Ho = (H − 1)·sh − 2ph + dh(kh − 1) + oph + 1``. Every input pixel scatters its
    kernel-weighted value::

        out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw] += x[n, g·Cg + c, y, x] · w[g·Cg + c, o, i, j]

    (positions outside the output dropped). GEMM then col2im. Also serves as
    conv2d's input gradient (:func:`conv2d_backward_input`).
    """
    x, w = _contiguous(x, w)
    kh, kw = w.shape[2:]
    Ho = conv_transpose_output_size(x.shape[2], kh, stride[0], padding[0], output_padding[0], dilation[0])
    Wo = conv_transpose_output_size(x.shape[3], kw, stride[1], padding[1], output_padding[1], dilation[1])
    return _conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, (Ho, Wo))


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
    kh, kw = w.shape[2:]
    H = conv_output_size(grad_out.shape[2], kh, stride[0], padding[0], dilation[0])
    W = conv_output_size(grad_out.shape[3], kw, stride[1], padding[1], dilation[1])
    return _conv2d_gemm(grad_out, w, stride, padding, dilation, groups, (H, W))


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
