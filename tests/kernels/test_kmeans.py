"""minitorchseg.kernels.cpu ``kmeans_assign`` against a brute-force NumPy argmin."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import kmeans_assign
from tests.strategies import dtypes, seeds, settings_fast


def brute_force(points, centers):
    """``argmin_k Σ_d (p_d − c_kd)²`` with the sum taken over d in order, in float64; ties → lowest k."""
    p = points.astype(np.float64)[:, None, :]
    c = centers.astype(np.float64)[None, :, :]
    d2 = np.zeros((points.shape[0], centers.shape[0]))
    for d in range(points.shape[1]):
        d2 = d2 + (p[..., d] - c[..., d]) ** 2
    return np.argmin(d2, axis=1)


@settings_fast
@given(seed=seeds, n=st.integers(0, 200), k=st.integers(1, 8), dims=st.integers(1, 5), dtype=dtypes,
       integer=st.booleans())
def test_kmeans_assign_matches_brute_force(seed, n, k, dims, dtype, integer):
    rng = np.random.default_rng(seed)
    if integer:  # small integers: many exact ties between centres
        points = rng.integers(0, 4, (n, dims)).astype(dtype)
        centers = rng.integers(0, 4, (k, dims)).astype(dtype)
    else:
        points = rng.standard_normal((n, dims)).astype(dtype)
        centers = rng.standard_normal((k, dims)).astype(dtype)
    labels = kmeans_assign(points, centers)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    np.testing.assert_array_equal(labels, brute_force(points, centers))


def test_kmeans_assign_hand_example():
    """Centres (0, 0) and (4, 0): (1, 1) → 0, (3, 0) → 1, (2, 5) is equidistant → the lower index 0."""
    centers = np.array([[0.0, 0.0], [4.0, 0.0]])
    points = np.array([[1.0, 1.0], [3.0, 0.0], [2.0, 5.0]])
    np.testing.assert_array_equal(kmeans_assign(points, centers), [0, 1, 0])


def test_kmeans_assign_bad_shapes():
    with pytest.raises(ValueError, match="centers is empty"):
        kmeans_assign(np.zeros((3, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"points \(P, D\) and centers \(K, D\)"):
        kmeans_assign(np.zeros((3, 2)), np.zeros((2, 3)))
