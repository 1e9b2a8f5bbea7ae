"""conv2d and conv_transpose2d on the GPU: im2col / col2im in Numba-CUDA, the products in CuPy (cuBLAS).

Twin of :mod:`kernels.cpu.conv`, with the same notation (``s`` stride, ``p``
padding, ``d`` dilation, ``Cg = Cin/groups``, ``Og = Cout/groups``,
``K = Cg·kh·kw``) and the same two pictures::

    cols[b, (c, i, j), (y, x)] = x[b, c, y·sh + i·dh − ph, x·sw + j·dw − pw]   (0 outside)    im2col
    out[b, group g] = w[group g].reshape(Og, K) @ cols[b, group g]                              GEMM

    cols[b, group g] = w[group g].reshape(Cg, Og·kh·kw).T @ x[b, group g]                       GEMM
    out[b, o, Y, X] = Σ_{i, j} cols[b, (o, i, j), (y, x)]  over  Y = y·sh + i·dh − ph, X = ...  col2im

and the same table of six entries built from the two routines (conv2d's input
gradient *is* conv_transpose2d_forward; conv_transpose2d's input gradient *is*
conv2d_forward; the weight gradients are ``Σ_b grad_out @ cols.T``).

Thread mappings:

* im2col: one thread per element of the column matrix; it reads one input pixel
  (or writes 0). No two threads write the same element.
* col2im: one thread per *output pixel* ``(b, o, Y, X)`` **gathers** its
  ``kh·kw`` possible contributions: for tap ``(i, j)`` the source column is
  ``y = (Y + ph − i·dh) / sh`` when that division is exact and ``0 ≤ y < h``. The
  scatter of the CPU version (one plane per thread, adding every column entry to
  its pixel) would need atomics with one thread per column entry; the gather
  needs none, and each pixel adds its taps in the CPU's order (``i``, then ``j``),
  so the result is deterministic and matches the CPU's col2im bit for bit (given
  the same columns).

The GEMMs are batched ``xp.matmul`` calls over a block of images and the groups
(``(groups, Og, K) @ (b, groups, K, Ho·Wo)``). The column matrix of a block is
capped at ``_COLS_BYTES``; blocks of whole images are processed in turn with one
reused buffer. Launch configuration: :mod:`kernels.cuda._launch`.

Sizes are validated by the caller (``minitorchseg.functional.conv``); both kernels
also check every index against the array bounds.
"""

from __future__ import annotations

from numba import cuda

from ..geometry import conv2d_output_hw, conv_transpose2d_output_hw, input_grad_output_padding, is_pointwise
from ._index import unravel3, unravel4
from ._launch import array_module, launch

__all__ = [
    "conv2d_forward",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_backward_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward_input",
    "conv_transpose2d_backward_weight",
]

# Device memory for one block of column matrices: large enough for full-size
# GEMMs, small next to a GPU's memory.
_COLS_BYTES = 256 << 20


