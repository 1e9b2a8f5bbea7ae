"""RoIPool forward (max and argmax per bin) and backward on the CPU (Numba).

Shapes: ``x: (N, C, H, W)``; ``rois: (K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``
in x's dtype; ``out: (K, C, PH, PW)`` in x's dtype and ``argmax: (K, C, PH, PW)``
int32, the flat offset ``h·W + w`` of the selected pixel inside its own ``H×W``
plane, or −1 when nothing was selected. Exactly torchvision 0.29.1's CPU kernel
(docs/semantics.md#roi_pool), including its "two rounding processes":

1. the box is snapped to whole pixels with C's ``round`` (half away from zero,
   not NumPy's half to even): ``sw = round(x1·scale)``, ..., and its size counts
   the end pixel: ``rw = max(ew − sw + 1, 1)``;
2. bin ``(ph, pw)`` covers rows ``[floor(ph·bh), ceil((ph+1)·bh)) + sh`` with
   ``bh = rh / PH`` in the input dtype, clipped to ``[0, H]`` (columns alike), so
   neighbouring bins can overlap by a pixel.

The forward runs RoIs in parallel on a channels-last copy of the map, so the
innermost loop runs over channels (vectorised). The backward is the scatter
``grad_x[b, c].flat[argmax] += grad_out`` run in parallel over the ``(b, c)``
planes, every plane visiting the RoIs in order: no races, and each element
receives its additions in torchvision's order (RoI, bin row, bin column).

The kernels expect validated arguments (``minitorchseg.ops.roi_pool`` checks
shapes, dtypes, finite boxes and batch indices before anything runs).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shared.roi_pool import FLT_MAX, bin_range, roi_box

__all__ = ["roi_pool_forward", "roi_pool_backward"]

def _pixel_kernel(flat, pixel, channels):
    """The ``channels`` values of pixel ``pixel`` of a flattened channels-last map (a view; slicing
    lets LLVM vectorise the channel loops)."""
    start = pixel * channels
    return flat[start:start + channels]


def _max_step_kernel(row, m_src, a_src, m_dst, a_dst, idx):
    """One pixel of the running max over channels: ``(m_dst, a_dst) = (row, idx) if row > m_src else (m_src, a_src)``.

    All arrays ``(C,)``; every element is read and written unconditionally (no
    masked stores), so the loop vectorises.
    """
    for c in range(row.shape[0]):
        v = row[c]
        m = m_src[c]
        a = a_src[c]
        better = v > m
        m_dst[c] = v if better else m
        a_dst[c] = idx if better else a


def _roi_pool_forward_kernel(x, rois, out, argmax, height, width, spatial_scale, lowest):
    """RoIPool forward.

    x: the channels-last map ``(N, H, W, C)`` flattened to 1-D (pixel ``p`` of
    image ``b`` starts at ``(b·H·W + p)·C``); rois: (K, 5); out: (K, C, PH, PW),
    argmax: (K, C, PH, PW) int32, both written in full; ``lowest = −FLT_MAX`` in
    x's dtype. Loop nest (``k`` parallel)::

        for k:          b = int(rois[k, 0]); sw, sh, ew, eh = round(coords·scale)       (roi_box)
                        rw = max(ew − sw + 1, 1);  bw = rw / PW      (same for h)
            for ph, pw: h0 = clip(floor(ph·bh) + sh), h1 = clip(ceil((ph+1)·bh) + sh)  (w alike; bin_range)
                m[:] = 0 if the bin is empty else lowest;  a[:] = −1
                for h in [h0, h1), w in [w0, w1):                 (row-major)
                    for c:  if x[b, h, w, c] > m[c]:  m[c], a[c] = x[b, h, w, c], h·W + w
                out[k, :, ph, pw], argmax[k, :, ph, pw] = m, a

    The running ``(m, a)`` ping-pong between two pairs of buffers (read one
    pair, write the other), so every step is a plain load-compare-blend-store
    that vectorises; an in-place conditional update compiles to masked stores,
    which are slow on AMD processors. Ties keep the first pixel in row-major
    order; NaN is never selected; a bin whose values are all ≤ −FLT_MAX (or NaN)
    gives −FLT_MAX with argmax −1.
    """
    T = x.dtype.type
    n_rois = rois.shape[0]
    channels = out.shape[1]
    pooled_h, pooled_w = out.shape[2], out.shape[3]
    for k in prange(n_rois):
        b = int(rois[k, 0])
        start_h, start_w, bin_h, bin_w = _roi_box(rois, k, spatial_scale, pooled_h, pooled_w)
        best = np.empty(channels, x.dtype)
        best_next = np.empty(channels, x.dtype)
        arg = np.empty(channels, np.int32)
        arg_next = np.empty(channels, np.int32)
        base = b * height * width
        for ph in range(pooled_h):
            h0, h1 = _bin_range(ph, bin_h, start_h, height)
            for pw in range(pooled_w):
                w0, w1 = _bin_range(pw, bin_w, start_w, width)
                init = T(0.0) if (h1 <= h0 or w1 <= w0) else lowest
                for c in range(channels):
                    best[c] = init
                    arg[c] = -1
                m_src, m_dst, a_src, a_dst = best, best_next, arg, arg_next
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        idx = np.int32(h * width + w)
                        row = _pixel(x, base + h * width + w, channels)
                        _max_step(row, m_src, a_src, m_dst, a_dst, idx)
                        m_src, m_dst, a_src, a_dst = m_dst, m_src, a_dst, a_src
                for c in range(channels):
                    out[k, c, ph, pw] = m_src[c]
                    argmax[k, c, ph, pw] = a_src[c]


def _roi_pool_backward_kernel(grad_out, argmax, batch_index, grad_x):
    """RoIPool backward: ``grad_x[b, c].flat[argmax[k, c, ph, pw]] += grad_out[k, c, ph, pw]``.

    grad_out, argmax: (K, C, PH, PW); batch_index: (K,) int64; grad_x: (N, C, H·W)
    zero on entry. Parallel over planes ``(b, c)``; each plane takes the RoIs
    ``k`` with ``batch_index[k] == b`` in order, then bins in C-order. An argmax
    of −1 (nothing selected) or outside the plane adds nothing.
    """
    n_rois, channels = grad_out.shape[0], grad_out.shape[1]
    pooled_h, pooled_w = grad_out.shape[2], grad_out.shape[3]
    n_images, plane = grad_x.shape[0], grad_x.shape[2]
    for q in prange(n_images * channels):
        b = q // channels
        c = q % channels
        g = grad_x[b, c]
        for k in range(n_rois):
            if batch_index[k] != b:
                continue
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    j = argmax[k, c, ph, pw]
                    if j >= 0 and j < plane:
                        g[j] += grad_out[k, c, ph, pw]


_roi_box = njit(cache=True, inline="always")(roi_box)
_bin_range = njit(cache=True, inline="always")(bin_range)
_pixel = njit(cache=True, inline="always")(_pixel_kernel)
_max_step = njit(cache=True)(_max_step_kernel)
_roi_pool_forward_jit = njit(parallel=True, cache=True, error_model="numpy")(_roi_pool_forward_kernel)
_roi_pool_backward_jit = njit(parallel=True, cache=True)(_roi_pool_backward_kernel)


def roi_pool_forward(x, rois, output_hw, spatial_scale):
    """RoIPool of ``x: (N, C, H, W)`` over ``rois: (K, 5)`` → ``(out, argmax)``, both ``(K, C, PH, PW)``.

    ``output_hw = (PH, PW)``; ``spatial_scale`` is cast to x's dtype first (as in
    torchvision). ``out`` has x's dtype, ``argmax`` is int32 (−1: nothing
    selected). Semantics: :func:`_roi_pool_forward_kernel`.
    """
    n, c, height, width = x.shape
    pooled_h, pooled_w = int(output_hw[0]), int(output_hw[1])
    k = rois.shape[0]
    if k * c * pooled_h * pooled_w == 0:
        return (np.zeros((k, c, pooled_h, pooled_w), dtype=x.dtype),
                np.zeros((k, c, pooled_h, pooled_w), dtype=np.int32))
    out = np.empty((k, c, pooled_h, pooled_w), dtype=x.dtype)
    argmax = np.empty((k, c, pooled_h, pooled_w), dtype=np.int32)
    x_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1)
    _roi_pool_forward_jit(
        x_last, np.ascontiguousarray(rois, dtype=x.dtype), out, argmax, height, width,
        x.dtype.type(spatial_scale), x.dtype.type(-FLT_MAX),
    )
    return out, argmax


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Gradient of RoIPool: zeros of ``input_shape = (N, C, H, W)`` plus the scatter of grad_out by argmax.

    grad_out, argmax: (K, C, PH, PW) (any strides); rois: (K, 5) (only the batch
    index is read). Result in grad_out's dtype. Semantics:
    :func:`_roi_pool_backward_kernel`.
    """
    n, c, height, width = (int(v) for v in input_shape)
    grad_x = np.zeros((n, c, height * width), dtype=grad_out.dtype)
    if grad_out.size and grad_x.size:
        batch_index = np.asarray(rois)[:, 0].astype(np.int64)
        _roi_pool_backward_jit(grad_out, argmax, batch_index, grad_x)
    return grad_x.reshape(n, c, height, width)
