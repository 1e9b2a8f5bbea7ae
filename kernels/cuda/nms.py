"""Non-maximum suppression on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.nms`.

Shapes: ``boxes: (N, 4)`` rows ``(x1, y1, x2, y2)``, ``scores: (N,)`` of the same
float dtype; result ``keep: (M,)`` int64 indices into ``boxes``, in decreasing score
order. The rule is the CPU's (torchvision 0.29.1): greedy over a *stable*
descending sort of the scores, dropping every later box whose IoU with a kept box
is ``> iou_threshold``, IoU computed in the input dtype.

The greedy loop is sequential, but its expensive part, the ``N²/2`` IoU tests, is
not. As torchvision's CUDA kernel does, the work is split in two:

1. on the device, :func:`_nms_mask_kernel` fills a bit matrix: thread ``t``
   handles the pair (row ``a``, word ``w``) and sets bit ``b`` of ``mask[a, w]``
   when the box at sorted position ``a`` would suppress the one at sorted
   position ``j = 32·w + b > a``. Every thread writes its own word: no atomics;
2. on the host, the greedy scan walks the sorted boxes once: a box is kept unless
   a kept box has set its bit, and a kept box ORs its row into the "removed"
   bits. Skipping the pairs whose second box is already suppressed (as the CPU
   loop does) changes nothing, so the keep list equals the CPU's.

The sort is the CPU's, :func:`kernels.shared.nms.descending_order`, on a host copy
of the scores (N numbers); the IoU formula is the CPU loop's, written once here
as the device function :func:`_suppresses_kernel`.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..shared.nms import descending_order
from ._launch import array_module, launch, to_host

__all__ = ["nms"]

_BITS = 32  # boxes per mask word (bits 0..31 of an int64, so no sign bit is ever set)


def _suppresses_kernel(ax1, ay1, ax2, ay2, a_area, bx1, by1, bx2, by2, b_area, iou_threshold):
    """True when ``IoU(a, b) > iou_threshold``, in the boxes' dtype T, as the CPU loop computes it.

    ``max``/``min`` are C++'s ``std::max(a, b) = a < b ? b : a`` (so NaN coordinates
    behave as in torchvision); ``w = max(0, xx2 − xx1)``, ``h`` alike,
    ``inter = w·h``, ``IoU = inter / (area_a + area_b − inter)``; a 0/0 IoU is NaN
    and never suppresses. The threshold arrives as float64 and the comparison is
    made in float64.
    """
    zero = type(ax1)(0.0)
    xx1 = bx1 if ax1 < bx1 else ax1
    yy1 = by1 if ay1 < by1 else ay1
    xx2 = bx2 if bx2 < ax2 else ax2
    yy2 = by2 if by2 < ay2 else ay2
    w = xx2 - xx1
    h = yy2 - yy1
    w = w if zero < w else zero
    h = h if zero < h else zero
    inter = w * h
    ovr = inter / (a_area + b_area - inter)
    return ovr > iou_threshold


def _nms_mask_kernel(x1, y1, x2, y2, areas, iou_threshold, mask):
    """Suppression bits; thread ``t`` writes ``mask`` element ``t = (a, w)`` in C-order.

    x1, y1, x2, y2, areas: (N,) in T, already in sorted (descending score) order;
    mask: (N, ceil(N / 32)) int64::

        bits = 0
        for b in range(32):
            j = 32·w + b
            if a < j < N and suppresses(box a, box j):  bits |= 1 << b
        mask[a, w] = bits
    """
    n = x1.shape[0]
    words = mask.shape[1]
    total = n * words
    for t in range(cuda.grid(1), total, cuda.gridsize(1)):
        a = t // words
        w = t % words
        bits = 0
        for b in range(_BITS):
            j = w * _BITS + b
            if j > a and j < n:
                if _suppresses(x1[a], y1[a], x2[a], y2[a], areas[a], x1[j], y1[j], x2[j], y2[j], areas[j],
                               iou_threshold):
                    bits |= 1 << b
        mask[a, w] = bits


_suppresses = cuda.jit(device=True)(_suppresses_kernel)
_nms_mask = cuda.jit(cache=True)(_nms_mask_kernel)


def _greedy_scan(mask: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The sequential part, on the host: keep box ``a`` (sorted position) unless a kept box suppressed it.

    mask: (N, words) int64 from :func:`_nms_mask_kernel`; order: (N,) original
    indices in sorted order. Returns the kept original indices (int64).
    """
    removed = np.zeros(mask.shape[1], dtype=np.int64)
    keep = []
    for a in range(mask.shape[0]):
        w, b = divmod(a, _BITS)
        if (removed[w] >> b) & 1:
            continue
        keep.append(order[a])
        removed |= mask[a]
    return np.array(keep, dtype=np.int64)


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by greedy NMS, in decreasing score order.

    Same contract as :func:`kernels.cpu.nms.nms`: boxes (N, 4), scores (N,) of the
    same float dtype; empty input gives an empty int64 array. IoU bits on the
    device, greedy scan on the host (see the module docstring).
    """
    xp = array_module()
    n = boxes.shape[0]
    if n == 0:
        return xp.empty(0, dtype=np.int64)
    order = descending_order(to_host(scores))
    b = xp.asarray(boxes)[xp.asarray(order)]
    x1 = xp.ascontiguousarray(b[:, 0])
    y1 = xp.ascontiguousarray(b[:, 1])
    x2 = xp.ascontiguousarray(b[:, 2])
    y2 = xp.ascontiguousarray(b[:, 3])
    areas = (x2 - x1) * (y2 - y1)
    mask = xp.empty((n, -(-n // _BITS)), dtype=np.int64)
    launch(_nms_mask, mask.size, x1, y1, x2, y2, areas, np.float64(iou_threshold), mask)
    return xp.asarray(_greedy_scan(to_host(mask), order))
