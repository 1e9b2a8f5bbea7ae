"""minitorchseg.kernels.cpu ``nms`` against torchvision 0.29.1 (docs/semantics.md#nms): keep lists equal, exactly."""

import numpy as np
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import nms
from tests.strategies import dtypes, seeds, settings_fast


def random_boxes(seed, n, dtype, integer=False, zero_area=False):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20, (n, 2))
    wh = rng.uniform(0, 10, (n, 2))
    if zero_area:
        wh[: n // 3, rng.integers(0, 2)] = 0.0
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return (np.round(boxes) if integer else boxes).astype(dtype)


@settings_fast
@given(seed=seeds, n=st.integers(0, 40), dtype=dtypes, tied_scores=st.booleans(), integer=st.booleans(),
       zero_area=st.booleans(), threshold=st.sampled_from([0.0, 0.2, 0.5, 0.7, 0.99, 1.0]))
def test_nms_matches_torchvision(seed, n, dtype, tied_scores, integer, zero_area, threshold):
    boxes = random_boxes(seed, n, dtype, integer, zero_area)
    rng = np.random.default_rng(seed + 1)
    scores = (rng.integers(0, 4, n) if tied_scores else rng.random(n)).astype(dtype)
    keep = nms(boxes, scores, threshold)
    expected = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), threshold).numpy()
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, expected)


def test_nms_hand_example():
    """Three boxes: b1 overlaps b0 with IoU 81/119 ≈ 0.68; b2 is far away.

    Order by score: b1 (0.9), b0 (0.8), b2 (0.7). At 0.5 b1 suppresses b0;
    at 0.7 nothing is suppressed.
    """
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float64)
    scores = np.array([0.8, 0.9, 0.7])
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.7), [1, 0, 2])


def test_nms_edge_rules():
    """Ties keep index order; identical boxes survive 1.0 but not 0.99; zero-area boxes never suppress;
    touching boxes (intersection 0) survive a threshold of 0; NaN scores rank first, as torch sorts them."""
    same = np.array([[0, 0, 2, 2]] * 3, dtype=np.float32)
    tied = np.zeros(3, dtype=np.float32)
    np.testing.assert_array_equal(nms(same, tied, 1.0), [0, 1, 2])
    np.testing.assert_array_equal(nms(same, tied, 0.99), [0])
    points = np.array([[1, 1, 1, 1]] * 2, dtype=np.float64)
    np.testing.assert_array_equal(nms(points, np.array([0.5, 0.6]), 0.0), [1, 0])
    touching = np.array([[0, 0, 1, 1], [1, 0, 2, 1]], dtype=np.float64)
    np.testing.assert_array_equal(nms(touching, np.array([0.5, 0.6]), 0.0), [1, 0])
    far = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [10, 10, 11, 11], [20, 20, 21, 21]], dtype=np.float64)
    scores = np.array([0.5, np.nan, np.inf, np.nan])
    expected = torchvision.ops.nms(torch.tensor(far), torch.tensor(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(far, scores, 0.5), expected)
    np.testing.assert_array_equal(expected, [1, 3, 2, 0])


def test_nms_empty():
    keep = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert keep.dtype == np.int64 and keep.shape == (0,)
