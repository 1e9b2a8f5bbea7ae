"""MultiScaleRoIAlign and LevelMapper against torchvision's ``ops/poolers.py``: equal outputs, gradients close."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torchvision.ops import poolers as tv_poolers

import minitorchseg as mts
from minitorchseg.ops import MultiScaleRoIAlign
from minitorchseg.ops.poolers import LevelMapper, infer_scale

from ..strategies import TOL, dtypes, seeds, settings_fast
from ..torch_ref import upstream

NAMES = ["0", "1", "2", "3"]


def _boxes(seed: int, n: int, extent: float, dtype) -> np.ndarray:
    """Boxes whose sides span 2 to ~extent (log-uniform), so that every pyramid level receives some."""
    rng = np.random.default_rng(seed)
    side = np.exp(rng.uniform(np.log(2.0), np.log(extent), size=(n, 2)))
    x1 = rng.uniform(-0.1 * extent, extent - side[:, 0] / 2)
    y1 = rng.uniform(-0.1 * extent, extent - side[:, 1] / 2)
    return np.stack([x1, y1, x1 + side[:, 0], y1 + side[:, 1]], axis=1).astype(dtype)


def test_level_mapper_literal_sides():
    mapper = LevelMapper(2, 5)
    sides = [224.0, 112.0, 111.9, 448.0, 10.0, 2000.0, 0.0]
    boxes = np.array([[0.0, 0.0, s, s] for s in sides])
    np.testing.assert_array_equal(mapper([boxes]), np.array([4, 3, 2, 5, 2, 5, 2]) - 2)
    assert infer_scale((25, 30), (800, 960)) == 1 / 32


@settings_fast
@given(seed=seeds, dtype=dtypes, canonical=st.sampled_from([(224, 4), (56, 4), (40, 3)]))
def test_level_mapper_equals_torchvision(seed, dtype, canonical):
    boxes = [_boxes(seed, 20, 600.0, dtype), _boxes(seed + 1, 5, 100.0, dtype)]
    ours = LevelMapper(2, 5, *canonical)([mts.tensor(b) for b in boxes])
    theirs = tv_poolers.LevelMapper(2, 5, *canonical)([torch.tensor(b) for b in boxes])
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def _pyramid(seed: int, dtype, images: int, size: int, levels: int = 4):
    """Feature maps of strides 4, 8, 16, 32 (plus an unused 'pool' level) of a size×size batch."""
    rng = np.random.default_rng(seed)
    maps = OrderedDict()
    for k in range(levels):
        side = size // 2 ** (k + 2)
        maps[NAMES[k]] = rng.standard_normal((images, 2, side, side)).astype(dtype)
    maps["pool"] = rng.standard_normal((images, 2, 1, 1)).astype(dtype)
    return maps


def _run_both(maps, boxes, image_shapes, output_size, sampling_ratio, names, **kw):
    mine = OrderedDict((k, mts.tensor(v, requires_grad=True)) for k, v in maps.items())
    ref = OrderedDict((k, torch.tensor(v, requires_grad=True)) for k, v in maps.items())
    ours = MultiScaleRoIAlign(names, output_size, sampling_ratio, **kw)(mine, [mts.tensor(b) for b in boxes],
                                                                      image_shapes)
    theirs = torchvision.ops.MultiScaleRoIAlign(names, output_size, sampling_ratio, **kw)(
        ref, [torch.tensor(b) for b in boxes], image_shapes)
    return mine, ref, ours, theirs


@settings_fast
@given(seed=seeds, dtype=dtypes, images=st.integers(1, 2), sampling_ratio=st.sampled_from([-1, 2]),
       canonical=st.sampled_from([dict(), dict(canonical_scale=56), dict(canonical_scale=40, canonical_level=3)]),
       names=st.sampled_from([NAMES, NAMES[:1], NAMES[1:3]]))
def test_multiscale_roi_align_equals_torchvision(seed, dtype, images, sampling_ratio, canonical, names):
    size = 128
    maps = _pyramid(seed, dtype, images, size)
    boxes = [_boxes(seed + 10 + i, 6 + 3 * i, size, dtype) for i in range(images)]
    image_shapes = [(size - 3 * i, size - 5 * i) for i in range(images)]
    mine, ref, ours, theirs = _run_both(maps, boxes, image_shapes, (3, 2), sampling_ratio, names, **canonical)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())
    g = upstream(ours.shape, ours.dtype)
    ours.backward(mts.tensor(g))
    theirs.backward(torch.tensor(g))
    for k in maps:  # a pooled level without RoIs gets zeros, an unpooled map ('pool') None, as torchvision
        assert (mine[k].grad is None) == (ref[k].grad is None), f"gradient of level {k}: None or not"
        if ref[k].grad is not None:
            np.testing.assert_allclose(mine[k].grad.numpy(), ref[k].grad.numpy(), **TOL[np.dtype(dtype)],
                                       err_msg=f"gradient of level {k}")


def test_multiscale_roi_align_default_canonical_on_a_large_image():
    maps = _pyramid(0, np.float64, 1, 512)
    boxes = [_boxes(1, 40, 512.0, np.float64)]
    levels = LevelMapper(2, 5)(boxes)
    assert set(levels.tolist()) >= {0, 1, 2}  # several levels are exercised
    _, _, ours, theirs = _run_both(maps, boxes, [(512, 512)], 7, 2, NAMES)
    np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy())


@settings_fast
@given(seed=seeds, dtype=dtypes)
def test_roi_op_pool_pools_each_box_on_its_level(seed, dtype):
    size = 128
    maps = _pyramid(seed, dtype, 1, size)
    boxes = [_boxes(seed + 1, 12, size, dtype)]
    ours = MultiScaleRoIAlign(NAMES, 3, 2, canonical_scale=56, roi_op="pool")(
        OrderedDict((k, mts.tensor(v)) for k, v in maps.items()), [mts.tensor(b) for b in boxes], [(size, size)])
    levels = tv_poolers.LevelMapper(2, 5, 56)([torch.tensor(boxes[0])]).numpy()
    expected = np.zeros((12, 2, 3, 3), dtype=dtype)
    for level in range(4):
        idx = np.nonzero(levels == level)[0]
        rois = torch.tensor(np.concatenate([np.zeros((len(idx), 1), dtype), boxes[0][idx]], axis=1))
        expected[idx] = torchvision.ops.roi_pool(torch.tensor(maps[NAMES[level]]), rois, 3, 2.0 ** -(level + 2)).numpy()
    np.testing.assert_array_equal(ours.numpy(), expected)


def test_multiscale_roi_align_no_boxes_and_bad_input():
    maps = OrderedDict((k, mts.tensor(v)) for k, v in _pyramid(0, np.float32, 1, 64).items())
    out = MultiScaleRoIAlign(NAMES, 7, 2)(maps, [mts.zeros((0, 4))], [(64, 64)])
    assert out.shape == (0, 2, 7, 7)
    with pytest.raises(ValueError, match="roi_op"):
        MultiScaleRoIAlign(NAMES, 7, 2, roi_op="max")
    with pytest.raises(KeyError, match="'7'"):
        MultiScaleRoIAlign(["7"], 7, 2)(maps, [mts.zeros((0, 4))], [(64, 64)])
    with pytest.raises(ValueError, match="image_shapes"):
        MultiScaleRoIAlign(NAMES, 7, 2)(maps, [mts.zeros((0, 4))], [])


def test_levels_without_rois_get_zero_gradients():
    """Small boxes all map to the finest level; the other pooled levels get zeros (torchvision), 'pool' None."""
    maps = _pyramid(0, np.float64, 1, 128)
    boxes = [np.array([[10.0, 10.0, 20.0, 20.0], [30.0, 30.0, 40.0, 44.0]])]
    mine, ref, ours, theirs = _run_both(maps, boxes, [(128, 128)], 3, 2, NAMES)
    ours.sum().backward()
    theirs.sum().backward()
    assert mine["pool"].grad is None and ref["pool"].grad is None
    for k in NAMES:
        np.testing.assert_allclose(mine[k].grad.numpy(), ref[k].grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
    assert mine["0"].grad.numpy().any() and not mine["3"].grad.numpy().any()
