"""minitorchseg.ops through autograd: against torchvision, gradcheck, box formats, and every bad input.

The kernels themselves are compared bit for bit in tests/kernels/test_roi_align.py
and test_roi_pool.py; here the differentiable ops, the box utilities and the
argument checks are tested as a user calls them.
"""

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
from minitorchseg.autograd import gradcheck
from minitorchseg.ops import (
    RoIAlign,
    RoIPool,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
    roi_align,
    roi_pool,
)

from .kernels.roi_cases import random_rois
from .strategies import distinct, dtypes, randn, seeds, settings_fast
from .torch_ref import check_against_torch


def _boxes_per_image(rois: np.ndarray, n_images: int) -> list[np.ndarray]:
    return [rois[rois[:, 0] == i, 1:] for i in range(n_images)]


@settings_fast
@given(seed=seeds, dtype=dtypes, sampling_ratio=st.sampled_from([-1, 0, 2]), aligned=st.booleans(),
       scale=st.sampled_from([1.0, 0.5, 0.3]))
def test_roi_align_autograd_matches_torchvision(seed, dtype, sampling_ratio, aligned, scale):
    x = randn(seed, (2, 3, 7, 6), dtype)
    rois = random_rois(seed + 1, 2, 4, 7, 6, scale, dtype)
    check_against_torch(
        lambda t, b: roi_align(t, b, (3, 2), scale, sampling_ratio, aligned),
        lambda t, b: torchvision.ops.roi_align(t, b, (3, 2), scale, sampling_ratio, aligned),
        [x, rois],
    )


@settings_fast
@given(seed=seeds, dtype=dtypes, scale=st.sampled_from([1.0, 0.5, 0.3]))
def test_roi_pool_autograd_matches_torchvision(seed, dtype, scale):
    x = distinct(seed, (2, 3, 7, 6), dtype)
    rois = random_rois(seed + 1, 2, 4, 7, 6, scale, dtype, half_integers=True)
    check_against_torch(
        lambda t, b: roi_pool(t, b, (2, 3), scale),
        lambda t, b: torchvision.ops.roi_pool(t, b, (2, 3), scale),
        [x, rois],
    )


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_gradcheck(aligned, sampling_ratio):
    x = mts.tensor(randn(0, (2, 2, 5, 6)), requires_grad=True)
    boxes = mts.tensor(np.array([[0, -1.2, 0.4, 3.3, 2.9], [1, 2.2, 1.1, 7.5, 5.8], [1, 0.5, 0.5, 0.9, 0.7]]))
    assert gradcheck(lambda t: roi_align(t, boxes, (2, 3), 0.8, sampling_ratio, aligned), [x])


def test_roi_pool_gradcheck():
    x = mts.tensor(distinct(0, (2, 2, 5, 6), gap=0.1), requires_grad=True)
    boxes = mts.tensor(np.array([[0, 0, 0, 3, 2], [1, 1.5, 1, 5, 4.5], [0, 4, 3, 9, 9]]))
    assert gradcheck(lambda t: roi_pool(t, boxes, (2, 2), 1.0), [x])


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
def test_list_and_tensor_boxes_agree(op):
    fn = {"roi_align": lambda t, b: roi_align(t, b, 3, 0.5, 2, True),
          "roi_pool": lambda t, b: roi_pool(t, b, 3, 0.5)}[op]
    x = randn(3, (3, 2, 8, 8), np.float32)
    rois = random_rois(4, 2, 6, 8, 8, 0.5, np.float32)  # images 0 and 1 only: image 2 gets no boxes
    rois = rois[np.argsort(rois[:, 0], kind="stable")]
    as_tensor = fn(mts.tensor(x), mts.tensor(rois))
    as_list = fn(mts.tensor(x), [mts.tensor(b) for b in _boxes_per_image(rois, 3)])
    as_arrays = fn(mts.tensor(x), _boxes_per_image(rois, 3))
    np.testing.assert_array_equal(as_list.numpy(), as_tensor.numpy())
    np.testing.assert_array_equal(as_arrays.numpy(), as_tensor.numpy())


def test_non_contiguous_input_and_modules():
    base = randn(5, (2, 3, 6, 7), np.float64)
    x = np.swapaxes(np.swapaxes(base, 2, 3).copy(), 2, 3)  # same values, transposed strides
    rois = random_rois(6, 2, 3, 6, 7, 1.0, np.float64)
    layer = RoIAlign((2, 2), 1.0, 2, aligned=True)
    out = layer(mts.tensor(x), mts.tensor(rois))
    expected = torchvision.ops.RoIAlign((2, 2), 1.0, 2, aligned=True)(torch.tensor(base), torch.tensor(rois))
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    assert repr(layer) == "RoIAlign(output_size=(2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)"
    pooled = RoIPool(3, 0.5)(mts.tensor(x), mts.tensor(rois))
    expected = torchvision.ops.roi_pool(torch.tensor(base), torch.tensor(rois), 3, 0.5)
    np.testing.assert_array_equal(pooled.numpy(), expected.numpy())
    assert repr(RoIPool(3, 0.5)) == "RoIPool(output_size=3, spatial_scale=0.5)"


