"""GeneralizedRCNNTransform against torchvision's ``models/detection/transform.py`` on the same inputs."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection.transform import GeneralizedRCNNTransform as TvTransform

import minitorchseg as mts
from minitorchseg.models.detection import GeneralizedRCNNTransform, ImageList

from ..strategies import TOL, dtypes, seeds, settings_fast

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def resize_tol(dtype, reference: np.ndarray) -> dict:
    """Tolerance of a bilinear resize. float64: TOL. float32: torch's vectorised kernel is not bit-exact and
    its error scales with the spread of the values it blends (measured up to 3.7e-6 per unit of spread on
    random data), so atol = 5e-6 · (max − min) of the normalised batch (≈ 4.8 here, from ImageNet mean/std)."""
    if np.dtype(dtype) == np.float64:
        return TOL[np.dtype(dtype)]
    return dict(rtol=1e-5, atol=5e-6 * float(reference.max() - reference.min()))


def _sample(seed: int, dtype, sizes):
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for h, w in sizes:
        images.append(rng.uniform(0, 1, size=(3, h, w)).astype(dtype))
        k = int(rng.integers(0, 4))
        xy = rng.uniform(0, [w / 2, h / 2], size=(k, 2))
        wh = rng.uniform(1, [w / 2, h / 2], size=(k, 2))
        targets.append(dict(
            boxes=np.concatenate([xy, xy + wh], axis=1).astype(dtype),
            labels=rng.integers(1, 5, size=k),
            masks=(rng.uniform(size=(k, h, w)) < 0.3).astype(np.uint8),
        ))
    return images, targets


def _both(images, targets, training, **kw):
    ours = GeneralizedRCNNTransform(**kw)
    theirs = TvTransform(**kw)
    ours.train(training)
    theirs.train(training)
    mine = ours([mts.tensor(i) for i in images],
                None if targets is None else [{k: mts.tensor(v) for k, v in t.items()} for t in targets])
    ref = theirs([torch.tensor(i) for i in images],
                 None if targets is None else [{k: torch.tensor(v) for k, v in t.items()} for t in targets])
    return mine, ref


SIZES = st.lists(st.tuples(st.integers(20, 90), st.integers(20, 90)), min_size=1, max_size=3)


@settings_fast
@given(seed=seeds, dtype=dtypes, sizes=SIZES, training=st.booleans(),
       limits=st.sampled_from([(64, 100), (48, 60), (100, 1333)]), divisible=st.sampled_from([32, 16]))
def test_transform_equals_torchvision(seed, dtype, sizes, training, limits, divisible):
    images, targets = _sample(seed, dtype, sizes)
    kw = dict(min_size=limits[0], max_size=limits[1], image_mean=MEAN, image_std=STD, size_divisible=divisible)
    (batch, out_targets), (tv_batch, tv_targets) = _both(images, targets, training, **kw)
    assert isinstance(batch, ImageList)
    assert batch.image_sizes == tv_batch.image_sizes
    assert batch.tensors.shape == tuple(tv_batch.tensors.shape) and batch.tensors.dtype == np.dtype(dtype)
    expected = tv_batch.tensors.numpy()
    np.testing.assert_allclose(batch.tensors.numpy(), expected, **resize_tol(dtype, expected))
    for t, tv in zip(out_targets, tv_targets):
        np.testing.assert_array_equal(t["boxes"].numpy(), tv["boxes"].numpy())
        assert t["masks"].dtype == np.uint8 and t["masks"].shape == tuple(tv["masks"].shape)
        np.testing.assert_array_equal(t["masks"].numpy(), tv["masks"].numpy())
        np.testing.assert_array_equal(t["labels"].numpy(), tv["labels"].numpy())
    # the caller's targets are not modified
    assert all(t["boxes"] is not o["boxes"] for t, o in zip(out_targets, targets))


@settings_fast
@given(seed=seeds, sizes=SIZES)
def test_transform_eval_without_targets_and_fixed_size(seed, sizes):
    images, _ = _sample(seed, np.float64, sizes)
    for kw in (dict(min_size=50, max_size=80), dict(min_size=50, max_size=80, fixed_size=(40, 30))):
        (batch, none), (tv_batch, _) = _both(images, None, False, image_mean=MEAN, image_std=STD, **kw)
        assert none is None and batch.image_sizes == tv_batch.image_sizes
        np.testing.assert_allclose(batch.tensors.numpy(), tv_batch.tensors.numpy(), **TOL[np.dtype(np.float64)])


@settings_fast
@given(seed=seeds, dtype=dtypes)
def test_postprocess_maps_boxes_back(seed, dtype):
    rng = np.random.default_rng(seed)
    boxes = rng.uniform(0, 60, size=(5, 4)).astype(dtype)
    shapes, originals = [(64, 96)], [(41, 61)]
    ours = GeneralizedRCNNTransform(64, 100, MEAN, STD).eval()
    theirs = TvTransform(64, 100, MEAN, STD).eval()
    mine = ours.postprocess([{"boxes": mts.tensor(boxes)}], shapes, originals)
    ref = theirs.postprocess([{"boxes": torch.tensor(boxes)}], shapes, originals)
    np.testing.assert_array_equal(mine[0]["boxes"].numpy(), ref[0]["boxes"].numpy())


@settings_fast
@given(seed=seeds)
def test_postprocess_pastes_masks_as_torchvision(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 40, size=(3, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 30, size=(3, 2))], axis=1)
    masks = rng.uniform(size=(3, 1, 28, 28))
    shapes, originals = [(64, 96)], [(41, 61)]
    ours = GeneralizedRCNNTransform(64, 100, MEAN, STD).eval()
    theirs = TvTransform(64, 100, MEAN, STD).eval()
    mine = ours.postprocess([{"boxes": mts.tensor(boxes), "masks": mts.tensor(masks)}], shapes, originals)
    ref = theirs.postprocess([{"boxes": torch.tensor(boxes), "masks": torch.tensor(masks)}], shapes, originals)
    assert mine[0]["masks"].shape == tuple(ref[0]["masks"].shape) == (3, 1, 41, 61)
    np.testing.assert_allclose(mine[0]["masks"].numpy(), ref[0]["masks"].numpy(), **TOL[np.dtype(np.float64)])


def test_resize_literal_and_padding():
    transform = GeneralizedRCNNTransform(64, 100, [0.0], [1.0]).eval()
    batch, _ = transform([mts.ones((1, 30, 45)), mts.ones((1, 20, 40))])
    # 30×45: s = min(64/30, 100/45) = 2.133… → 64 × 96; 20×40: s = min(3.2, 2.5) = 2.5 → 50 × 100
    assert batch.image_sizes == [(64, 96), (50, 100)]
    assert batch.tensors.shape == (2, 1, 64, 128)  # the largest sides 64 and 100, rounded up to multiples of 32
    second = batch.tensors.numpy()[1, 0]
    assert second[50:, :].sum() == 0 and second[:, 100:].sum() == 0 and second[:50, :100].min() == 1


def test_transform_bad_input():
    transform = GeneralizedRCNNTransform(64, 100, MEAN, STD)
    with pytest.raises(ValueError, match="3d tensors"):
        transform([mts.zeros((1, 3, 8, 8))])
    with pytest.raises(TypeError, match="floating type"):
        transform([mts.tensor(np.zeros((3, 8, 8), dtype=np.int64))])
    with pytest.raises(ValueError, match="image 1 has 4 channels"):
        transform([mts.zeros((3, 8, 8)), mts.zeros((4, 8, 8))])
    with pytest.raises(ValueError, match="targets"):
        transform([mts.zeros((3, 8, 8))], [])