def _im2col_kernel(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, out_w):
    """Write the column matrices of a block of images; thread ``t`` writes ``cols`` element ``t``.

    x: (B, C, H, W); cols: (B, C·kh·kw, Ho·Wo) with ``Wo = out_w``. For
    ``t = (b, r, q)`` in C-order, ``r = (c, i, j)``, ``q = (y, xo)``::

        iy = y·sh + i·dh − ph;  ix = xo·sw + j·dw − pw
        cols[b, r, q] = x[b, c, iy, ix] if 0 ≤ iy < H and 0 ≤ ix < W else 0

    Each thread writes one element and reads one: no atomics.
    """
    n_images, channels, height, width = x.shape
    rows, length = cols.shape[1], cols.shape[2]
    n = n_images * rows * length
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        b, r, q = unravel3(t, rows, length)
        c, i, j = unravel3(r, kh, kw)
        iy = (q // out_w) * sh + i * dh - ph
        ix = (q % out_w) * sw + j * dw - pw
        if iy >= 0 and iy < height and ix >= 0 and ix < width and c < channels:
            cols[b, r, q] = x[b, c, iy, ix]
        else:
            cols[b, r, q] = 0


def _col2im_kernel(cols, out, kh, kw, sh, sw, ph, pw, dh, dw, in_w):
    """Sum column entries back into pixels (the adjoint of im2col); thread ``t`` writes ``out`` element ``t``.

    cols: (B, O·kh·kw, h·w) with ``w = in_w``; out: (B, O, Ho, Wo) written in full.
    For ``t = (b, o, Y, X)`` in C-order, a gather over the taps::

        acc = 0
        for i in range(kh):
            ty = Y + ph − i·dh;  if ty < 0 or ty % sh ≠ 0 or ty / sh ≥ h: skip;  y = ty / sh
            for j in range(kw):
                tx = X + pw − j·dw;  (likewise) x = tx / sw
                acc += cols[b, (o, i, j), (y, x)]
        out[b, o, Y, X] = acc

    Each output pixel is owned by one thread, which adds its contributions in the
    CPU col2im's order: no atomics, deterministic.
    """
    n_images, channels, out_h, out_w = out.shape
    rows, length = cols.shape[1], cols.shape[2]
    in_h = length // in_w if in_w > 0 else 0
    khw = kh * kw
    T = out.dtype.type
    n = n_images * channels * out_h * out_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        b, o, oy, ox = unravel4(t, channels, out_h, out_w)
        acc = T(0.0)
        for i in range(kh):
            ty = oy + ph - i * dh
            if ty < 0 or ty % sh != 0:
                continue
            y = ty // sh
            if y >= in_h:
                continue
            for j in range(kw):
                tx = ox + pw - j * dw
                if tx < 0 or tx % sw != 0:
                    continue
                xx = tx // sw
                r = o * khw + i * kw + j
                if xx < in_w and r < rows:
                    acc += cols[b, r, y * in_w + xx]
        out[b, o, oy, ox] = acc


_im2col = cuda.jit(cache=True)(_im2col_kernel)
_col2im = cuda.jit(cache=True)(_col2im_kernel)


def _images_per_block(n_images: int, per_image: int, itemsize: int) -> int:
    """Images per column block, so that ``block · per_image`` elements stay within ``_COLS_BYTES``."""
    return max(1, min(n_images, _COLS_BYTES // max(1, per_image * itemsize)))


def _columns(x, kernel_hw, stride, padding, dilation, out_hw, buffer):
    """im2col of the images ``x: (b, C, H, W)`` into ``buffer`` → ``(b, C·kh·kw, Ho·Wo)``."""
    b, c = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_hw, stride, padding, dilation
    cols = buffer[: b * c * kh * kw * out_hw[0] * out_hw[1]].reshape(b, c * kh * kw, out_hw[0] * out_hw[1])
    launch(_im2col, cols.size, x, cols, kh, kw, sh, sw, ph, pw, dh, dw, out_hw[1])
    return cols


def _conv2d_gemm(x, w, stride, padding, dilation, groups, out_hw):
    """conv2d of contiguous ``x`` (N, C, H, W) with ``w`` (O, C/groups, kh, kw) into ``out_hw`` → (N, O, Ho, Wo).

    The output size is given (not derived) so that conv_transpose2d's input
    gradient reuses this routine, as on the CPU::

        for each block of images [n0, n1):
            cols = im2col(x[n0:n1])                                    # (b, groups, K, Ho·Wo)
            out[n0:n1] = w.reshape(groups, Og, K) @ cols               # one batched GEMM
    """
    xp = array_module()
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    K = Cg * kh * kw
    Ho, Wo = out_hw
    out = xp.empty((N, groups, Og, Ho * Wo), dtype=x.dtype)
    wm = w.reshape(groups, Og, K)
    if out.size == 0:
        return out.reshape(N, O, Ho, Wo)
    if is_pointwise((kh, kw), stride, padding, dilation) and (Ho, Wo) == (H, W):
        xp.matmul(wm, x.reshape(N, groups, Cg, H * W), out=out)
        return out.reshape(N, O, Ho, Wo)
    block = _images_per_block(N, C * kh * kw * Ho * Wo, x.itemsize)
    buffer = xp.empty(block * C * kh * kw * Ho * Wo, dtype=x.dtype)
    for n0 in range(0, N, block):
        n1 = min(N, n0 + block)
        cols = _columns(x[n0:n1], (kh, kw), stride, padding, dilation, (Ho, Wo), buffer)
        xp.matmul(wm, cols.reshape(n1 - n0, groups, K, Ho * Wo), out=out[n0:n1])
    return out.reshape(N, O, Ho, Wo)


def _conv2d_weight_gemm(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """``grad_w[o, c, i, j] = Σ_{n,y,x} grad_out[n, o, y, x] · cols[n][(c, i, j), (y, x)]`` → (O, C/groups, kh, kw).

    x: (N, C, H, W), grad_out: (N, O, Ho, Wo), both contiguous::

        for each block of images [n0, n1):
            cols = im2col(x[n0:n1])                                          # (b, groups, K, Ho·Wo)
            grad_w += Σ_b grad_out[n0:n1] (b, groups, Og, Ho·Wo) @ cols.T    # batched GEMM, then a sum
    """
    xp = array_module()
    N, C, H, W = x.shape
    O, Ho, Wo = grad_out.shape[1:]
    kh, kw = kernel_hw
    Cg = C // groups
    Og = O // groups
    K = Cg * kh * kw
    grad_w = xp.zeros((groups, Og, K), dtype=x.dtype)
    go = grad_out.reshape(N, groups, Og, Ho * Wo)
    if grad_w.size == 0 or N * Ho * Wo == 0:
        return grad_w.reshape(O, Cg, kh, kw)
    if is_pointwise(kernel_hw, stride, padding, dilation) and (Ho, Wo) == (H, W):
        grad_w += xp.matmul(go, x.reshape(N, groups, Cg, H * W).transpose(0, 1, 3, 2)).sum(axis=0)
        return grad_w.reshape(O, Cg, kh, kw)
    block = _images_per_block(N, C * kh * kw * Ho * Wo, x.itemsize)
    buffer = xp.empty(block * C * kh * kw * Ho * Wo, dtype=x.dtype)
    for n0 in range(0, N, block):
        n1 = min(N, n0 + block)
        cols = _columns(x[n0:n1], (kh, kw), stride, padding, dilation, (Ho, Wo), buffer)
        cols = cols.reshape(n1 - n0, groups, K, Ho * Wo)
        grad_w += xp.matmul(go[n0:n1], cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return grad_w.reshape(O, Cg, kh, kw)


def _conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, out_hw):
    """conv_transpose2d of contiguous ``x`` (N, Cin, H, W), ``w`` (Cin, Og, kh, kw) into ``out_hw``.

    Returns (N, Og·groups, Ho, Wo)::

        for each block of images [n0, n1):
            cols = w.reshape(groups, Cg, Og·kh·kw).T @ x[n0:n1] (b, groups, Cg, H·W)   # batched GEMM
            out[n0:n1] = col2im(cols)                                                  # one thread per pixel
    """
    xp = array_module()
    N, Cin, H, W = x.shape
    _, Og, kh, kw = w.shape
    Cg = Cin // groups
    O = Og * groups
    Ho, Wo = out_hw
    khw = kh * kw
    out = xp.empty((N, O, Ho, Wo), dtype=x.dtype)
    if out.size == 0:
        return out
    wt = w.reshape(groups, Cg, Og * khw).transpose(0, 2, 1)
    xm = x.reshape(N, groups, Cg, H * W)
    block = _images_per_block(N, O * khw * H * W, x.itemsize)
    buffer = xp.empty(block * O * khw * H * W, dtype=x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    for n0 in range(0, N, block):
        n1 = min(N, n0 + block)
        cols = buffer[: (n1 - n0) * O * khw * H * W].reshape(n1 - n0, groups, Og * khw, H * W)
        xp.matmul(wt, xm[n0:n1], out=cols)
        launch(
            _col2im, (n1 - n0) * O * Ho * Wo, cols.reshape(n1 - n0, O * khw, H * W), out[n0:n1],
            kh, kw, sh, sw, ph, pw, dh, dw, W,
        )
    return out


def _contiguous(*arrays):
    """Each array C-contiguous in the first array's dtype (views stay views when possible)."""
    xp = array_module()
    dtype = arrays[0].dtype
    return tuple(xp.ascontiguousarray(a, dtype=dtype) for a in arrays)


def conv2d_forward(x, w, stride, padding, dilation, groups, bias=None, relu=False):
    """conv2d (cross-correlation): x (N, Cin, H, W), w (Cout, Cin/groups, kh, kw), bias (Cout,) or None
    → (N, Cout, Ho, Wo).

    ``out[n, o, y, x] = bias[o] + Σ_{c<Cg, i<kh, j<kw} w[o, c, i, j] · x[n, g·Cg + c, y·sh + i·dh − ph,
    x·sw + j·dw − pw]`` with ``g = o // Og``, zero outside the image; im2col kernel + batched GEMM, then the bias,
    then ReLU when ``relu`` (``max(v, 0)`` in place).
    """
    x, w = _contiguous(x, w)
    out_hw = conv2d_output_hw(x.shape, w.shape, stride, padding, dilation)
    out = _add_bias(_conv2d_gemm(x, w, stride, padding, dilation, groups, out_hw), bias)
    if relu:
        array_module().maximum(out, 0, out=out)
    return out


def conv2d_backward_input(grad_out, w, input_hw, stride, padding, dilation, groups):
    """∂L/∂x of conv2d: grad_out (N, Cout, Ho, Wo), w (Cout, Cin/groups, kh, kw) → (N, Cin, H, W).

    ``conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)``
    with ``output_padding = H − ((Ho − 1)·sh − 2ph + dh(kh − 1) + 1)``, as on the CPU.
    """
    output_padding = input_grad_output_padding(input_hw, grad_out.shape, w.shape, stride, padding, dilation)
    return conv_transpose2d_forward(grad_out, w, stride, padding, output_padding, groups, dilation)


def conv2d_backward_weight(x, grad_out, kernel_hw, stride, padding, dilation, groups):
    """∂L/∂w of conv2d: x (N, Cin, H, W), grad_out (N, Cout, Ho, Wo) → (Cout, Cin/groups, kh, kw).

    ``grad_w[o, c, i, j] = Σ_{n, y, x} grad_out[n, o, y, x] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]``.
    """
    x, grad_out = _contiguous(x, grad_out)
    return _conv2d_weight_gemm(x, grad_out, tuple(kernel_hw), stride, padding, dilation, groups)


def conv_transpose2d_forward(x, w, stride, padding, output_padding, groups, dilation, bias=None):
    """conv_transpose2d: x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw), bias (Cout,) or None → (N, Cout, Ho, Wo).

    ``Ho = (H − 1)·sh − 2ph + dh(kh − 1) + oph + 1``;
    ``out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw] += x[n, g·Cg + c, y, x] · w[g·Cg + c, o, i, j]``
    onto ``bias[g·Og + o]``. Batched GEMM then the col2im gather kernel, then the bias.
    """
    x, w = _contiguous(x, w)
    out_hw = conv_transpose2d_output_hw(x.shape, w.shape, stride, padding, output_padding, dilation)
    return _add_bias(_conv_transpose2d_gemm(x, w, stride, padding, dilation, groups, out_hw), bias)


def _add_bias(out, bias):
    """``out[:, o] += bias[o]`` in place (bias None: out unchanged); returns out."""
    if bias is not None:
        out += bias.astype(out.dtype, copy=False).reshape(1, -1, 1, 1)
    return out


def conv2d_backward_bias(grad_out):
    """∂L/∂bias of conv2d and of conv_transpose2d: grad_out (N, Cout, Ho, Wo) → (Cout,), grad_out's dtype.

    ``grad_b[o] = Σ_{n, y, x} grad_out[n, o, y, x]`` (the array module's sum).
    """
    return grad_out.sum(axis=(0, 2, 3))


def conv_transpose2d_backward_input(grad_out, w, stride, padding, groups, dilation):
    """∂L/∂x of conv_transpose2d: grad_out (N, Cout, Ho, Wo), w (Cin, Cout/groups, kh, kw) → (N, Cin, H', W').

    ``conv2d_forward(grad_out, w, stride, padding, dilation, groups)``; as on the CPU,
    ``H' = H + oph // sh`` and the caller keeps ``[..., :H, :W]``.
    """
    grad_out, w = _contiguous(grad_out, w)
    out_hw = conv2d_output_hw(grad_out.shape, w.shape, stride, padding, dilation)
    return _conv2d_gemm(grad_out, w, stride, padding, dilation, groups, out_hw)


def conv_transpose2d_backward_weight(x, grad_out, kernel_hw, stride, padding, groups, dilation):
    """∂L/∂w of conv_transpose2d: x (N, Cin, H, W), grad_out (N, Cout, Ho, Wo) → (Cin, Cout/groups, kh, kw).

    conv2d's weight gradient with the roles swapped (grad_out is the conv2d input).
    """
    x, grad_out = _contiguous(x, grad_out)
    return _conv2d_weight_gemm(grad_out, x, tuple(kernel_hw), stride, padding, dilation, groups)