def test_roi_align_zero_boxes_gives_empty_output_and_zero_gradient():
    x = mts.tensor(randn(0, (1, 2, 4, 4)), requires_grad=True)
    out = roi_align(x, mts.tensor(np.zeros((0, 5))), 2)
    assert out.shape == (0, 2, 2, 2)
    out.backward(mts.tensor(np.zeros(out.shape)))
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)


# ----------------------------------------------------------------------------------------- bad inputs
X = np.zeros((2, 3, 5, 5))
GOOD = np.array([[0, 0, 0, 2, 2], [1, 1, 1, 4, 4]], dtype=np.float64)


def _with(row, col, value):
    rois = GOOD.copy()
    rois[row, col] = value
    return rois


BAD_INPUTS = [
    (mts.tensor(X), mts.tensor(GOOD[:, 1:]), 2, {}, ValueError,
     r"boxes: expected a Tensor\[K, 5\].*got shape \(2, 4\)"),
    (mts.tensor(X), [mts.tensor(GOOD)], 2, {}, ValueError,
     r"boxes\[0\]: expected a Tensor\[L, 4\].*got shape \(2, 5\)"),
    (mts.tensor(X), [GOOD[:, 1:]] * 3, 2, {}, ValueError, "list of 3 per-image box tensors for a batch of 2"),
    (mts.tensor(X), mts.tensor(_with(1, 0, 2)), 2, {}, ValueError, r"row 1 has batch index 2, out of range \[0, 2\)"),
    (mts.tensor(X), mts.tensor(_with(0, 0, -1)), 2, {}, ValueError, r"row 0 has batch index -1, out of range"),
    (mts.tensor(X), mts.tensor(_with(1, 0, 0.5)), 2, {}, ValueError, "row 1 has batch index 0.5, expected an integer"),
    (mts.tensor(X), mts.tensor(_with(0, 3, np.nan)), 2, {}, ValueError, "row 0 has a NaN or infinite value"),
    (mts.tensor(X), mts.tensor(_with(1, 2, np.inf)), 2, {}, ValueError, "row 1 has a NaN or infinite value"),
    (mts.tensor(X), mts.tensor(_with(1, 3, 0.5)), 2, {}, ValueError, "row 1 .* has x2 < x1 or y2 < y1"),
    (mts.tensor(X), mts.tensor(_with(0, 4, -1.0)), 2, {}, ValueError, "row 0 .* has x2 < x1 or y2 < y1"),
    (mts.tensor(X), mts.tensor(GOOD.astype(np.float32)), 2, {}, TypeError,
     "boxes: expected dtype float64 \\(the input's\\), got float32"),
    (mts.tensor(X.astype(np.int64)), mts.tensor(GOOD), 2, {}, TypeError,
     "input: expected a float32 or float64 tensor, got dtype int64"),
    (X, mts.tensor(GOOD), 2, {}, TypeError, "input: expected a Tensor, got ndarray"),
    (mts.tensor(X[0]), mts.tensor(GOOD), 2, {}, ValueError, r"input: expected a 4-D tensor \(N, C, H, W\)"),
    (mts.tensor(X), mts.tensor(GOOD), 0, {}, ValueError, "output_size: expected positive values, got 0"),
    (mts.tensor(X), mts.tensor(GOOD), (2, -1), {}, ValueError, r"output_size: expected positive values, got \(2, -1\)"),
    (mts.tensor(X), mts.tensor(GOOD), (2, 2, 2), {}, TypeError, "output_size: expected an int or a pair of ints"),
    (mts.tensor(X), mts.tensor(GOOD), 2, {"spatial_scale": -1.0}, ValueError,
     "spatial_scale: expected a finite positive number, got -1.0"),
    (mts.tensor(X), mts.tensor(GOOD), 2, {"spatial_scale": "1"}, TypeError,
     "spatial_scale: expected a positive number"),
    (mts.tensor(X), "boxes", 2, {}, TypeError, "boxes: expected a Tensor or an array, got str"),
]


@pytest.mark.parametrize("op", ["roi_align", "roi_pool"])
@pytest.mark.parametrize("x, boxes, output_size, kwargs, error, message", BAD_INPUTS)
def test_bad_inputs_are_rejected_before_any_work(op, x, boxes, output_size, kwargs, error, message):
    fn = roi_align if op == "roi_align" else roi_pool
    with pytest.raises(error, match=f"^{op}: .*{message}"):
        fn(x, boxes, output_size, **kwargs)


