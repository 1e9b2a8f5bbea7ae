"""RoIPool forward (max and argmax per bin) and backward on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.roi_pool`.

Shapes: ``x: (N, C, H, W)``; ``rois: (K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``
in x's dtype; ``out: (K, C, PH, PW)`` in x's dtype and ``argmax`` int32, the flat
offset ``h·W + w`` inside the ``H×W`` plane, or −1 when nothing was selected.
torchvision 0.29.1's rule with its two rounding processes, as described in the
CPU module, computed by the helpers both devices compile (here as device functions): the
snapped box and bin size (:func:`kernels.shared.roi_pool.roi_box`, which
rounds half away from zero with :func:`kernels.shared.roi_pool.round_half_away`)
and each bin's pixel range (:func:`kernels.shared.roi_pool.bin_range`).

Thread mappings (torchvision's CUDA ones):

* forward: one thread per output element ``(k, c, ph, pw)`` scans its bin in
  row-major order (first maximum wins; NaN never selected). No atomics: every
  result equals the CPU's exactly;
* backward: one thread per upstream element adds it at ``argmax``. Bins of one
  RoI can overlap by a pixel and RoIs overlap each other, so several threads may
  add to one input pixel: ``cuda.atomic.add``. The sum is exact up to the order
  of float additions, which atomics leave to thread timing.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..shared.roi_pool import FLT_MAX, bin_range, roi_box
from ._index import unravel4
from ._launch import array_module, launch

__all__ = ["roi_pool_forward", "roi_pool_backward"]


def _roi_pool_forward_kernel(x, rois, out, argmax, height, width, spatial_scale, lowest):
    """RoIPool forward; thread ``t`` computes ``out``/``argmax`` element ``t = (k, c, ph, pw)`` in C-order.

    x: (N, C, H·W); rois: (K, 5); out, argmax: (K, C, PH, PW) written in full;
    ``lowest = −FLT_MAX`` in x's dtype::

        b = int(rois[k, 0]);  sw, sh, ew, eh = round(coords·scale)    (half away from zero)
        rw = max(ew − sw + 1, 1);  bw = rw / PW                        (in T; h alike)
        h0 = clip(floor(ph·bh) + sh, 0, H);  h1 = clip(ceil((ph+1)·bh) + sh, 0, H)   (w alike)
        m = 0 if the bin is empty else lowest;  a = −1
        for h in [h0, h1), w in [w0, w1):  if x[b, c, h·W + w] > m:  m, a = that value, h·W + w
    """
    T = x.dtype.type
    n_rois, channels, pooled_h, pooled_w = out.shape
    n = n_rois * channels * pooled_h * pooled_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        k, c, ph, pw = unravel4(t, channels, pooled_h, pooled_w)
        b = int(rois[k, 0])
        start_h, start_w, bin_h, bin_w = _roi_box(rois, k, spatial_scale, pooled_h, pooled_w)
        h0, h1 = _bin_range(ph, bin_h, start_h, height)
        w0, w1 = _bin_range(pw, bin_w, start_w, width)
        best = T(0.0) if (h1 <= h0 or w1 <= w0) else lowest
        arg = -1
        for h in range(h0, h1):
            for w in range(w0, w1):
                v = x[b, c, h * width + w]
                if v > best:
                    best = v
                    arg = h * width + w
        out[k, c, ph, pw] = best
        argmax[k, c, ph, pw] = arg


def _roi_pool_backward_kernel(grad_out, argmax, batch_index, grad_x):
    """RoIPool backward; thread ``t`` adds ``grad_out`` element ``t = (k, c, ph, pw)`` at its argmax.

    grad_out, argmax: (K, C, PH, PW); batch_index: (K,) int64; grad_x: (N, C, H·W)
    zero on entry::

        j = argmax[k, c, ph, pw];  if 0 ≤ j < H·W:  atomic grad_x[batch_index[k], c, j] += grad_out[k, c, ph, pw]

    Several bins can select one pixel, hence the atomic add (float additions in
    an order left to thread timing).
    """
    n_rois, channels, pooled_h, pooled_w = grad_out.shape
    plane = grad_x.shape[2]
    n = n_rois * channels * pooled_h * pooled_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        k, c, ph, pw = unravel4(t, channels, pooled_h, pooled_w)
        j = argmax[k, c, ph, pw]
        if j >= 0 and j < plane:
            cuda.atomic.add(grad_x, (batch_index[k], c, j), grad_out[k, c, ph, pw])


_roi_box = cuda.jit(device=True)(roi_box)
_bin_range = cuda.jit(device=True)(bin_range)
_roi_pool_forward = cuda.jit(cache=True)(_roi_pool_forward_kernel)
_roi_pool_backward = cuda.jit(cache=True)(_roi_pool_backward_kernel)


def roi_pool_forward(x, rois, output_hw, spatial_scale):
    """RoIPool of ``x: (N, C, H, W)`` over ``rois: (K, 5)`` → ``(out, argmax)``, both ``(K, C, PH, PW)``.

    Same contract as :func:`kernels.cpu.roi_pool.roi_pool_forward`; one thread per
    output element (:func:`_roi_pool_forward_kernel`).
    """
    xp = array_module()
    n, c, height, width = x.shape
    pooled_h, pooled_w = int(output_hw[0]), int(output_hw[1])
    k = rois.shape[0]
    if k * c * pooled_h * pooled_w == 0:
        return (xp.zeros((k, c, pooled_h, pooled_w), dtype=x.dtype),
                xp.zeros((k, c, pooled_h, pooled_w), dtype=np.int32))
    out = xp.empty((k, c, pooled_h, pooled_w), dtype=x.dtype)
    argmax = xp.empty((k, c, pooled_h, pooled_w), dtype=np.int32)
    launch(
        _roi_pool_forward, out.size, xp.ascontiguousarray(x).reshape(n, c, height * width),
        xp.ascontiguousarray(rois, dtype=x.dtype), out, argmax, height, width,
        x.dtype.type(spatial_scale), x.dtype.type(-FLT_MAX),
    )
    return out, argmax


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Gradient of RoIPool: zeros of ``input_shape = (N, C, H, W)`` plus the atomic scatter of grad_out by argmax.

    grad_out, argmax: (K, C, PH, PW); rois: (K, 5) (only the batch index is read).
    Result in grad_out's dtype (:func:`_roi_pool_backward_kernel`).
    """
    xp = array_module()
    n, c, height, width = (int(v) for v in input_shape)
    grad_x = xp.zeros((n, c, height * width), dtype=grad_out.dtype)
    if grad_out.size and grad_x.size:
        batch_index = xp.ascontiguousarray(rois[:, 0]).astype(np.int64)
        launch(
            _roi_pool_backward, grad_out.size, xp.ascontiguousarray(grad_out),
            xp.ascontiguousarray(argmax, dtype=np.int32), batch_index, grad_x,
        )
    return grad_x.reshape(n, c, height, width)
