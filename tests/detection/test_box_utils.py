"""BoxCoder, Matcher and BalancedPositiveNegativeSampler against torchvision's ``models/detection/_utils.py``."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection import _utils as tv_utils

import minitorchseg as mts
from minitorchseg.models.detection import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from minitorchseg.ops import box_iou

from ..strategies import dtypes, seeds, settings_fast

# Box coding is a handful of elementwise operations in the same order as torchvision's:
# float64 agrees to rounding (~1e-15 relative, 1e-12 allowed), float32 to a few ulps.
CODING_TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}


def random_boxes(seed: int, n: int, dtype=np.float64, extent: float = 100.0) -> np.ndarray:
    """``n`` boxes with corners in [0, extent] and sides in [1, extent/2] (positive widths, as detection needs)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, extent / 2, size=(n, 2))
    wh = rng.uniform(1, extent / 2, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def test_encode_decode_literal_example():
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    proposal = np.array([[0.0, 0.0, 10.0, 10.0]])
    gt = np.array([[1.0, 2.0, 11.0, 14.0]])
    # centres (5, 5) and (6, 8); sizes 10×10 and 10×12
    np.testing.assert_allclose(coder.encode_single(gt, proposal), [[0.1, 0.3, 0.0, math.log(1.2)]], rtol=1e-15)
    np.testing.assert_allclose(coder.decode_single(np.array([[0.1, 0.3, 0.0, math.log(1.2)]]), proposal), gt,
                               rtol=1e-14)


@settings_fast
@given(seed=seeds, dtype=dtypes, weights=st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
def test_encode_matches_torchvision(seed, dtype, weights):
    gt, proposals = random_boxes(seed, 7, dtype), random_boxes(seed + 1, 7, dtype)
    ours = BoxCoder(weights).encode_single(mts.tensor(gt), mts.tensor(proposals))
    theirs = tv_utils.BoxCoder(weights).encode_single(torch.tensor(gt), torch.tensor(proposals))
    assert isinstance(ours, mts.Tensor) and ours.dtype == np.dtype(dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **CODING_TOL[np.dtype(dtype)])
    # the per-image list form splits one computation
    split = BoxCoder(weights).encode([gt[:3], gt[3:]], [proposals[:3], proposals[3:]])
    assert [s.shape for s in split] == [(3, 4), (4, 4)]
    np.testing.assert_array_equal(np.concatenate(split), BoxCoder(weights).encode_single(gt, proposals))


@settings_fast
@given(seed=seeds, dtype=dtypes, classes=st.integers(1, 3),
       weights=st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
def test_decode_matches_torchvision_including_the_clamp(seed, dtype, classes, weights):
    boxes = random_boxes(seed, 6, dtype)
    codes = (np.random.default_rng(seed + 2).standard_normal((6, 4 * classes)) * 2).astype(dtype)
    codes[0, 2] = 60.0  # dw/ww far above log(1000/16): clamped, no overflow
    coder, tv_coder = BoxCoder(weights), tv_utils.BoxCoder(weights)
    ours = coder.decode_single(mts.tensor(codes), mts.tensor(boxes))
    theirs = tv_coder.decode_single(torch.tensor(codes), torch.tensor(boxes))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **CODING_TOL[np.dtype(dtype)])
    assert np.isfinite(ours.numpy()).all()
    listed = coder.decode(mts.tensor(codes), [mts.tensor(boxes[:2]), mts.tensor(boxes[2:])])
    tv_listed = tv_coder.decode(torch.tensor(codes), [torch.tensor(boxes[:2]), torch.tensor(boxes[2:])])
    assert listed.shape == tuple(tv_listed.shape) == (6, classes, 4)
    np.testing.assert_allclose(listed.numpy(), tv_listed.numpy(), **CODING_TOL[np.dtype(dtype)])


@settings_fast
@given(seed=seeds)
def test_decode_inverts_encode(seed):
    gt, proposals = random_boxes(seed, 9), random_boxes(seed + 1, 9)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    np.testing.assert_allclose(coder.decode_single(coder.encode_single(gt, proposals), proposals), gt,
                               rtol=1e-12, atol=1e-12)


def test_box_coder_bad_input():
    with pytest.raises(ValueError, match="weights"):
        BoxCoder((1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="reference_boxes"):
        BoxCoder((1, 1, 1, 1)).encode_single(np.zeros((3, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="rel_codes"):
        BoxCoder((1, 1, 1, 1)).decode_single(np.zeros((3, 6)), np.ones((3, 4)))
    with pytest.raises(TypeError, match="boxes"):
        BoxCoder((1, 1, 1, 1)).decode(np.zeros((3, 4)), np.ones((3, 4)))


def _iou_with_ties(seed: int, m: int, n: int) -> np.ndarray:
    """IoU of m ground-truth boxes with n predictions, where some predictions repeat (exact ties)."""
    gt = random_boxes(seed, m)
    predictions = random_boxes(seed + 1, n)
    predictions[n // 2:] = predictions[: n - n // 2]  # duplicates: tied best matches
    gt[-1] = gt[0]  # a duplicated ground truth: ties along the other axis
    return box_iou(gt, predictions)


@settings_fast
@given(seed=seeds, m=st.integers(1, 5), n=st.integers(1, 30), allow_low=st.booleans(),
       thresholds=st.sampled_from([(0.7, 0.3), (0.5, 0.5), (0.4, 0.1)]))
def test_matcher_matches_torchvision_exactly(seed, m, n, allow_low, thresholds):
    iou = _iou_with_ties(seed, m, n)
    ours = Matcher(*thresholds, allow_low_quality_matches=allow_low)(mts.tensor(iou))
    theirs = tv_utils.Matcher(*thresholds, allow_low_quality_matches=allow_low)(torch.tensor(iou))
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_matcher_literal_example():
    iou = np.array([[0.9, 0.5, 0.1, 0.2], [0.1, 0.6, 0.25, 0.2]])
    # best gt per column: 0 (0.9), 1 (0.6), 1 (0.25), 0 (0.2, first on the tie)
    np.testing.assert_array_equal(Matcher(0.7, 0.3)(iou), [0, -2, -1, -1])
    # gt 1's best prediction is column 1 (0.6): restored; gt 0's is column 0, already matched
    np.testing.assert_array_equal(Matcher(0.7, 0.3, True)(iou), [0, 1, -1, -1])


def test_matcher_empty_and_bad_thresholds():
    with pytest.raises(ValueError, match="No ground-truth boxes"):
        Matcher(0.7, 0.3)(np.zeros((0, 5)))
    with pytest.raises(ValueError, match="No proposal boxes"):
        Matcher(0.7, 0.3)(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="low_threshold"):
        Matcher(0.3, 0.7)


class Permutations:
    """``n → permutation of range(n)`` from a seeded generator: the same sequence for torch and for us."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.sizes = []

    def __call__(self, n: int) -> np.ndarray:
        self.sizes.append(n)
        return self.rng.permutation(n)


@settings_fast
@given(seed=seeds, images=st.integers(1, 3), batch=st.sampled_from([4, 16, 256]),
       fraction=st.sampled_from([0.25, 0.5]))
def test_sampler_matches_torchvision_with_the_same_permutations(seed, images, batch, fraction):
    rng = np.random.default_rng(seed)
    matched = [rng.integers(-2, 4, size=int(rng.integers(0, 60))) for _ in range(images)]
    theirs_perm, ours_perm = Permutations(seed), Permutations(seed)
    original = torch.randperm

    def replayed(n, *args, **kwargs):
        return torch.as_tensor(theirs_perm(n), dtype=torch.int64)

    torch.randperm = replayed
    try:
        tv_pos, tv_neg = tv_utils.BalancedPositiveNegativeSampler(batch, fraction)([torch.tensor(m) for m in matched])
    finally:
        torch.randperm = original
    pos, neg = BalancedPositiveNegativeSampler(batch, fraction, generator=ours_perm)([mts.tensor(m) for m in matched])
    assert ours_perm.sizes == theirs_perm.sizes  # the same draws, in the same order
    for p, n, tp, tn in zip(pos, neg, tv_pos, tv_neg):
        assert p.dtype == np.uint8
        np.testing.assert_array_equal(p.numpy(), tp.numpy())
        np.testing.assert_array_equal(n.numpy(), tn.numpy())


def test_sampler_counts_and_numpy_generator():
    matched = np.array([1, 2, 0, 0, 0, -1, 3, 0, -2, 0])  # 3 positives, 5 negatives
    pos, neg = BalancedPositiveNegativeSampler(4, 0.5, generator=np.random.default_rng(0))([matched])
    assert pos[0].sum() == 2 and neg[0].sum() == 2
    assert set(np.nonzero(pos[0])[0]) <= {0, 1, 6} and set(np.nonzero(neg[0])[0]) <= {2, 3, 4, 7, 9}
    pos, neg = BalancedPositiveNegativeSampler(100, 0.5)([matched])  # everything fits: deterministic
    np.testing.assert_array_equal(pos[0], matched >= 1)
    np.testing.assert_array_equal(neg[0], matched == 0)
    with pytest.raises(ValueError, match="positive_fraction"):
        BalancedPositiveNegativeSampler(4, 1.5)
    with pytest.raises(TypeError, match="generator"):
        BalancedPositiveNegativeSampler(4, 0.5, generator=3)
