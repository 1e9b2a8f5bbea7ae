"""Mask R-CNN on ``device='cuda'`` (the simulator without a GPU): eval forward and one training step equal the CPU's.

A tiny model (a two-level strided-conv backbone, narrow heads, a 32×32 image) so
that every kernel the detector uses (conv, transposed conv, RoIAlign forward and
backward, NMS, bilinear resize) runs through the CUDA path in seconds. The CPU
and the device take the same sampler choices (same library seed); results are
compared with the float32 tolerance, because RoIAlign's CUDA backward adds with
atomics in thread order.
"""

from collections import OrderedDict

import numpy as np
import pytest

import minitorchseg as mts
from minitorchseg import functional as F
from minitorchseg.models.detection.anchor_utils import AnchorGenerator
from minitorchseg.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from minitorchseg.models.detection.mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor
from minitorchseg.nn import Conv2d, Module
from minitorchseg.ops import MultiScaleRoIAlign
from minitorchseg.optim import SGD
from tests.strategies import TOL

pytestmark = pytest.mark.cudasim

WIDTH = 4
CLASSES = 3


class _TinyBackbone(Module):
    """Two strided 3×3 convs: maps "0" (stride 4) and "1" (stride 8) with WIDTH channels."""

    def __init__(self):
        super().__init__()
        self.c0 = Conv2d(3, WIDTH, 3, stride=4, padding=1)
        self.c1 = Conv2d(WIDTH, WIDTH, 3, stride=2, padding=1)
        self.out_channels = WIDTH

    def forward(self, x):
        a = F.relu(self.c0(x))
        return OrderedDict([("0", a), ("1", F.relu(self.c1(a)))])


def _tiny_maskrcnn() -> MaskRCNN:
    mts.manual_seed(0)
    names = ["0", "1"]
    return MaskRCNN(
        _TinyBackbone(), min_size=32, max_size=32,
        rpn_anchor_generator=AnchorGenerator(((8,), (16,)), ((0.5, 1.0),) * 2),
        rpn_pre_nms_top_n_train=20, rpn_pre_nms_top_n_test=20, rpn_post_nms_top_n_train=10,
        rpn_post_nms_top_n_test=10, box_roi_pool=MultiScaleRoIAlign(names, 7, 2),
        box_head=TwoMLPHead(WIDTH * 49, 16), box_predictor=FastRCNNPredictor(16, CLASSES),
        box_batch_size_per_image=8, box_detections_per_img=3, box_score_thresh=0.0,
        mask_roi_pool=MultiScaleRoIAlign(names, 14, 2), mask_head=MaskRCNNHeads(WIDTH, (4, 4), 1),
        mask_predictor=MaskRCNNPredictor(4, 4, CLASSES))


def _inputs(device):
    rng = np.random.default_rng(0)
    image = mts.tensor(rng.uniform(size=(3, 32, 32)).astype(np.float32), device=device)
    masks = np.zeros((1, 32, 32), np.uint8)
    masks[0, 4:20, 6:22] = 1
    target = {"boxes": mts.tensor(np.array([[6.0, 4.0, 22.0, 20.0]], np.float32), device=device),
              "labels": mts.tensor(np.array([1]), device=device), "masks": mts.tensor(masks, device=device)}
    return [image], [target]


def _eval_and_step(model, device):
    images, targets = _inputs(device)
    model.eval()
    with mts.no_grad():
        detections = model(images)
    model.train()
    mts.manual_seed(3)
    losses = model(images, targets)
    optimizer = SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    sum(losses.values()).backward()
    optimizer.step()
    return detections, losses, model.state_dict()


def test_maskrcnn_on_cuda_equals_cpu():
    cpu_model, cuda_model = _tiny_maskrcnn(), _tiny_maskrcnn()
    cuda_model.to("cuda")
    assert all(p.device == "cuda" for p in cuda_model.parameters())
    ref_det, ref_losses, ref_state = _eval_and_step(cpu_model, "cpu")
    det, losses, state = _eval_and_step(cuda_model, "cuda")
    tol = TOL[np.dtype(np.float32)]
    assert det[0]["masks"].device == "cuda" and det[0]["masks"].shape == (3, 1, 32, 32)
    for key in ("boxes", "labels", "scores", "masks"):
        np.testing.assert_allclose(det[0][key].numpy(), ref_det[0][key].numpy(), **tol, err_msg=key)
    assert set(losses) == set(ref_losses) and len(losses) == 5
    for key in losses:
        np.testing.assert_allclose(losses[key].numpy(), ref_losses[key].numpy(), **tol, err_msg=key)
    initial = _tiny_maskrcnn().state_dict()
    moved = [key for key in ref_state if not np.array_equal(ref_state[key], initial[key])]
    assert len(moved) == len(initial), "the training step should change every parameter"
    for key in ref_state:
        np.testing.assert_allclose(state[key], ref_state[key], **tol, err_msg=key)
