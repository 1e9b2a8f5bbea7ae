"""minitorchseg.kmeans: Lloyd's algorithm with the Numba assignment step."""

import numpy as np
import pytest

import minitorchseg as mts
from minitorchseg.kernels.cpu import kmeans_assign
from minitorchseg.kmeans import _update_centers, kmeans


def _blobs(seed=0, n=60):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.2, 0.9, 1.0]])
    truth = np.repeat(np.arange(3), n)
    return means[truth] + rng.normal(0, 0.05, (3 * n, 3)), truth


def test_kmeans_hand_example():
    """Points 0, 1, 10, 11 on a line, k = 2: the two pairs, centres 0.5 and 10.5."""
    labels, centers = kmeans(np.array([[0.0], [1.0], [10.0], [11.0]]), 2, seed=0)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    np.testing.assert_array_equal(np.sort(centers[:, 0]), [0.5, 10.5])


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_kmeans_recovers_separated_blobs_and_is_a_fixed_point(init):
    points, truth = _blobs()
    labels, centers = kmeans(points, 3, iters=50, seed=1, init=init)
    assert labels.dtype == np.int64 and centers.shape == (3, 3)
    # the same partition up to a renaming of the clusters
    pairs = {(t, lab) for t, lab in zip(truth, labels)}
    assert len(pairs) == 3 and len({lab for _, lab in pairs}) == 3
    np.testing.assert_array_equal(labels, kmeans_assign(points, centers))
    for j in range(3):
        np.testing.assert_allclose(centers[j], points[labels == j].mean(axis=0), rtol=1e-12, atol=1e-12)


def test_kmeans_is_reproducible_and_accepts_tensors():
    points, _ = _blobs(3)
    a = kmeans(points, 4, seed=7)
    b = kmeans(mts.tensor(points), 4, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    labels, centers = kmeans(points, 4, iters=0, seed=7)
    np.testing.assert_array_equal(labels, kmeans_assign(points, centers))


def test_empty_cluster_moves_to_the_worst_served_point():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 0.0]])
    centers = np.array([[0.0, 0.0], [100.0, 100.0]])
    new = _update_centers(points, np.zeros(3, np.int64), centers)
    np.testing.assert_array_equal(new[0], [10.0 / 3, 0.0])
    np.testing.assert_array_equal(new[1], [9.0, 0.0])  # farthest from the mean of cluster 0


def test_kmeans_with_fewer_distinct_points_than_clusters():
    labels, centers = kmeans(np.ones((6, 3)), 3)
    np.testing.assert_array_equal(labels, 0)
    np.testing.assert_array_equal(centers, 1.0)


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((np.zeros(5), 2), {}, ValueError, r"kmeans: points: expected shape \(P, D\), got \(5,\)"),
    ((np.zeros((5, 2)), 0), {}, ValueError, "kmeans: k: expected 1 ≤ k ≤ 5"),
    ((np.zeros((5, 2)), 6), {}, ValueError, "kmeans: k: expected 1 ≤ k ≤ 5"),
    ((np.zeros((5, 2)), 2.0), {}, TypeError, "kmeans: k: expected an int, got 2.0"),
    ((np.zeros((5, 2)), 2), {"iters": -1}, ValueError, "kmeans: iters: expected ≥ 0"),
    ((np.zeros((5, 2)), 2), {"init": "best"}, ValueError, "kmeans: init: expected 'kmeans\\+\\+' or 'random'"),
    ((np.full((5, 2), np.nan), 2), {}, ValueError, "kmeans: points: expected finite values"),
    ((np.array([["a", "b"]]), 1), {}, TypeError, "kmeans: points: expected numbers"),
])
def test_kmeans_bad_inputs(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        kmeans(*args, **kwargs)
