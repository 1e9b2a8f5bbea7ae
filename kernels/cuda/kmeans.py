"""The K-means assignment step on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.kmeans`.

Shapes: ``points: (P, D)``, ``centers: (K, D)`` (read as float64); result
``labels: (P,)`` int64 in ``[0, K)``. One thread per point (grid-stride loop): it
computes its ``K`` squared distances and keeps the first minimum with the helper the
CPU compiles too (:func:`kernels.shared.kmeans.nearest_center`), so labels are identical.
Each thread writes only its own label: no atomics.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..shared.kmeans import check_shapes, nearest_center
from ._launch import array_module, launch

__all__ = ["kmeans_assign"]


def _kmeans_assign_kernel(points, centers, labels):
    """``labels[p] = argmin_k Σ_d (points[p, d] − centers[k, d])²`` (first minimum); thread ``t``: point ``t``.

    points: (P, D), centers: (K, D) float64; labels: (P,) int64 written in full by
    :func:`kernels.shared.kmeans.nearest_center` (the CPU's loop, compiled as a
    device function). A point whose distances are all NaN gets label 0.
    """
    for p in range(cuda.grid(1), points.shape[0], cuda.gridsize(1)):
        labels[p] = _nearest_center(points, p, centers)


_nearest_center = cuda.jit(device=True)(nearest_center)
_kmeans_assign = cuda.jit(cache=True)(_kmeans_assign_kernel)


def kmeans_assign(points, centers):
    """Nearest-centre labels (int64, shape ``(P,)``) for ``points: (P, D)`` and ``centers: (K, D)``.

    Same contract and errors as :func:`kernels.cpu.kmeans.kmeans_assign`.
    """
    xp = array_module()
    pts = xp.ascontiguousarray(points, dtype=np.float64)
    ctr = xp.ascontiguousarray(centers, dtype=np.float64)
    check_shapes(pts, ctr)
    labels = xp.empty(pts.shape[0], dtype=np.int64)
    launch(_kmeans_assign, pts.shape[0], pts, ctr, labels)
    return labels
