"""Source taps and weights of resizing along one dimension, shared by both devices (host NumPy).

Both modes are separable: each output row ``oh`` reads input rows chosen by ``oh``
alone, each output column ``ow`` input columns chosen by ``ow`` alone. So the taps
are computed once per call on the host, per output row and per output column,
and the kernels of :mod:`kernels.cpu.interpolate` and :mod:`kernels.cuda.interpolate`
only apply them: both devices sample exactly the same coordinates.

``scale`` (``scales = (scale_h, scale_w)``): the user's ``scale_factor`` for that
dimension, or None when the output size was given (or recomputed), exactly what
torch passes to its kernels (``aten/src/ATen/native/UpSample.h``,
``area_pixel_compute_scale``). It matters: with ``scale_factor`` torch maps
coordinates with ``1/scale_factor``, with a size with ``in/out``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bilinear_taps", "nearest_taps", "bilinear_taps_hw", "nearest_taps_hw"]


def bilinear_taps(in_size: int, out_size: int, align_corners: bool, scale, dtype):
    """Source taps and weights of linear interpolation along one dimension (torch 2.14.1).

    Returns ``(i0, i1, w0, w1)``, each of length ``out_size``; output ``o`` is
    ``w0[o]·x[i0[o]] + w1[o]·x[i1[o]]``. Arithmetic is done in ``dtype`` (float32
    data: float32 coordinates, as torch does)::

        if out_size == in_size:  i0 = i1 = o, w0 = 1, w1 = 0        (copied, whatever the scale)
        else:
            align_corners:  r = (in−1)/(out−1)  (0 if out == 1);       src = r·o
            otherwise:      r = 1/scale if a scale_factor was given,
                                else in/out;                         src = max(r·(o + ½) − ½, 0)
            i0 = min(floor(src), in−1);  w1 = clamp(src − i0, 0, 1);  w0 = 1 − w1
            i1 = i0 + 1 if i0 < in−1 else i0

    Example: in 5 → out 7 by ``size`` uses r = 5/7; by ``scale_factor=1.5`` it
    uses r = 2/3, so the two differ although both give 7 outputs.
    """
    dtype = np.dtype(dtype).type
    positions = np.arange(out_size)
    if out_size == in_size:
        return positions, positions.copy(), np.ones(out_size, dtype), np.zeros(out_size, dtype)
    dst = positions.astype(dtype)
    if align_corners:
        ratio = dtype(in_size - 1) / dtype(out_size - 1) if out_size > 1 else dtype(0)
        src = ratio * dst
    else:
        if scale is not None and scale > 0:
            ratio = dtype(1.0 / scale)
        else:
            ratio = dtype(in_size) / dtype(out_size)
        src = np.maximum(ratio * (dst + dtype(0.5)) - dtype(0.5), dtype(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0.astype(dtype), dtype(0), dtype(1)).astype(dtype)
    w0 = (dtype(1) - w1).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return i0, i1, w0, w1


def nearest_taps(in_size: int, out_size: int, scale):
    """Source index of every output position for mode 'nearest' (torch's ``nearest_idx``).

    ::

        out == in:       src = o
        out == 2·in:     src = o // 2
        otherwise:       r = float32(1/scale) if a scale_factor was given, else float32(in)/float32(out)
                         src = min(floor(float32(o)·r), in−1)          (float32, whatever the data dtype)
    """
    positions = np.arange(out_size)
    if out_size == in_size:
        return positions
    if out_size == 2 * in_size:
        return positions >> 1
    if scale is not None and scale > 0:
        ratio = np.float32(1.0 / scale)
    else:
        ratio = np.float32(in_size) / np.float32(out_size)
    src = np.floor(positions.astype(np.float32) * ratio).astype(np.int64)
    return np.minimum(src, in_size - 1)


def bilinear_taps_hw(in_hw, out_hw, align_corners: bool, scales, dtype):
    """:func:`bilinear_taps` along H then W: ``(y0, y1, wy0, wy1, x0, x1, wx0, wx1)``.

    ``in_hw = (H, W)``, ``out_hw = (Ho, Wo)``, ``scales = (scale_h, scale_w)``; row
    taps have length Ho, column taps length Wo.
    """
    return (
        *bilinear_taps(in_hw[0], out_hw[0], align_corners, scales[0], dtype),
        *bilinear_taps(in_hw[1], out_hw[1], align_corners, scales[1], dtype),
    )


def nearest_taps_hw(in_hw, out_hw, scales):
    """:func:`nearest_taps` along H then W: ``(src_h, src_w)`` of lengths Ho and Wo (int64, host NumPy)."""
    return nearest_taps(in_hw[0], out_hw[0], scales[0]), nearest_taps(in_hw[1], out_hw[1], scales[1])
