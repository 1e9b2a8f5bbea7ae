"""The fast paths of the detection code give the results of the plain paths they replace."""

from __future__ import annotations

import numpy as np
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.ops import batched_nms, nms
from minitorchseg.ops.boxes import PER_CATEGORY_MIN_COORDINATES
from tests.strategies import dtypes, seeds, settings_fast


def _coordinate_trick(boxes, scores, idxs, threshold):
    """torchvision's ``_batched_nms_coordinate_trick`` on our ``nms`` (coordinates >= 0: the same shift)."""
    offsets = idxs.astype(boxes.dtype) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, threshold)


@settings_fast
@given(seed=seeds, extra=st.integers(1, 600), dtype=dtypes, categories=st.integers(1, 6),
       threshold=st.sampled_from([0.0, 0.3, 0.5, 0.7]))
def test_batched_nms_per_category_path_equals_the_coordinate_trick_and_torchvision(seed, extra, dtype, categories,
                                                                                   threshold):
    # Above 4000 coordinates batched_nms runs one NMS per category (as torchvision's CPU path does).
    # Integer coordinates and distinct scores: every IoU is exact in both dtypes and the order has no ties.
    n = PER_CATEGORY_MIN_COORDINATES // 4 + extra
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(1, 40, (n, 2))], axis=1).astype(dtype)
    scores = rng.permutation(n).astype(dtype)
    idxs = rng.integers(0, categories, n)
    keep = batched_nms(boxes, scores, idxs, threshold)
    np.testing.assert_array_equal(keep, _coordinate_trick(boxes, scores, idxs, threshold))
    theirs = torchvision.ops.batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(idxs), threshold)
    np.testing.assert_array_equal(keep, theirs.numpy())


def test_batched_nms_per_category_path_orders_equal_scores_by_index():
    # Equal scores: lower index first, across categories, as the single greedy pass over a stable sort.
    n = PER_CATEGORY_MIN_COORDINATES // 4 + 10
    x = np.arange(n, dtype=np.float64) * 10.0
    boxes = np.stack([x, x, x + 5.0, x + 5.0], axis=1)  # disjoint: nothing is suppressed
    scores = np.repeat(np.arange(n // 2 + 1, dtype=np.float64), 2)[:n][::-1].copy()
    idxs = np.arange(n) % 3
    keep = batched_nms(boxes, scores, idxs, 0.5)
    np.testing.assert_array_equal(keep, np.argsort(-scores, kind="stable"))
