"""Non-maximum suppression on the CPU (Numba), torchvision 0.29.1's ``nms`` exactly.

Shapes: ``boxes: (N, 4)`` rows ``(x1, y1, x2, y2)``, ``scores: (N,)``, same float
dtype; result ``keep: (M,)`` int64, indices into ``boxes`` in the order they were
kept (decreasing score).

The rule (docs/semantics.md#nms), greedy in the order of a *stable* descending sort of
the scores (equal scores: lower index first; NaN scores rank above everything,
as in torch's sort)::

    area[i] = (x2 − x1)·(y2 − y1)                              (in the input dtype)
    for i in order:
        if suppressed[i]: continue
        keep i
        for j after i in order, not suppressed:
            w = max(0, min(x2i, x2j) − max(x1i, x1j));  h likewise
            inter = w·h
            if inter / (area[i] + area[j] − inter) > iou_threshold:  suppressed[j] = True

The IoU is computed in the input dtype and compared (strictly) with the float64
threshold. A zero-area pair gives 0/0 = NaN, which never suppresses; boxes that
only touch (inter 0) survive a threshold of 0. The loop is sequential by nature,
so its kernel is compiled without ``parallel``; ``error_model="numpy"`` makes a
division by zero give inf/NaN as in C instead of raising.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..shared.nms import descending_order

__all__ = ["nms"]


def _nms_kernel(x1, y1, x2, y2, areas, order, iou_threshold, keep):
    """Greedy suppression over ``order``; writes kept indices to ``keep``, returns how many.

    x1, y1, x2, y2, areas: (N,) in T; order: (N,) int64 (stable descending by
    score); keep: (N,) int64 output. ``max``/``min`` are written as C++'s
    ``std::max(a, b) = a < b ? b : a`` so NaN coordinates behave as in torchvision.
    """
    n = order.shape[0]
    T = x1.dtype.type
    zero = T(0.0)
    suppressed = np.zeros(n, np.bool_)
    n_keep = 0
    for oi in range(n):
        i = order[oi]
        if suppressed[i]:
            continue
        keep[n_keep] = i
        n_keep += 1
        ix1, iy1, ix2, iy2, iarea = x1[i], y1[i], x2[i], y2[i], areas[i]
        for oj in range(oi + 1, n):
            j = order[oj]
            if suppressed[j]:
                continue
            xx1 = x1[j] if ix1 < x1[j] else ix1
            yy1 = y1[j] if iy1 < y1[j] else iy1
            xx2 = x2[j] if x2[j] < ix2 else ix2
            yy2 = y2[j] if y2[j] < iy2 else iy2
            w = xx2 - xx1
            h = yy2 - yy1
            w = w if zero < w else zero
            h = h if zero < h else zero
            inter = w * h
            ovr = inter / (iarea + areas[j] - inter)
            if ovr > iou_threshold:
                suppressed[j] = True
    return n_keep


_nms_jit = njit(cache=True, error_model="numpy")(_nms_kernel)


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, in decreasing score order.

    boxes: (N, 4) ``(x1, y1, x2, y2)``; scores: (N,) of the same float dtype;
    a box is dropped when its IoU with a higher-scoring kept box is
    ``> iou_threshold``. Empty input gives an empty int64 array. Semantics:
    :func:`_nms_kernel`.
    """
    n = boxes.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    b = np.asarray(boxes)
    x1 = np.ascontiguousarray(b[:, 0])
    y1 = np.ascontiguousarray(b[:, 1])
    x2 = np.ascontiguousarray(b[:, 2])
    y2 = np.ascontiguousarray(b[:, 3])
    areas = (x2 - x1) * (y2 - y1)
    keep = np.empty(n, dtype=np.int64)
    n_keep = _nms_jit(x1, y1, x2, y2, areas, descending_order(np.asarray(scores)), float(iou_threshold), keep)
    return keep[:n_keep].copy()
