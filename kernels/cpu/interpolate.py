"""Bilinear and nearest-neighbour resizing on the CPU (Numba), forward and backward.

Shapes: ``x: (N, C, H, W)`` → ``out: (N, C, Ho, Wo)``. Both modes are separable:
each output row ``oh`` reads input rows chosen by ``oh`` alone, each output
column ``ow`` input columns chosen by ``ow`` alone. So the source taps and the
weights are computed once per call, per output row and per output column
(:func:`kernels.shared.interpolate.bilinear_taps`, :func:`kernels.shared.interpolate.nearest_taps`,
plain NumPy on 1-D arrays, shared
by every plane and usable by any device), and the kernels only apply them,
parallel over the ``P = N·C`` planes (one plane per thread at a time: backward
scatter-adds never race and results are deterministic).

``scales = (scale_h, scale_w)``: each is the user's ``scale_factor`` for that
dimension, or None when the output size was given (or recomputed), exactly what
torch passes to its kernels. It matters: with ``scale_factor`` torch maps
coordinates with ``1/scale_factor``, with a size with ``in/out``
(docs/semantics.md#interpolate).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shared.interpolate import bilinear_taps_hw, nearest_taps_hw
from . import _runtime

__all__ = [
    "upsample_bilinear2d_forward",
    "upsample_bilinear2d_backward",
    "upsample_nearest2d_forward",
    "upsample_nearest2d_backward",
]


def _bilinear_forward_kernel(x, out, y0, y1, wy0, wy1, x0, x1, wx0, wx1, row_used):
    """Bilinear resize of every plane with precomputed taps.

    x: (P, H, W) contiguous; out: (P, Ho, Wo). Row taps ``y0, y1, wy0, wy1: (Ho,)``,
    column taps ``x0, x1, wx0, wx1: (Wo,)`` (:func:`kernels.shared.interpolate.bilinear_taps`); ``row_used: (H,)``
    marks the input rows some output row reads. With ``a, b, c, d`` the input at
    ``(y0, x0), (y0, x1), (y1, x0), (y1, x1)``::

        out[p, oh, ow] = wy0[oh]·(wx0[ow]·a + wx1[ow]·b) + wy1[oh]·(wx0[ow]·c + wx1[ow]·d)

    i.e. out = (1−λy)((1−λx)a + λx b) + λy((1−λx)c + λx d) with λ = w1. Computed in
    that order, separably: per plane, each used input row is interpolated along W
    once (``rows[h, ow] = wx0·x[h, x0] + wx1·x[h, x1]``), then every output row
    mixes two of those rows (``out[oh] = wy0·rows[y0] + wy1·rows[y1]``, a
    vectorised loop). Zero weights are multiplied like any other, so a NaN or
    inf tap poisons the output even at weight 0, as in torch.
    """
    n_planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(n_planes):
        rows = np.empty((height, out_w), x.dtype)
        for h in range(height):
            if row_used[h]:
                src = x[p, h]
                row = rows[h]
                for ow in range(out_w):
                    row[ow] = wx0[ow] * src[x0[ow]] + wx1[ow] * src[x1[ow]]
        for oh in range(out_h):
            top = rows[y0[oh]]
            bottom = rows[y1[oh]]
            a = wy0[oh]
            b = wy1[oh]
            dst = out[p, oh]
            for ow in range(out_w):
                dst[ow] = a * top[ow] + b * bottom[ow]


def _bilinear_backward_kernel(grad_out, grad_x, y0, y1, wy0, wy1, x0, x1, wx0, wx1, row_used):
    """Adjoint of :func:`_bilinear_forward_kernel`: scatter the same four weights back.

    grad_out: (P, Ho, Wo) contiguous; grad_x: (P, H, W), overwritten. For every output
    ``(oh, ow)`` with upstream gradient ``g``::

        grad_x[y0, x0] += wy0·wx0·g    grad_x[y0, x1] += wy0·wx1·g
        grad_x[y1, x0] += wy1·wx0·g    grad_x[y1, x1] += wy1·wx1·g

    done as the transpose of the two forward passes, per plane (sequentially, so
    the adds never race): ``rows[y0[oh]] += wy0·g[oh]; rows[y1[oh]] += wy1·g[oh]``
    (vectorised), then per input row ``grad_x[h, x0[ow]] += wx0·rows[h, ow]`` and
    ``grad_x[h, x1[ow]] += wx1·rows[h, ow]``.
    """
    n_planes, height, width = grad_x.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
    for p in prange(n_planes):
        rows = np.zeros((height, out_w), grad_x.dtype)
        for oh in range(out_h):
            g = grad_out[p, oh]
            top = rows[y0[oh]]
            a = wy0[oh]
            for ow in range(out_w):
                top[ow] += a * g[ow]
            bottom = rows[y1[oh]]
            b = wy1[oh]
            for ow in range(out_w):
                bottom[ow] += b * g[ow]
        for h in range(height):
            dst = grad_x[p, h]
            for w in range(width):
                dst[w] = 0
            if row_used[h]:
                row = rows[h]
                for ow in range(out_w):
                    dst[x0[ow]] += wx0[ow] * row[ow]
                    dst[x1[ow]] += wx1[ow] * row[ow]


def _nearest_forward_kernel(x, out, src_h, src_w):
    """``out[p, oh, ow] = x[p, src_h[oh], src_w[ow]]``; x: (P, H, W), out: (P, Ho, Wo)."""
    n_planes = x.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(n_planes):
        for oh in range(out_h):
            src = x[p, src_h[oh]]
            dst = out[p, oh]
            for ow in range(out_w):
                dst[ow] = src[src_w[ow]]


def _nearest_backward_kernel(grad_out, grad_x, src_h, src_w):
    """Adjoint of the nearest gather: ``grad_x[p, src_h[oh], src_w[ow]] += grad_out[p, oh, ow]``.

    grad_out: (P, Ho, Wo); grad_x: (P, H, W), overwritten; per plane in C-order.
    """
    n_planes, height, width = grad_x.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
    for p in prange(n_planes):
        for h in range(height):
            for w in range(width):
                grad_x[p, h, w] = 0
        for oh in range(out_h):
            g = grad_out[p, oh]
            dst = grad_x[p, src_h[oh]]
            for ow in range(out_w):
                dst[src_w[ow]] += g[ow]


_bilinear_forward = njit(parallel=True, cache=True)(_bilinear_forward_kernel)
_bilinear_backward = njit(parallel=True, cache=True)(_bilinear_backward_kernel)
_nearest_forward = njit(parallel=True, cache=True)(_nearest_forward_kernel)
_nearest_backward = njit(parallel=True, cache=True)(_nearest_backward_kernel)


def _both_taps(in_hw, out_hw, align_corners, scales, dtype):
    """Row and column taps (:func:`kernels.shared.interpolate.bilinear_taps`) plus the mask of input rows that are read.

    Tap indices go to the kernels unsigned: Numba then emits plain loads for
    ``x[..., x0[ow]]`` instead of its negative-index wraparound code.
    """
    y0, y1, wy0, wy1, x0, x1, wx0, wx1 = bilinear_taps_hw(in_hw, out_hw, align_corners, scales, dtype)
    row_used = np.zeros(in_hw[0], dtype=np.bool_)
    row_used[y0] = True
    row_used[y1] = True
    y0, y1, x0, x1 = (a.astype(np.uintp) for a in (y0, y1, x0, x1))
    return y0, y1, wy0, wy1, x0, x1, wx0, wx1, row_used


def upsample_bilinear2d_forward(x, output_hw, align_corners, scales):
    """Bilinear resize ``x: (N, C, H, W)`` → ``(N, C, Ho, Wo)`` with ``(Ho, Wo) = output_hw``.

    ``align_corners``: bool; ``scales``: ``(scale_h, scale_w)``, each a float or None
    (see the module docstring). Output in x's dtype. Formula and loop nest:
    :func:`_bilinear_forward_kernel`; taps: :func:`kernels.shared.interpolate.bilinear_taps`.
    """
    n, c, height, width = x.shape
    out_h, out_w = output_hw
    taps = _both_taps((height, width), (out_h, out_w), align_corners, scales, x.dtype)
    xc = np.ascontiguousarray(x).reshape(n * c, height, width)
    out = _runtime.empty((n * c, out_h, out_w), x.dtype)
    _bilinear_forward(xc, out, *taps)
    return out.reshape(n, c, out_h, out_w)


def upsample_bilinear2d_backward(grad_out, input_hw, align_corners, scales):
    """Gradient of :func:`upsample_bilinear2d_forward` w.r.t. x: ``(N, C, Ho, Wo)`` → ``(N, C, H, W)``.

    The adjoint scatter of the same four weights (:func:`_bilinear_backward_kernel`).
    """
    n, c, out_h, out_w = grad_out.shape
    height, width = input_hw
    taps = _both_taps((height, width), (out_h, out_w), align_corners, scales, grad_out.dtype)
    gc = np.ascontiguousarray(grad_out).reshape(n * c, out_h, out_w)
    grad_x = _runtime.empty((n * c, height, width), grad_out.dtype)
    _bilinear_backward(gc, grad_x, *taps)
    return grad_x.reshape(n, c, height, width)


def upsample_nearest2d_forward(x, output_hw, scales):
    """Nearest-neighbour resize ``(N, C, H, W)`` → ``(N, C, Ho, Wo)`` (torch's mode 'nearest').

    ``out[n, c, oh, ow] = x[n, c, src_h[oh], src_w[ow]]`` with :func:`kernels.shared.interpolate.nearest_taps`.
    """
    n, c, height, width = x.shape
    out_h, out_w = output_hw
    src_h, src_w = (a.astype(np.uintp) for a in nearest_taps_hw((height, width), output_hw, scales))
    xc = np.ascontiguousarray(x).reshape(n * c, height, width)
    out = _runtime.empty((n * c, out_h, out_w), x.dtype)
    _nearest_forward(xc, out, src_h, src_w)
    return out.reshape(n, c, out_h, out_w)


def upsample_nearest2d_backward(grad_out, input_hw, scales):
    """Gradient of :func:`upsample_nearest2d_forward`: each output's gradient added to its source."""
    n, c, out_h, out_w = grad_out.shape
    height, width = input_hw
    src_h, src_w = (a.astype(np.uintp) for a in nearest_taps_hw(input_hw, (out_h, out_w), scales))
    gc = np.ascontiguousarray(grad_out).reshape(n * c, out_h, out_w)
    grad_x = _runtime.empty((n * c, height, width), grad_out.dtype)
    _nearest_backward(gc, grad_x, src_h, src_w)
    return grad_x.reshape(n, c, height, width)
