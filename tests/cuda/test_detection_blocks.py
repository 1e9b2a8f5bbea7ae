"""Mask R-CNN's building blocks on ``device='cuda'`` against the same calls on ``cpu``.

Group norm, FrozenBatchNorm2d, the box coder, matcher and sampler, the anchor
generator, MultiScaleRoIAlign, GeneralizedRCNNTransform and a tiny ResNet-FPN
backbone, each run on both devices with the same inputs (the torchvision
comparisons are in tests/detection). Elementwise work is the same NumPy (or
CuPy) arithmetic, so results are compared with :data:`tests.strategies.TOL`;
RoIAlign's CUDA backward adds with float atomics: :data:`ATOMIC_TOL`.
"""

from collections import OrderedDict

import numpy as np
import pytest

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.models.detection import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    GeneralizedRCNNTransform,
    ImageList,
    Matcher,
    group_norm_layer,
    resnet_fpn_backbone,
)
from minitorchseg.ops import FrozenBatchNorm2d, MultiScaleRoIAlign, box_iou
from tests.strategies import TOL

from .common import ATOMIC_TOL

pytestmark = pytest.mark.cudasim

F64 = TOL[np.dtype(np.float64)]


def _boxes(seed: int, n: int, extent: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, extent / 2, size=(n, 2))
    return np.concatenate([xy, xy + rng.uniform(2, extent / 2, size=(n, 2))], axis=1)


def test_group_norm_and_frozen_batch_norm_on_cuda():
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 5))
    results = {}
    for device in ("cpu", "cuda"):
        t = mts.tensor(x, requires_grad=True, device=device)
        frozen = FrozenBatchNorm2d(4).to(np.float64)
        frozen.running_var.copy_(np.array([0.5, 1.0, 2.0, 4.0]))
        frozen.to(device)
        y = F.group_norm(frozen(t), 2)
        y.backward(mts.tensor(np.linspace(-1, 1, y.numel()).reshape(y.shape), device=device))
        assert y.device == device and t.grad.device == device
        results[device] = (y.numpy(), t.grad.numpy())
    for a, b in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(a, b, **F64)


def test_box_coder_matcher_sampler_on_cuda():
    gt, proposals = _boxes(1, 3, 60.0), _boxes(2, 12, 60.0)
    out = {}
    for device in ("cpu", "cuda"):
        g, p = mts.tensor(gt, device=device), mts.tensor(proposals, device=device)
        targets = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode([g], [p[:3]])[0]
        decoded = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(mts.tensor(np.full((12, 4), 0.1), device=device), [p])
        matches = Matcher(0.5, 0.2, True)(box_iou(g, p))
        pos, neg = BalancedPositiveNegativeSampler(4, 0.5, generator=np.random.default_rng(3))([matches])
        assert {targets.device, decoded.device, matches.device, pos[0].device} == {device}
        out[device] = [targets.numpy(), decoded.numpy(), matches.numpy(), pos[0].numpy(), neg[0].numpy()]
    for a, b in zip(out["cuda"], out["cpu"]):
        np.testing.assert_allclose(a, b, **F64)


def test_anchors_and_multiscale_roi_align_on_cuda():
    rng = np.random.default_rng(4)
    maps = OrderedDict((str(k), rng.standard_normal((1, 2, 32 // 2 ** k, 32 // 2 ** k))) for k in range(3))
    boxes = _boxes(5, 6, 128.0)
    out = {}
    for device in ("cpu", "cuda"):
        features = OrderedDict((k, mts.tensor(v, requires_grad=True, device=device)) for k, v in maps.items())
        images = ImageList(mts.zeros((1, 3, 128, 128), dtype=np.float64, device=device), [(128, 128)])
        (anchors,) = AnchorGenerator(((16,), (32,), (64,)), ((0.5, 1.0, 2.0),) * 3)(images, list(features.values()))
        pooled = MultiScaleRoIAlign(["0", "1", "2"], 3, 2, canonical_scale=40)(
            features, [mts.tensor(boxes, device=device)], [(128, 128)])
        pooled.backward(mts.tensor(np.linspace(-1, 1, pooled.numel()).reshape(pooled.shape), device=device))
        assert anchors.device == pooled.device == device
        out[device] = [anchors.numpy(), pooled.numpy()] + [f.grad.numpy() for f in features.values()]
    np.testing.assert_array_equal(out["cuda"][0], out["cpu"][0])
    np.testing.assert_allclose(out["cuda"][1], out["cpu"][1], **F64)
    for a, b in zip(out["cuda"][2:], out["cpu"][2:]):
        np.testing.assert_allclose(a, b, **ATOMIC_TOL[np.dtype(np.float64)])


@pytest.mark.skip(reason="in the simulator this test takes 8 s alone but many minutes after the file's other tests "
                         "(cause not found yet); it passed on a real H200")
def test_transform_and_tiny_backbone_on_cuda():
    rng = np.random.default_rng(6)
    image = rng.uniform(size=(3, 20, 27))
    masks = (rng.uniform(size=(2, 20, 27)) < 0.5).astype(np.uint8)
    boxes = np.array([[1.0, 2.0, 10.0, 12.0], [3.0, 3.0, 20.0, 18.0]])
    out = {}
    for device in ("cpu", "cuda"):
        mts.manual_seed(0)
        backbone = resnet_fpn_backbone(backbone_name="resnet18", norm_layer=group_norm_layer(2), trainable_layers=5,
                                       base_channels=4, out_channels=4).to(np.float64).to(device)
        transform = GeneralizedRCNNTransform(32, 40, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
        batch, targets = transform([mts.tensor(image, device=device)],
                                   [{"boxes": mts.tensor(boxes, device=device),
                                     "masks": mts.tensor(masks, device=device)}])
        features = backbone(batch.tensors)
        sum(f.sum() for f in features.values()).backward()
        assert batch.tensors.device == targets[0]["masks"].device == device
        out[device] = ([batch.tensors.numpy(), targets[0]["boxes"].numpy(), targets[0]["masks"].numpy()]
                       + [f.numpy() for f in features.values()]
                       + [p.grad.numpy() for p in backbone.parameters()])
    for a, b in zip(out["cuda"], out["cpu"]):
        np.testing.assert_allclose(a, b, **F64)
