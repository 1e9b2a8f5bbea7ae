"""Max-pooling with indices and max-unpooling on the CPU (Numba).

Shapes: ``x: (N, C, H, W)``; pooled ``out, indices: (N, C, Ho, Wo)``. An index is
the flat offset ``ih·W + iw`` of the selected element inside its own ``H×W``
plane (int64, not offset by ``n`` or ``c``), exactly as torch 2.14.1 stores it.

The four entry points reduce to a handful of raw kernels, all parallel over
the ``P = N·C`` planes (one plane per thread at a time, so no two threads ever
write the same element and every result is deterministic):

* :func:`_max_pool2d_kernel`   the windowed argmax (forward of max-pooling) whose
  per-window rule is :func:`kernels.shared.pool.window_max` (torch's scan), computed a whole output
  row at a time; :func:`_max_pool2d_2x2_kernel` is the same for the ubiquitous
  2×2/stride-2 case with the four taps unrolled;
* :func:`_scatter_kernel`      ``out.plane.flat[idx] (+)= src`` — the *one* scatter
  shared by max-pool's backward (``accumulate=True``: overlapping windows add
  up) and max-unpool's forward (``accumulate=False``: assignment, the last
  write in C-order wins);
* :func:`_gather_kernel`       ``dst = src.plane.flat[idx]`` — max-unpool's
  backward, the adjoint of the scatter.

The kernels expect validated arguments (``minitorchseg.functional.pooling``
checks geometry and index ranges before anything runs); the scatter and the
gather still ignore an index outside its plane instead of touching memory
they do not own.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..geometry import pool_output_size
from ..shared.pool import invalid_unpool_index, window_max
from . import _runtime

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "max_unpool2d_forward",
    "max_unpool2d_backward",
]


def _row_update_kernel(best, tap, xrow, step, t):
    """Offer one tap to a run of outputs of one output row (the scan step, vectorised).

    best, tap: (n,) running max and winning tap number of ``n`` consecutive
    outputs; xrow: the input row starting at the first output's tap; ``step``
    the stride between consecutive outputs' taps::

        for j in range(n):
            v = xrow[j·step]
            if v > best[j] or v is NaN: best[j], tap[j] = v, t
    """
    for j in range(best.shape[0]):
        v = xrow[j * step]
        m = best[j]
        old = tap[j]
        c = v > m or v != v
        best[j] = v if c else m
        tap[j] = t if c else old


def _max_pool2d_kernel(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw, neg_inf):
    """Max-pooling with indices, any geometry: :func:`kernels.shared.pool.window_max` for every output, row by row.

    x: (P, H, W) contiguous; out, indices: (P, Ho, Wo), written in full.
    Instead of one window at a time, a whole output row advances through the
    window's taps ``t = a·kw + b`` in the same row-major order, so each output
    sees exactly :func:`kernels.shared.pool.window_max`'s sequence of comparisons (and the inner
    loop has no data-dependent branch)::

        for p in prange(P):                                     # one plane per thread
            for oh in range(Ho):
                best[:] = −inf;  tap[:] = −1
                for a in range(kh):
                    ih = oh·sh − ph + a·dh                      # skip rows outside [0, H)
                    for b in range(kw):
                        off = b·dw − pw                         # ow's tap column: ow·sw + off
                        for ow with 0 <= ow·sw + off < W:       # _row_update
                            v = x[p, ih, ow·sw + off]
                            if v > best[ow] or v is NaN: best[ow], tap[ow] = v, a·kw + b
                out[p, oh] = best
                indices[p, oh, ow] = (oh·sh − ph + a·dh)·W + ow·sw + off   for tap[ow] = a·kw + b,
                                     or the first in-bounds tap's offset when tap[ow] = −1

    Strides 1 and 2 read the input row in place (the compiler sees a constant
    step); other strides first copy the tap's column run into a contiguous buffer.
    """
    n_planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    first_w = np.empty(out_w, np.int64)  # first in-bounds column of each window
    for ow in range(out_w):
        iw0 = ow * sw - pw
        while iw0 < 0:
            iw0 += dw
        first_w[ow] = iw0
    for p in prange(n_planes):
        tap = np.empty(out_w, np.int32)
        column_run = np.empty(out_w, x.dtype)
        for oh in range(out_h):
            best = out[p, oh]
            for ow in range(out_w):
                best[ow] = neg_inf
                tap[ow] = -1
            top = oh * sh - ph
            for a in range(kh):
                ih = top + a * dh
                if ih < 0 or ih >= height:
                    continue
                xrow = x[p, ih]
                for b in range(kw):
                    off = b * dw - pw
                    lo = 0 if off >= 0 else (sw - 1 - off) // sw
                    hi = min(out_w, (width - 1 - off) // sw + 1)
                    if hi <= lo:
                        continue
                    t = a * kw + b
                    start = lo * sw + off
                    if sw == 1:
                        _row_update(best[lo:hi], tap[lo:hi], xrow[start:], 1, t)
                    elif sw == 2:
                        _row_update(best[lo:hi], tap[lo:hi], xrow[start:], 2, t)
                    else:
                        run = column_run[: hi - lo]
                        for j in range(hi - lo):
                            run[j] = xrow[start + j * sw]
                        _row_update(best[lo:hi], tap[lo:hi], run, 1, t)
            first_h = top
            while first_h < 0:
                first_h += dh
            for ow in range(out_w):
                t = tap[ow]
                a = t // kw
                b = t - a * kw
                if t >= 0:
                    indices[p, oh, ow] = (top + a * dh) * width + ow * sw - pw + b * dw
                else:
                    indices[p, oh, ow] = first_h * width + first_w[ow]


def _max_pool2d_2x2_kernel(x, out, indices, ph, pw, neg_inf):
    """Max-pooling with indices for kernel 2×2, stride 2, dilation 1 (U-Net's and SegNet's pooling).

    Same result as :func:`_max_pool2d_kernel` with those constants, bit for bit.
    Windows that lie entirely inside the plane (all but a border ring created by
    padding or ceil_mode) are scanned with the four taps written out::

        for each interior (oh, ow):   ih = 2·oh − ph,  iw = 2·ow − pw
            best, arg = −inf, ih·W + iw
            for (dy, dx) in (0, 0), (0, 1), (1, 0), (1, 1):      # row-major scan
                v = x[p, ih + dy, iw + dx]
                if v > best or v is NaN: best, arg = v, (ih + dy)·W + iw + dx

    With constant taps and stride the compiler vectorises the ``ow`` loop (the
    general kernel's data-dependent loops stay scalar); border windows go
    through :func:`kernels.shared.pool.window_max`. x: (P, H, W) contiguous; out, indices: (P, Ho, Wo).
    """
    n_planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    row_lo = (ph + 1) // 2
    row_hi = max(row_lo, min(out_h, (height - 2 + ph) // 2 + 1))
    col_lo = (pw + 1) // 2
    col_hi = max(col_lo, min(out_w, (width - 2 + pw) // 2 + 1))
    n_inner = col_hi - col_lo
    for p in prange(n_planes):
        plane = x[p]
        for oh in range(out_h):
            if oh < row_lo or oh >= row_hi:
                for ow in range(out_w):
                    best, arg = _window_max(plane, oh, ow, 2, 2, 2, 2, ph, pw, 1, 1, neg_inf)
                    out[p, oh, ow] = best
                    indices[p, oh, ow] = arg
                continue
            for ow in range(col_lo):
                best, arg = _window_max(plane, oh, ow, 2, 2, 2, 2, ph, pw, 1, 1, neg_inf)
                out[p, oh, ow] = best
                indices[p, oh, ow] = arg
            for ow in range(col_hi, out_w):
                best, arg = _window_max(plane, oh, ow, 2, 2, 2, 2, ph, pw, 1, 1, neg_inf)
                out[p, oh, ow] = best
                indices[p, oh, ow] = arg
            ih = 2 * oh - ph
            iw = 2 * col_lo - pw
            top = plane[ih, iw:]  # slices start at the first interior tap, so every index is >= 0
            bottom = plane[ih + 1, iw:]
            out_row = out[p, oh, col_lo:col_hi]
            index_row = indices[p, oh, col_lo:col_hi]
            top0 = ih * width + iw
            bottom0 = top0 + width
            for j in range(n_inner):
                best = neg_inf
                arg = top0 + 2 * j
                v = top[2 * j]
                c = v > best or v != v
                best = v if c else best
                arg = top0 + 2 * j if c else arg
                v = top[2 * j + 1]
                c = v > best or v != v
                best = v if c else best
                arg = top0 + 2 * j + 1 if c else arg
                v = bottom[2 * j]
                c = v > best or v != v
                best = v if c else best
                arg = bottom0 + 2 * j if c else arg
                v = bottom[2 * j + 1]
                c = v > best or v != v
                best = v if c else best
                arg = bottom0 + 2 * j + 1 if c else arg
                out_row[j] = best
                index_row[j] = arg


def _scatter_kernel(src, indices, out, accumulate, bad):
    """Scatter each plane of ``src`` into the same plane of ``out`` by ``indices``.

    src, indices: (P, M); out: (P, L), overwritten (zeroed here first); bad: (P,) bool,
    set where a plane holds an index outside ``[0, L)`` (max-unpool only; empty otherwise).
    Per plane ``p`` (parallel), in C-order over ``i``::

        out[p, :] = 0
        for i in range(M):
            j = indices[p, i]
            if 0 <= j < L:
                out[p, j] = out[p, j] + src[p, i]    if accumulate      (max-pool backward)
                out[p, j] = src[p, i]                otherwise          (max-unpool forward)
            elif not accumulate:
                bad[p] = True

    With ``accumulate=False`` duplicate indices keep the value written last in
    C-order. An index outside ``[0, L)`` is skipped: the only such index max-pool
    produces is that of a window with no in-bounds tap, whose output is the
    constant −inf and so receives no gradient; for max-unpool it is an error, which
    the caller raises.
    """
    n_planes, m = src.shape
    length = out.shape[1]
    for p in prange(n_planes):
        for j in range(length):
            out[p, j] = 0
        if accumulate:
            for i in range(m):
                j = indices[p, i]
                if j >= 0 and j < length:
                    out[p, j] += src[p, i]
        else:
            for i in range(m):
                j = indices[p, i]
                if j >= 0 and j < length:
                    out[p, j] = src[p, i]
                else:
                    bad[p] = True


def _gather_kernel(src, indices, out):
    """``out[p, i] = src[p, indices[p, i]]`` (0 where the index is outside ``[0, L)``).

    src: (P, L); indices, out: (P, M). Parallel over planes ``p``. Max-unpool's
    backward: every duplicate of an index receives the full upstream gradient.
    """
    n_planes, m = out.shape
    length = src.shape[1]
    for p in prange(n_planes):
        for i in range(m):
            j = indices[p, i]
            if j >= 0 and j < length:
                out[p, i] = src[p, j]
            else:
                out[p, i] = 0


_window_max = njit(cache=True)(window_max)
_row_update = njit(cache=True)(_row_update_kernel)
_max_pool2d = njit(parallel=True, cache=True)(_max_pool2d_kernel)
_max_pool2d_2x2 = njit(parallel=True, cache=True)(_max_pool2d_2x2_kernel)
_scatter = njit(parallel=True, cache=True)(_scatter_kernel)
_NO_FLAGS = np.zeros(0, dtype=np.bool_)       # max-pool's backward: out-of-range indices are not errors
_gather = njit(parallel=True, cache=True)(_gather_kernel)


def _planes(a: np.ndarray, dtype=None) -> np.ndarray:
    """``(N, C, *rest)`` → a C-contiguous ``(N·C, prod(rest))`` view (copying only if needed)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[0] * a.shape[1], -1)


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max-pool ``x: (N, C, H, W)`` → ``(out, indices)``, both ``(N, C, Ho, Wo)``.

    ``kernel_size``, ``stride``, ``padding``, ``dilation`` are ``(h, w)`` pairs;
    ``Ho, Wo`` follow :func:`kernels.geometry.pool_output_size` (with
    ``ceil_mode``). ``out`` has x's dtype, ``indices`` are int64 flat offsets
    into each ``H×W`` plane. Semantics: :func:`kernels.shared.pool.window_max`; kernel 2×2 with
    stride 2 and dilation 1 runs the unrolled :func:`_max_pool2d_2x2_kernel`,
    everything else :func:`_max_pool2d_kernel`.
    """
    n, c, height, width = x.shape
    out_h = pool_output_size(height, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    out_w = pool_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    xc = np.ascontiguousarray(x).reshape(n * c, height, width)
    out = _runtime.empty((n * c, out_h, out_w), x.dtype)
    indices = _runtime.empty((n * c, out_h, out_w), np.int64)
    neg_inf = x.dtype.type(-np.inf)
    if tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(dilation) == (1, 1):
        _max_pool2d_2x2(xc, out, indices, padding[0], padding[1], neg_inf)
    else:
        _max_pool2d(
            xc, out, indices, kernel_size[0], kernel_size[1], stride[0], stride[1],
            padding[0], padding[1], dilation[0], dilation[1], neg_inf,
        )
    return out.reshape(n, c, out_h, out_w), indices.reshape(n, c, out_h, out_w)


def max_pool2d_backward(grad_out, indices, input_hw):
    """Gradient of max-pooling: ``grad_x.plane.flat[indices] += grad_out`` (shared scatter).

    grad_out, indices: (N, C, Ho, Wo); returns grad_x: (N, C, H, W) with
    ``(H, W) = input_hw`` in grad_out's dtype. Overlapping windows that chose the
    same element add their gradients. This is max-unpool's scatter with
    accumulation (:func:`_scatter_kernel`).
    """
    n, c = grad_out.shape[:2]
    height, width = input_hw
    grad_x = _runtime.empty((n * c, height * width), grad_out.dtype)
    _scatter(_planes(grad_out), _planes(indices, np.int64), grad_x, True, _NO_FLAGS)
    return grad_x.reshape(n, c, height, width)


def max_unpool2d_forward(x, indices, output_hw):
    """Max-unpool: zeros of ``(N, C, Ho, Wo)`` with ``out.plane.flat[indices] = x``.

    x, indices: (N, C, H, W); ``(Ho, Wo) = output_hw``. Indices are decoded with the
    *output* width. Duplicate indices: the value last in C-order over x wins
    (deterministic; torch leaves this to thread timing). The same scatter as
    max-pool's backward, without accumulation (:func:`_scatter_kernel`).

    Raises ValueError (torch's message, :func:`kernels.shared.pool.invalid_unpool_index`) when an
    index lies outside ``[0, Ho·Wo)``. The scatter checks each index as it reads it and returns no
    output then: checked first, in a pass of its own (NumPy's max over the int64 indices), the check
    took twice as long as the scatter (8x64x64x64 into 128x128: 2.8 against 1.25 ms).
    """
    n, c = x.shape[:2]
    out_h, out_w = output_hw
    out = _runtime.empty((n * c, out_h * out_w), x.dtype)
    bad = np.zeros(n * c, dtype=np.bool_)
    _scatter(_planes(x), _planes(indices, np.int64), out, False, bad)
    if bad.any():
        raise invalid_unpool_index(indices, output_hw)
    return out.reshape(n, c, out_h, out_w)


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max-unpool: the gather ``grad_x = grad_out.plane.flat[indices]``.

    grad_out: (N, C, Ho, Wo); indices: (N, C, H, W); returns grad_x of indices'
    shape in grad_out's dtype. Every duplicate index receives the full gradient
    (torch's behaviour), see :func:`_gather_kernel`.
    """
    n, c, height, width = indices.shape
    grad_x = _runtime.empty((n * c, height * width), grad_out.dtype)
    _gather(_planes(grad_out), _planes(indices, np.int64), grad_x)
    return grad_x.reshape(n, c, height, width)
