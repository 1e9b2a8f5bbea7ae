"""The K-means assignment step on the CPU (Numba): each point to its nearest centre.

Shapes: ``points: (P, D)``, ``centers: (K, D)`` (float; both are read as float64);
result ``labels: (P,)`` int64 in ``[0, K)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shared.kmeans import check_shapes, nearest_center

__all__ = ["kmeans_assign"]


def _kmeans_assign_kernel(points, centers, labels):
    """``labels[p] = argmin_k Σ_d (points[p, d] − centers[k, d])²``, ties to the lowest ``k``.

    points: (P, D), centers: (K, D) float64; labels: (P,) int64 written in full.
    Parallel over points (each writes only its own label)::

        for p (parallel):  labels[p] = nearest_center(points, p, centers)

    (:func:`kernels.shared.kmeans.nearest_center`). A point whose distances are all NaN gets label 0.
    """
    for p in prange(points.shape[0]):
        labels[p] = _nearest_center(points, p, centers)


_nearest_center = njit(cache=True, inline="always")(nearest_center)
_kmeans_assign_jit = njit(parallel=True, cache=True)(_kmeans_assign_kernel)


def kmeans_assign(points, centers):
    """Nearest-centre labels (int64, shape ``(P,)``) for ``points: (P, D)`` and ``centers: (K, D)``.

    Squared Euclidean distance accumulated in float64 over ``d = 0..D−1`` in
    order; ties go to the lowest centre index. Semantics: :func:`_kmeans_assign_kernel`.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    ctr = np.ascontiguousarray(centers, dtype=np.float64)
    check_shapes(pts, ctr)
    labels = np.empty(pts.shape[0], dtype=np.int64)
    if pts.shape[0]:
        _kmeans_assign_jit(pts, ctr, labels)
    return labels
