"""ResNet, FPN and resnet_fpn_backbone against torchvision: keys, copied weights both ways, outputs, gradients."""

import functools
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone as tv_resnet_fpn_backbone
from torchvision.ops import FeaturePyramidNetwork as TvFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool as TvLastLevelMaxPool

import minitorchseg as mts
from minitorchseg.models import resnet
from minitorchseg.models.detection.backbone_utils import group_norm_layer, resnet_fpn_backbone
from minitorchseg.ops import FeaturePyramidNetwork
from minitorchseg.ops.feature_pyramid_network import LastLevelMaxPool

from ..strategies import TOL, randn
from ..torch_ref import upstream


def _randomize_torch(module: torch.nn.Module, seed: int) -> None:
    """Random parameters and normalisation statistics (defaults 1/0 would hide a swapped key)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.tensor(rng.uniform(0.5, 2.0, t.shape)))
            elif name.endswith("weight") and t.ndim == 1:
                t.copy_(torch.tensor(rng.uniform(0.5, 1.5, t.shape)))
            else:
                t.copy_(torch.tensor(rng.standard_normal(t.shape) * (0.1 if t.ndim == 1 else 1.0 / np.sqrt(
                    max(1, t[0].numel()))), dtype=t.dtype))


def _copy_into_ours(ours, theirs) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _compare_dicts(ours: OrderedDict, theirs: OrderedDict, tol) -> None:
    assert list(ours) == list(theirs)
    for k in ours:
        assert ours[k].shape == tuple(theirs[k].shape), k
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].detach().numpy(), **tol, err_msg=f"output {k}")


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_state_dict_keys_and_shapes_equal_torchvision(name):
    ours = getattr(resnet, name)()
    theirs = getattr(torchvision.models, name)()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]


def test_resnet18_forward_equals_torchvision_with_copied_weights():
    theirs = torchvision.models.resnet18(num_classes=10).double().eval()
    _randomize_torch(theirs, 0)
    ours = resnet.resnet18(num_classes=10).to(np.float64).eval()
    _copy_into_ours(ours, theirs)
    x = randn(1, (2, 3, 64, 48))
    np.testing.assert_allclose(ours(mts.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               **TOL[np.dtype(np.float64)])


def test_compact_resnet_widths():
    net = resnet.resnet18(base_channels=16, num_classes=3)
    assert net.layer1[0].conv1.weight.shape == (16, 16, 3, 3)
    assert net.layer4[0].downsample[0].weight.shape == (128, 64, 1, 1) and net.inplanes == 128
    assert resnet.resnet50(base_channels=8).inplanes == 8 * 8 * 4


def test_fpn_equals_torchvision_on_odd_sizes():
    theirs = TvFPN([3, 5, 7], 4, extra_blocks=TvLastLevelMaxPool()).double()
    _randomize_torch(theirs, 2)
    ours = FeaturePyramidNetwork([3, 5, 7], 4, extra_blocks=LastLevelMaxPool()).to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _copy_into_ours(ours, theirs)
    shapes = {"a": (2, 3, 13, 11), "b": (2, 5, 7, 6), "c": (2, 7, 3, 3)}  # odd sizes: upsample to the lateral's size
    arrays = {k: randn(i + 3, s) for i, (k, s) in enumerate(shapes.items())}
    mine = OrderedDict((k, mts.tensor(v, requires_grad=True)) for k, v in arrays.items())
    ref = OrderedDict((k, torch.tensor(v, requires_grad=True)) for k, v in arrays.items())
    out, expected = ours(mine), theirs(ref)
    assert list(out) == ["a", "b", "c", "pool"]
    _compare_dicts(out, expected, TOL[np.dtype(np.float64)])
    total, tv_total = 0, 0
    for i, k in enumerate(out):
        g = upstream(out[k].shape, np.float64, seed=i)
        total = total + (out[k] * mts.tensor(g)).sum()
        tv_total = tv_total + (expected[k] * torch.tensor(g)).sum()
    total.backward()
    tv_total.backward()
    for k in arrays:
        np.testing.assert_allclose(mine[k].grad.numpy(), ref[k].grad.numpy(), **TOL[np.dtype(np.float64)])


def test_resnet_fpn_backbone_keys_equal_torchvision():
    ours = resnet_fpn_backbone(backbone_name="resnet18", weights=None)
    theirs = tv_resnet_fpn_backbone(backbone_name="resnet18", weights=None)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    assert ours.out_channels == theirs.out_channels == 256


def test_returned_layers_and_extractor_as_torchvision():
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor as tv_extractor

    from minitorchseg.models.detection.backbone_utils import _resnet_fpn_extractor

    ours = resnet_fpn_backbone(backbone_name="resnet18", weights=None, returned_layers=[2, 4])
    theirs = tv_resnet_fpn_backbone(backbone_name="resnet18", weights=None, returned_layers=[2, 4])
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    assert list(ours(mts.zeros((1, 3, 64, 64)))) == list(theirs(torch.zeros(1, 3, 64, 64))) == ["0", "1", "pool"]
    ours = _resnet_fpn_extractor(resnet.resnet18(), 2, norm_layer=group_norm_layer(32))
    theirs = tv_extractor(torchvision.models.resnet18(), 2, norm_layer=functools.partial(torch.nn.GroupNorm, 32))
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]


@pytest.mark.parametrize("trainable_layers", [0, 3, 5])
def test_trainable_layers_freeze_as_torchvision(trainable_layers):
    ours = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=trainable_layers,
                               norm_layer=group_norm_layer(32))
    theirs = tv_resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=trainable_layers,
                                    norm_layer=functools.partial(torch.nn.GroupNorm, 32))
    assert [(k, p.requires_grad) for k, p in ours.named_parameters()] == [
        (k, p.requires_grad) for k, p in theirs.named_parameters()
    ]


def _backbone_pair(norm: str, seed: int):
    if norm == "frozen":
        ours = resnet_fpn_backbone(backbone_name="resnet18", weights=None)
        theirs = tv_resnet_fpn_backbone(backbone_name="resnet18", weights=None)
    else:
        ours = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=group_norm_layer(32),
                                   trainable_layers=5)
        theirs = tv_resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5,
                                        norm_layer=functools.partial(torch.nn.GroupNorm, 32))
    return ours.to(np.float64), theirs.double()


@pytest.mark.parametrize("norm", ["frozen", "group"])
def test_resnet_fpn_backbone_torchvision_weights_into_ours(norm):
    ours, theirs = _backbone_pair(norm, 0)
    _randomize_torch(theirs, 4)
    _copy_into_ours(ours, theirs)
    x = randn(5, (1, 3, 64, 64))
    mine, ref = mts.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(mine), theirs(ref)
    assert [tuple(v.shape) for v in out.values()] == [(1, 256, 16, 16), (1, 256, 8, 8), (1, 256, 4, 4),
                                                      (1, 256, 2, 2), (1, 256, 1, 1)]
    _compare_dicts(out, expected, TOL[np.dtype(np.float64)])
    # the same gradient for the input and for every trainable parameter
    grads = [upstream(v.shape, np.float64, seed=i) for i, v in enumerate(out.values())]
    sum((v * mts.tensor(g)).sum() for v, g in zip(out.values(), grads)).backward()
    sum((v * torch.tensor(g)).sum() for v, g in zip(expected.values(), grads)).backward()
    np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(), **TOL[np.dtype(np.float64)])
    tv_params = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        assert p.requires_grad == tv_params[k].requires_grad, k
        if p.requires_grad:
            # a weight gradient sums over N·H·W products: compared relative to its largest entry
            expected_grad = tv_params[k].grad.numpy()
            np.testing.assert_allclose(p.grad.numpy(), expected_grad, rtol=1e-10,
                                       atol=1e-10 * np.abs(expected_grad).max(), err_msg=f"gradient of {k}")


def test_resnet_fpn_backbone_our_weights_into_torchvision():
    ours, theirs = _backbone_pair("frozen", 0)
    rng = np.random.default_rng(7)
    state = ours.state_dict()
    randomized = {k: (rng.uniform(0.5, 2.0, v.shape) if k.endswith("running_var") else
                      rng.standard_normal(v.shape) * (0.1 if v.ndim == 1 else 1 / np.sqrt(v[0].size)))
                  for k, v in state.items()}
    ours.load_state_dict(randomized)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = randn(8, (1, 3, 64, 32))
    ours.eval()
    theirs.eval()
    _compare_dicts(ours(mts.tensor(x)), theirs(torch.tensor(x)), TOL[np.dtype(np.float64)])


def test_compact_group_norm_backbone_trains_on_one_image():
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=group_norm_layer(8),
                                   trainable_layers=5, base_channels=16, out_channels=32)
    out = backbone(mts.randn(1, 3, 64, 64))
    assert [tuple(v.shape) for v in out.values()] == [(1, 32, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4), (1, 32, 2, 2),
                                                      (1, 32, 1, 1)]
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in backbone.parameters())
    assert backbone.body.layer1[0].bn1.num_groups == 8


def test_backbone_bad_input():
    with pytest.raises(ValueError, match="backbone_name"):
        resnet_fpn_backbone(backbone_name="resnet101")
    with pytest.raises(ValueError, match="range \\[0,5\\]"):
        resnet_fpn_backbone(backbone_name="resnet18", trainable_layers=6)
    with pytest.raises(ValueError, match="range \\[1,4\\]"):
        resnet_fpn_backbone(backbone_name="resnet18", returned_layers=[0, 1])
    with pytest.raises(ValueError, match="weights"):
        resnet_fpn_backbone(backbone_name="resnet18", weights="DEFAULT")
