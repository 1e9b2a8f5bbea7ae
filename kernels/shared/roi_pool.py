"""RoIPool's two rounding processes, shared by both devices (torchvision 0.29.1's CPU kernel).

1. the box is snapped to whole pixels with C's ``round`` (half away from zero,
   not NumPy's half to even): :func:`roi_box` with :func:`round_half_away`;
2. each bin covers ``[floor(i·bin), ceil((i+1)·bin)) + start``, clipped: :func:`bin_range`.

:func:`roi_box` and :func:`bin_range` are plain functions that :mod:`kernels.cpu.roi_pool`
compiles with ``njit`` and :mod:`kernels.cuda.roi_pool` with ``cuda.jit(device=True)``.
:func:`round_half_away` is called from inside :func:`roi_box`, so it is looked up
here: it is registered with ``register_jitable``, which lets either compiler inline
it (and plain Python call it).
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

__all__ = ["FLT_MAX", "round_half_away", "roi_box", "bin_range"]

FLT_MAX = 3.4028234663852886e38  # C's FLT_MAX, the initial running max for float32 *and* float64


@register_jitable
def round_half_away(v):
    """C's ``round``: to the nearest integer, halves away from zero (2.5 → 3, −2.5 → −3), as int.

    Written with truncation ``t = int(v)`` (toward zero, as C's ``(int)``) and the
    exact fraction ``v − t``; ``floor(v + 0.5)`` would round 0.49999997 up in
    float32. ``int(v)`` works in plain Python (NumPy scalars, ``NUMBA_DISABLE_JIT=1``),
    on the CPU and in CUDA device code, so both devices compile this same helper
    (inlined into :func:`roi_box` through ``register_jitable``).
    """
    t = int(v)
    frac = v - type(v)(t)
    r = t
    if frac >= 0.5:
        r += 1
    elif frac <= -0.5:
        r -= 1
    return r


def roi_box(rois, k, spatial_scale, pooled_h, pooled_w):
    """Snapped start and bin size of RoI ``k`` (the first rounding process), in T = rois' dtype.

    Returns ``(start_h, start_w, bin_h, bin_w)``::

        sw, sh, ew, eh = round(x1·scale), round(y1·scale), round(x2·scale), round(y2·scale)
        rw = max(ew − sw + 1, 1);  bw = T(rw) / T(PW)          (h alike)

    with ``round`` half away from zero (:func:`round_half_away`) and
    ``spatial_scale`` already cast to T.
    """
    T = rois.dtype.type
    start_w = round_half_away(rois[k, 1] * spatial_scale)
    start_h = round_half_away(rois[k, 2] * spatial_scale)
    end_w = round_half_away(rois[k, 3] * spatial_scale)
    end_h = round_half_away(rois[k, 4] * spatial_scale)
    roi_w = max(end_w - start_w + 1, 1)
    roi_h = max(end_h - start_h + 1, 1)
    return start_h, start_w, T(roi_h) / T(pooled_h), T(roi_w) / T(pooled_w)


def bin_range(i, bin_size, start, limit):
    """Pixel range ``[lo, hi)`` of bin ``i`` along one axis (the second rounding process)::

        lo = clip(floor(i·bin) + start, 0, limit);  hi = clip(ceil((i+1)·bin) + start, 0, limit)

    in T = type(bin_size); neighbouring bins can overlap by a pixel. CPU and GPU.
    """
    T = type(bin_size)
    lo = min(max(int(math.floor(T(i) * bin_size)) + start, 0), limit)
    hi = min(max(int(math.ceil(T(i + 1) * bin_size)) + start, 0), limit)
    return lo, hi
