"""RoIAlign's per-RoI geometry, sample coordinates and bilinear taps, shared by both devices.

See :mod:`kernels.shared`; the loops around them are in :mod:`kernels.cpu.roi_align` and
:mod:`kernels.cuda.roi_align`. Every number is computed in T, the input dtype, in torchvision's order.
"""

from __future__ import annotations

import math

__all__ = ["roi_geometry", "sample_coord", "bilinear"]


def roi_geometry(rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned):
    """Start, bin size and sampling grid of RoI ``k``, all in T = rois' dtype.

    Returns ``(start_h, start_w, bin_h, bin_w, grid_h, grid_w)`` computed as::

        off = 0.5 if aligned else 0
        start_w = x1·scale − off;   end_w = x2·scale − off      (same for h with y)
        roi_w = end_w − start_w;    if not aligned: roi_w = max(roi_w, 1)   ("force 1×1")
        bin_w = roi_w / PW
        grid_w = sampling_ratio if sampling_ratio > 0 else int(ceil(roi_w / PW))

    ``spatial_scale`` arrives already cast to T.
    """
    T = rois.dtype.type
    offset = T(0.5) if aligned else T(0.0)
    start_w = rois[k, 1] * spatial_scale - offset
    start_h = rois[k, 2] * spatial_scale - offset
    end_w = rois[k, 3] * spatial_scale - offset
    end_h = rois[k, 4] * spatial_scale - offset
    roi_w = end_w - start_w
    roi_h = end_h - start_h
    if not aligned:
        if roi_w < T(1.0):
            roi_w = T(1.0)
        if roi_h < T(1.0):
            roi_h = T(1.0)
    bin_h = roi_h / T(pooled_h)
    bin_w = roi_w / T(pooled_w)
    if sampling_ratio > 0:
        grid_h = sampling_ratio
        grid_w = sampling_ratio
    else:
        grid_h = int(math.ceil(roi_h / T(pooled_h)))
        grid_w = int(math.ceil(roi_w / T(pooled_w)))
    return start_h, start_w, bin_h, bin_w, grid_h, grid_w


def sample_coord(start, bin_index, bin_size, sample, grid):
    """Coordinate of sample ``sample`` of bin ``bin_index`` along one axis, in T = type(start)::

        start + bin_index·bin_size + (sample + 0.5)·bin_size / grid      (left to right)

    torchvision's order of operations, shared by the CPU sample table and both CUDA kernels.
    """
    T = type(start)
    return start + T(bin_index) * bin_size + (T(sample) + T(0.5)) * bin_size / T(grid)


def bilinear(y, x, height, width):
    """Four flat offsets, four weights and a validity flag for one sample at ``(y, x)``.

    The seed's bilinear formula with torchvision's border rules, in T = type(y)::

        if not (−1 ≤ y ≤ H and −1 ≤ x ≤ W): invalid (offsets 0, weights 0)
        y = max(y, 0);  yl = int(y)
        if yl ≥ H−1: yl = yh = H−1, y = yl   else yh = yl + 1       (same for x)
        ly = y − yl;  lx = x − xl;  hy = 1 − ly;  hx = 1 − lx
        (p1, p2, p3, p4) = (yl·W + xl, yl·W + xh, yh·W + xl, yh·W + xh)
        (w1, w2, w3, w4) = (hy·hx,     hy·lx,     ly·hx,     ly·lx)

    so the sampled value is ``w1·f[p1] + w2·f[p2] + w3·f[p3] + w4·f[p4]``. A sample
    at ``y = −1`` or ``y = H`` is kept (clamped to the border row); one further out
    contributes 0 but still counts in the bin's average.
    """
    T = type(y)
    if not (y >= -1.0 and y <= height and x >= -1.0 and x <= width):
        z = T(0.0)
        return 0, 0, 0, 0, z, z, z, z, False
    if y <= 0:
        y = T(0.0)
    if x <= 0:
        x = T(0.0)
    y_low = int(y)
    x_low = int(x)
    if y_low >= height - 1:
        y_low = height - 1
        y_high = height - 1
        y = T(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = width - 1
        x_high = width - 1
        x = T(x_low)
    else:
        x_high = x_low + 1
    ly = y - T(y_low)
    lx = x - T(x_low)
    hy = T(1.0) - ly
    hx = T(1.0) - lx
    return (
        y_low * width + x_low,
        y_low * width + x_high,
        y_high * width + x_low,
        y_high * width + x_high,
        hy * hx,
        hy * lx,
        ly * hx,
        ly * lx,
        True,
    )
