"""AnchorGenerator against torchvision's ``models/detection/anchor_utils.py``: equal anchors, same order."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
from torchvision.models.detection.image_list import ImageList as TvImageList

import minitorchseg as mts
from minitorchseg.models.detection import AnchorGenerator, ImageList

from ..strategies import dtypes, seeds, settings_fast

CONFIGS = [
    (((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5),  # FPN Mask R-CNN
    (((128, 256, 512),), ((0.5, 1.0, 2.0),)),  # the single-level default
    (((16, 24), (40, 50)), ((0.3, 1.0), (0.7, 1.3, 2.9))),  # odd sizes and ratios: rounding at work
]


def test_base_anchors_literal():
    np.testing.assert_array_equal(
        AnchorGenerator.generate_anchors((32,), (0.5, 1.0, 2.0)),
        [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]],
    )


@settings_fast
@given(seed=seeds, dtype=dtypes, config=st.sampled_from(CONFIGS), images=st.integers(1, 2),
       height=st.integers(33, 130), width=st.integers(33, 130))
def test_anchors_equal_torchvision(seed, dtype, config, images, height, width):
    sizes, ratios = config
    levels = len(sizes)
    batch = np.zeros((images, 3, height, width), dtype=dtype)
    image_sizes = [(height - i, width) for i in range(images)]
    # feature maps of a stride-4, 8, 16, ... backbone (ceil division, as strided convolutions give)
    shapes = [(images, 2, -(-height // 2 ** (k + 2)), -(-width // 2 ** (k + 2))) for k in range(levels)]
    features = [np.random.default_rng(seed + k).standard_normal(s).astype(dtype) for k, s in enumerate(shapes)]
    ours = AnchorGenerator(sizes, ratios)(ImageList(mts.tensor(batch), image_sizes),
                                          [mts.tensor(f) for f in features])
    theirs = TvAnchorGenerator(sizes, ratios)(TvImageList(torch.tensor(batch), image_sizes),
                                              [torch.tensor(f) for f in features])
    assert len(ours) == len(theirs) == images
    for a, b in zip(ours, theirs):
        assert a.dtype == np.dtype(dtype) and a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    generator = AnchorGenerator(sizes, ratios)
    assert generator.num_anchors_per_location() == TvAnchorGenerator(sizes, ratios).num_anchors_per_location()
    assert generator.state_dict() == {}


def test_anchor_order_is_y_x_a():
    generator = AnchorGenerator(((32,),), ((0.5, 1.0, 2.0),))
    (anchors,) = generator(ImageList(mts.zeros((1, 3, 16, 24)), [(16, 24)]), [mts.zeros((1, 1, 2, 3))])
    assert anchors.shape == (2 * 3 * 3, 4)
    # position (y=1, x=2) with stride 8: shift (16, 8, 16, 8); third anchor (ratio 2)
    np.testing.assert_array_equal(anchors.numpy()[(1 * 3 + 2) * 3 + 2], [16 - 11, 8 - 23, 16 + 11, 8 + 23])


def test_anchor_generator_bad_input():
    with pytest.raises(ValueError, match="levels"):
        AnchorGenerator(((32,), (64,)), ((0.5,), (1.0,), (2.0,)))
    with pytest.raises(ValueError, match="aspect_ratios"):
        AnchorGenerator(((32,),), ((0.0, 1.0),))
    generator = AnchorGenerator(((32,), (64,)), ((1.0,),) * 2)
    with pytest.raises(ValueError, match="feature maps"):
        generator(ImageList(mts.zeros((1, 3, 16, 16)), [(16, 16)]), [mts.zeros((1, 1, 4, 4))])
