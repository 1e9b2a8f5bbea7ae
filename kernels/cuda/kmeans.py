"""The K-means assignment step on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.kmeans`.

Shapes: ``points: (P, D)``, ``centers: (K, D)`` (read as float64); result
``labels: (P,)`` int64 in ``[0, K)``. One thread per point (grid-stride loop): it
computes its ``K`` squared distances and keeps the first minimum, exactly the CPU
loop, so labels are identical. Each thread writes only its own label: no atomics.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from kernels.cuda._launch import array_module, launch

__all__ = ["kmeans_assign"]


def _kmeans_assign_kernel(points, centers, labels):
    """``labels[p] = argmin_k Σ_d (points[p, d] − centers[k, d])²`` (first minimum); thread ``t``: point ``t``.

    points: (P, D), centers: (K, D) float64; labels: (P,) int64 written in full::

        best, arg = +inf, 0
        for k in 0..K−1:
            d2 = Σ_{d = 0..D−1} (points[p, d] − centers[k, d])²     (in this order)
            if d2 < best:  best, arg = d2, k

    A point whose distances are all NaN gets label 0.
    """
    n_points, dims = points.shape
    n_centers = centers.shape[0]
    for p in range(cuda.grid(1), n_points, cuda.gridsize(1)):
        best = math.inf
        arg = 0
        for k in range(n_centers):
            d2 = 0.0
            for d in range(dims):
                diff = points[p, d] - centers[k, d]
                d2 += diff * diff
            if d2 < best:
                best = d2
                arg = k
        labels[p] = arg


_kmeans_assign = cuda.jit(cache=True)(_kmeans_assign_kernel)


def kmeans_assign(points, centers):
    """Nearest-centre labels (int64, shape ``(P,)``) for ``points: (P, D)`` and ``centers: (K, D)``.

    Same contract and errors as :func:`kernels.cpu.kmeans.kmeans_assign`.
    """
    xp = array_module()
    pts = xp.ascontiguousarray(points, dtype=np.float64)
    ctr = xp.ascontiguousarray(centers, dtype=np.float64)
    if pts.ndim != 2 or ctr.ndim != 2 or pts.shape[1] != ctr.shape[1]:
        raise ValueError(f"kmeans_assign: expected points (P, D) and centers (K, D), got {pts.shape} and {ctr.shape}")
    if ctr.shape[0] == 0 and pts.shape[0]:
        raise ValueError("kmeans_assign: centers is empty (K = 0); expected at least one centre")
    labels = xp.empty(pts.shape[0], dtype=np.int64)
    launch(_kmeans_assign, pts.shape[0], pts, ctr, labels)
    return labels
