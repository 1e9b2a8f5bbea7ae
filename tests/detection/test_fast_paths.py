"""The fast paths of the detection code give the results of the plain paths they replace."""

from __future__ import annotations

import numpy as np
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection.transform import GeneralizedRCNNTransform as TvTransform

import minitorchseg as mts
from minitorchseg import functional as F
from minitorchseg.models.detection import GeneralizedRCNNTransform
from minitorchseg.models.detection.roi_heads import paste_masks_in_image, resize_bilinear_host
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


@settings_fast
@given(seed=seeds, dtype=dtypes, side=st.integers(20, 70), extra=st.integers(0, 30), training=st.booleans(),
       mask_dtype=st.sampled_from([np.uint8, np.bool_]))
def test_resize_at_scale_one_keeps_everything_as_the_interpolation_would(seed, dtype, side, extra, training,
                                                                         mask_dtype):
    # min_size = the short side and max_size >= the long side: scale 1, the image and targets are kept as they
    # are. The same images through fixed_size (an explicit interpolation to the same size) and through
    # torchvision's transform (which always interpolates) give exactly the same arrays.
    rng = np.random.default_rng(seed)
    h, w = side, side + extra
    image = rng.uniform(0, 1, (3, h, w)).astype(dtype)
    xy = rng.uniform(0, [w / 2, h / 2], (3, 2))
    target = {"boxes": np.concatenate([xy, xy + rng.uniform(1, 10, (3, 2))], axis=1).astype(dtype),
              "labels": np.array([1, 2, 1]), "masks": (rng.uniform(size=(3, h, w)) < 0.4).astype(mask_dtype)}
    kw = dict(min_size=h, max_size=w + 5, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    runs = []
    for extra_kw in ({}, {"fixed_size": (w, h)}):
        transform = GeneralizedRCNNTransform(**kw, **extra_kw).train(training)
        images, targets = transform([mts.tensor(image)], [{k: mts.tensor(v) for k, v in target.items()}])
        runs.append((images.tensors.numpy(), {k: v.numpy() for k, v in targets[0].items()}))
    theirs = TvTransform(**kw).train(training)
    images, targets = theirs([torch.tensor(image)], [{k: torch.tensor(v) for k, v in target.items()}])
    runs.append((images.tensors.numpy(), {k: v.numpy() for k, v in targets[0].items()}))
    fast = runs[0]
    assert fast[1]["masks"].dtype == np.uint8
    for other in runs[1:]:
        np.testing.assert_array_equal(fast[0], other[0])
        for key in ("boxes", "labels", "masks"):
            assert fast[1][key].dtype == other[1][key].dtype, key
            np.testing.assert_array_equal(fast[1][key], other[1][key])


@settings_fast
@given(seed=seeds, dtype=dtypes, size=st.integers(1, 32), out_h=st.integers(1, 70), out_w=st.integers(1, 70))
def test_host_bilinear_resize_is_the_kernels_bit_for_bit(seed, dtype, size, out_h, out_w):
    # paste_mask_in_image resizes each mask with resize_bilinear_host on the CPU instead of F.interpolate.
    plane = np.random.default_rng(seed).uniform(-2, 2, (size, size + 2)).astype(dtype)
    expected = F.interpolate(mts.tensor(plane[None, None]), size=(out_h, out_w), mode="bilinear",
                             align_corners=False).numpy()[0, 0]
    got = resize_bilinear_host(plane, out_h, out_w)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_pasted_masks_equal_torchvisions_paste():
    from torchvision.models.detection.roi_heads import paste_masks_in_image as tv_paste

    rng = np.random.default_rng(5)
    masks = rng.uniform(size=(30, 1, 28, 28)).astype(np.float32)
    xy = rng.uniform(-10, 90, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (30, 2))], axis=1).astype(np.float32)
    ours = paste_masks_in_image(mts.tensor(masks), boxes, (96, 100)).numpy()
    theirs = tv_paste(torch.tensor(masks), torch.tensor(boxes), (96, 100)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
