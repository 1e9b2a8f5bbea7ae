"""The K-means assignment step's per-point loop and argument check, shared by both devices.

Shapes: ``points: (P, D)``, ``centers: (K, D)`` float64.
"""

from __future__ import annotations

import math

__all__ = ["nearest_center", "check_shapes"]


def nearest_center(points, p, centers):
    """Index of the centre nearest to ``points[p]`` (squared distance, first minimum); CPU and GPU.

    points: (P, D), centers: (K, D) float64::

        best, arg = +inf, 0
        for k in 0..K−1:
            d2 = 0
            for d in 0..D−1:  d2 += (points[p, d] − centers[k, d])²     (in this order)
            if d2 < best:  best, arg = d2, k                           (strict: first minimum wins)
        return arg

    Returns 0 when every distance is NaN. Compiled by ``njit`` in :mod:`kernels.cpu.kmeans`
    and as a CUDA device function in :mod:`kernels.cuda.kmeans`.
    """
    dims = points.shape[1]
    best = math.inf
    arg = 0
    for k in range(centers.shape[0]):
        d2 = 0.0
        for d in range(dims):
            diff = points[p, d] - centers[k, d]
            d2 += diff * diff
        if d2 < best:
            best = d2
            arg = k
    return arg


def check_shapes(points, centers) -> None:
    """``ValueError`` unless ``points: (P, D)`` and ``centers: (K, D)`` with ``K ≥ 1`` when ``P ≥ 1`` (both devices)."""
    if points.ndim != 2 or centers.ndim != 2 or points.shape[1] != centers.shape[1]:
        raise ValueError(
            f"kmeans_assign: expected points (P, D) and centers (K, D), got {points.shape} and {centers.shape}"
        )
    if centers.shape[0] == 0 and points.shape[0]:
        raise ValueError("kmeans_assign: centers is empty (K = 0); expected at least one centre")
