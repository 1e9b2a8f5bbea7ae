"""The K-means assignment step on the CPU (Numba): each point to its nearest centre.

Shapes: ``points: (P, D)``, ``centers: (K, D)`` (float; both are read as float64);
result ``labels: (P,)`` int64 in ``[0, K)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["kmeans_assign"]


def _nearest_center_kernel(points, p, centers):
    """Index of the centre nearest to ``points[p]`` (squared distance, first minimum); CPU and GPU.

    points: (P, D), centers: (K, D) float64::

        best, arg = +inf, 0
        for k in 0..K−1:
            d2 = 0
            for d in 0..D−1:  d2 += (points[p, d] − centers[k, d])²     (in this order)
            if d2 < best:  best, arg = d2, k                           (strict: first minimum wins)
        return arg

    Returns 0 when every distance is NaN. Compiled by ``njit`` here and as a CUDA
    device function by :mod:`kernels.cuda.kmeans`.
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


def _kmeans_assign_kernel(points, centers, labels):
    """``labels[p] = argmin_k Σ_d (points[p, d] − centers[k, d])²``, ties to the lowest ``k``.

    points: (P, D), centers: (K, D) float64; labels: (P,) int64 written in full.
    Parallel over points (each writes only its own label)::

        for p (parallel):  labels[p] = nearest_center(points, p, centers)

    (:func:`_nearest_center_kernel`). A point whose distances are all NaN gets label 0.
    """
    for p in prange(points.shape[0]):
        labels[p] = _nearest_center(points, p, centers)


_nearest_center = njit(cache=True, inline="always")(_nearest_center_kernel)
_kmeans_assign_jit = njit(parallel=True, cache=True)(_kmeans_assign_kernel)


def _check_shapes(points, centers) -> None:
    """``ValueError`` unless ``points: (P, D)`` and ``centers: (K, D)`` with ``K ≥ 1`` when ``P ≥ 1`` (both devices)."""
    if points.ndim != 2 or centers.ndim != 2 or points.shape[1] != centers.shape[1]:
        raise ValueError(
            f"kmeans_assign: expected points (P, D) and centers (K, D), got {points.shape} and {centers.shape}"
        )
    if centers.shape[0] == 0 and points.shape[0]:
        raise ValueError("kmeans_assign: centers is empty (K = 0); expected at least one centre")


def kmeans_assign(points, centers):
    """Nearest-centre labels (int64, shape ``(P,)``) for ``points: (P, D)`` and ``centers: (K, D)``.

    Squared Euclidean distance accumulated in float64 over ``d = 0..D−1`` in
    order; ties go to the lowest centre index. Semantics: :func:`_kmeans_assign_kernel`.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    ctr = np.ascontiguousarray(centers, dtype=np.float64)
    _check_shapes(pts, ctr)
    labels = np.empty(pts.shape[0], dtype=np.int64)
    if pts.shape[0]:
        _kmeans_assign_jit(pts, ctr, labels)
    return labels
