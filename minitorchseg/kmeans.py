"""K-means clustering (Lloyd's algorithm) with the assignment step as a Numba kernel.

The seed lecture's colour segmentation: every pixel is a point ``(r, g, b)``;
K-means groups them into ``k`` colours, and the label map is the segmentation.

Algorithm, for ``points: (P, D)``::

    centers = init(points, k)                      # k-means++ (default) or k random points
    labels  = assign(points, centers)              # minitorchseg.kernels.cpu.kmeans_assign (parallel over points)
    repeat up to `iters` times:
        centers[j] = mean of the points labelled j      (NumPy; empty clusters: see below)
        new = assign(points, centers)
        if new == labels: stop                     # a fixed point: nothing moves any more
        labels = new

On return ``labels`` is always the nearest-centre assignment of the returned
``centers`` (squared Euclidean distance, ties to the lowest index).

Empty clusters: a centre that lost all its points is moved onto the point that
is currently worst served (largest squared distance to its own centre; several
empty clusters take the next-worst points, distinct ones), so the next
assignment gives it at least that point. With fewer distinct points than ``k``
some clusters can stay empty; their centres are then duplicates of data points.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .backend import get_backend
from .tensor import Tensor

__all__ = ["kmeans", "kmeans_plus_plus"]


def _squared_distances(points: np.ndarray, center: np.ndarray) -> np.ndarray:
    diff = points - center
    return np.einsum("pd,pd->p", diff, diff)


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: the first centre uniformly at random, each next one a point drawn with
    probability proportional to its squared distance to the nearest centre chosen so far
    (uniformly again if every point already coincides with a centre). Returns ``(k, D)``."""
    n = points.shape[0]
    chosen = [int(rng.integers(n))]
    nearest = _squared_distances(points, points[chosen[0]])
    for _ in range(1, k):
        total = float(nearest.sum())
        if total > 0 and np.isfinite(total):
            index = int(rng.choice(n, p=nearest / total))
        else:
            index = int(rng.integers(n))
        chosen.append(index)
        nearest = np.minimum(nearest, _squared_distances(points, points[index]))
    return points[chosen].copy()


def _update_centers(points, labels, centers):
    """Means of the clusters; empty clusters moved onto the worst-served points (module docstring)."""
    k, dims = centers.shape
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, dims))
    for d in range(dims):
        sums[:, d] = np.bincount(labels, weights=points[:, d], minlength=k)
    new = centers.copy()
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled, None]
    empty = np.flatnonzero(~filled)
    if empty.size:
        served = np.einsum("pd,pd->p", points - new[labels], points - new[labels])
        worst = np.argsort(-served, kind="stable")[: empty.size]
        new[empty[: worst.size]] = points[worst]
    return new


def kmeans(points, k, iters=20, seed=0, init="kmeans++"):
    """Cluster ``points: (P, D)`` into ``k`` groups → ``(labels (P,) int64, centers (k, D) float64)``.

    Args:
        points: array or Tensor ``(P, D)`` of finite numbers (e.g. an image reshaped
            to ``(H·W, 3)``); computed in float64.
        k: number of clusters, ``1 ≤ k ≤ P``.
        iters: at most this many update/assign rounds (0: just the initial assignment).
        seed: seeds the initialisation (``numpy.random.default_rng(seed)``); same seed,
            same result.
        init: ``'kmeans++'`` (:func:`kmeans_plus_plus`) or ``'random'`` (k distinct
            random points).
    """
    op = "kmeans"
    if isinstance(points, Tensor):
        points = points.numpy()
    points = np.asarray(points)
    if points.ndim != 2:
        raise ValueError(f"{op}: points: expected shape (P, D), got {points.shape}")
    if points.dtype.kind not in "fiub":
        raise TypeError(f"{op}: points: expected numbers, got dtype {points.dtype}")
    points = np.ascontiguousarray(points, dtype=np.float64)
    if not np.isfinite(points).all():
        raise ValueError(f"{op}: points: expected finite values, got NaN or infinity")
    for name, value in (("k", k), ("iters", iters), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(f"{op}: {name}: expected an int, got {value!r}")
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"{op}: k: expected 1 ≤ k ≤ {n} (the number of points), got {k}")
    if iters < 0:
        raise ValueError(f"{op}: iters: expected ≥ 0, got {iters}")
    if init not in ("kmeans++", "random"):
        raise ValueError(f"{op}: init: expected 'kmeans++' or 'random', got {init!r}")

    assign = get_backend("cpu").kernels.kmeans_assign
    rng = np.random.default_rng(seed)
    if init == "kmeans++":
        centers = kmeans_plus_plus(points, int(k), rng)
    else:
        centers = points[rng.choice(n, size=int(k), replace=False)].copy()
    labels = assign(points, centers)
    for _ in range(iters):
        centers = _update_centers(points, labels, centers)
        new_labels = assign(points, centers)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centers