def test_roi_align_only_arguments_are_checked():
    with pytest.raises(TypeError, match="roi_align: sampling_ratio: expected an int, got 1.5"):
        roi_align(mts.tensor(X), mts.tensor(GOOD), 2, 1.0, 1.5)
    with pytest.raises(TypeError, match="roi_align: aligned: expected a bool, got 1"):
        roi_align(mts.tensor(X), mts.tensor(GOOD), 2, 1.0, 2, 1)


def test_box_functions_reject_bad_inputs():
    boxes = np.array([[0, 0, 1, 1], [0, 0, 2, 2.0]])
    with pytest.raises(ValueError, match=r"nms: scores: expected shape \(2,\) \(one score per box\), got \(3,\)"):
        nms(boxes, np.zeros(3), 0.5)
    with pytest.raises(TypeError, match="nms: scores: expected dtype float64 \\(the boxes'\\), got float32"):
        nms(boxes, np.zeros(2, np.float32), 0.5)
    with pytest.raises(ValueError, match=r"nms: boxes: expected shape \(N, 4\)"):
        nms(np.zeros((2, 5)), np.zeros(2), 0.5)
    with pytest.raises(TypeError, match="nms: iou_threshold: expected a number"):
        nms(boxes, np.zeros(2), None)
    with pytest.raises(ValueError, match=r"batched_nms: idxs: expected shape \(2,\)"):
        batched_nms(boxes, np.zeros(2), np.zeros(3, np.int64), 0.5)
    with pytest.raises(TypeError, match="batched_nms: idxs: expected an integer dtype, got float64"):
        batched_nms(boxes, np.zeros(2), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"box_iou: boxes2: expected shape \(\.\.\., 4\)"):
        box_iou(boxes, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="clip_boxes_to_image: size: expected \\(height, width\\)"):
        clip_boxes_to_image(boxes, 5)


# ----------------------------------------------------------------------------------------- box utilities
def _random_boxes(seed, n, dtype=np.float64):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-5, 20, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 10, (n, 2))], axis=1)
    boxes[: n // 4, 2] = boxes[: n // 4, 0]  # some zero-area boxes
    return boxes.astype(dtype)


@settings_fast
@given(seed=seeds, n=st.integers(0, 30), m=st.integers(1, 10), dtype=dtypes)
def test_box_utilities_match_torchvision(seed, n, m, dtype):
    a, b = _random_boxes(seed, n, dtype), _random_boxes(seed + 1, m, dtype)
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_array_equal(box_iou(a, b), torchvision.ops.box_iou(ta, tb).numpy())
    np.testing.assert_array_equal(box_area(a), torchvision.ops.box_area(ta).numpy())
    np.testing.assert_array_equal(clip_boxes_to_image(a, (12, 9)),
                                  torchvision.ops.clip_boxes_to_image(ta, (12, 9)).numpy())
    np.testing.assert_array_equal(remove_small_boxes(a, 1.5), torchvision.ops.remove_small_boxes(ta, 1.5).numpy())
    rng = np.random.default_rng(seed + 2)
    scores = rng.integers(0, 5, n).astype(dtype)
    idxs = rng.integers(0, 3, n)
    expected = torchvision.ops.batched_nms(ta, torch.tensor(scores), torch.tensor(idxs), 0.4).numpy()
    np.testing.assert_array_equal(batched_nms(a, scores, idxs, 0.4), expected)
    np.testing.assert_array_equal(nms(a, scores, 0.4), torchvision.ops.nms(ta, torch.tensor(scores), 0.4).numpy())


def test_box_utilities_answer_in_kind():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [10, 10, 11, 11]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    keep = nms(mts.tensor(boxes), mts.tensor(scores), 0.1)
    assert isinstance(keep, mts.Tensor) and keep.dtype == np.int64
    np.testing.assert_array_equal(keep.numpy(), [0, 2])
    keep = nms(boxes, scores, 0.1)
    assert isinstance(keep, np.ndarray)
    iou = box_iou(mts.tensor(boxes[:2]), mts.tensor(boxes[:2]))
    assert isinstance(iou, mts.Tensor)
    np.testing.assert_allclose(iou.numpy(), [[1.0, 1 / 7], [1 / 7, 1.0]], rtol=1e-6)
    assert isinstance(box_area(mts.tensor(boxes)), mts.Tensor)
    assert isinstance(clip_boxes_to_image(mts.tensor(boxes), (5, 5)), mts.Tensor)
    assert isinstance(remove_small_boxes(mts.tensor(boxes), 1.5), mts.Tensor)
    assert batched_nms(boxes[:0], scores[:0], np.zeros(0, np.int64), 0.5).shape == (0,)
