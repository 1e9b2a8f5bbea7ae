"""ResNet + FPN backbones for detection (torchvision's ``models/detection/backbone_utils.py``).

``resnet_fpn_backbone(backbone_name="resnet18")`` on an (N, 3, H, W) batch returns
the ordered dict ``"0"``..``"3"`` (the FPN outputs of layer1..layer4, strides 4,
8, 16, 32) and ``"pool"`` (stride 64), each with 256 channels. Its
``state_dict`` keys are torchvision's: ``body.conv1.weight``,
``body.layer1.0.bn1.running_mean``, ..., ``fpn.inner_blocks.0.0.weight``,
``fpn.layer_blocks.3.0.bias`` (``body`` holds the ResNet's children up to layer4,
without ``fc``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from ...nn import GroupNorm, Module
from ...ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool
from ...ops.misc import FrozenBatchNorm2d
from ...tensor import Tensor
from .. import resnet

__all__ = ["IntermediateLayerGetter", "BackboneWithFPN", "resnet_fpn_backbone", "group_norm_layer"]


class IntermediateLayerGetter(Module):
    """The children of ``model`` up to the last one named in ``return_layers``, run in order.

    ``forward(x)`` returns an ordered dict ``{return_layers[name]: output of child name}``.
    As torchvision's (``torchvision/models/_utils.py``), only direct children can be
    returned and they must be registered in the order the model uses them.
    """

    def __init__(self, model: Module, return_layers: dict[str, str]) -> None:
        super().__init__()
        children = [name for name, _ in model.named_children()]
        if not set(return_layers).issubset(children):
            raise ValueError(f"return_layers are not present in model: {sorted(set(return_layers) - set(children))} "
                             f"not in {children}")
        remaining = {str(k): str(v) for k, v in return_layers.items()}
        for name, module in model.named_children():
            self.add_module(name, module)
            remaining.pop(name, None)
            if not remaining:
                break
        self.return_layers = {str(k): str(v) for k, v in return_layers.items()}

    def forward(self, x: Tensor) -> OrderedDict:
        out = OrderedDict()
        for name, module in self.named_children():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class BackboneWithFPN(Module):
    """``fpn(body(x))``: an :class:`IntermediateLayerGetter` over ``backbone`` and a :class:`FeaturePyramidNetwork`.

    Args:
        backbone (Module), return_layers (dict child name → output name),
        in_channels_list (channels of those outputs), out_channels (FPN channels),
        extra_blocks (default :class:`LastLevelMaxPool`), norm_layer (of the FPN convs).

    ``out_channels`` is kept as an attribute (the RPN and RoI heads read it).
    """

    def __init__(self, backbone: Module, return_layers: dict[str, str], in_channels_list: list[int],
                 out_channels: int, extra_blocks: ExtraFPNBlock | None = None, norm_layer=None) -> None:
        super().__init__()
        if extra_blocks is None:
            extra_blocks = LastLevelMaxPool()
        self.body = IntermediateLayerGetter(backbone, return_layers=return_layers)
        self.fpn = FeaturePyramidNetwork(in_channels_list=in_channels_list, out_channels=out_channels,
                                         extra_blocks=extra_blocks, norm_layer=norm_layer)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict:
        return self.fpn(self.body(x))


def group_norm_layer(num_groups: int = 32) -> Callable[[int], GroupNorm]:
    """A ``norm_layer`` for :func:`resnet_fpn_backbone`: ``C → GroupNorm(min(num_groups, C), C)``.

    With ``base_channels`` below 64, a stage may have fewer channels than groups;
    the group count then falls to C (one channel per group, "instance norm").
    """
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"group_norm_layer: num_groups: expected a positive int, got {num_groups!r}")

    def make(channels: int) -> GroupNorm:
        groups = min(num_groups, channels)
        while channels % groups:
            groups -= 1
        return GroupNorm(groups, channels)

    return make


_BACKBONES = {"resnet18": resnet.resnet18, "resnet34": resnet.resnet34, "resnet50": resnet.resnet50}


def resnet_fpn_backbone(*, backbone_name: str, weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers: int = 3,
                        returned_layers: list[int] | None = None, extra_blocks: ExtraFPNBlock | None = None,
                        base_channels: int = 64, out_channels: int = 256) -> BackboneWithFPN:
    """A ResNet with an FPN on top, torchvision's ``resnet_fpn_backbone`` (keyword-only, same defaults).

    Args:
        backbone_name ("resnet18", "resnet34" or "resnet50").
        weights: None only (no downloads; copy a torchvision state dict with ``load_state_dict``).
        norm_layer (callable C → Module): ``FrozenBatchNorm2d`` (torchvision's default,
            for pre-trained statistics); :func:`group_norm_layer` to train from scratch
            with batches of 1–2 images.
        trainable_layers (0..5): parameters of the last ``trainable_layers`` of
            ``layer4, layer3, layer2, layer1, conv1`` (and ``bn1`` with 5) keep
            ``requires_grad``; the others are frozen (``requires_grad = False``).
        returned_layers (list of 1..4, default [1, 2, 3, 4]): the ResNet stages fed to the
            FPN; outputs are named ``"0"``, ``"1"``, ... in that order.
        extra_blocks: default :class:`LastLevelMaxPool` (adds ``"pool"``).
        base_channels (int): the ResNet's width (64 = torchvision; see ``models/resnet.py``).
        out_channels (int): FPN channels (256 = torchvision).

    Raises ValueError for an unknown ``backbone_name``, ``trainable_layers`` outside
    [0, 5] or a returned layer outside [1, 4].
    """
    if backbone_name not in _BACKBONES:
        raise ValueError(f"resnet_fpn_backbone: backbone_name: expected one of {sorted(_BACKBONES)}, "
                         f"got {backbone_name!r}")
    _check_extractor_arguments(trainable_layers, returned_layers)
    backbone = _BACKBONES[backbone_name](weights=weights, norm_layer=norm_layer, base_channels=base_channels)
    return _resnet_fpn_extractor(backbone, trainable_layers, returned_layers, extra_blocks, out_channels=out_channels)


def _check_extractor_arguments(trainable_layers, returned_layers) -> None:
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= 5:
        raise ValueError(f"Trainable layers should be in the range [0,5], got {trainable_layers}")
    if returned_layers is not None and (not returned_layers or min(returned_layers) <= 0 or max(returned_layers) >= 5):
        raise ValueError(f"Each returned layer should be in the range [1,4]. Got {returned_layers}")


def _resnet_fpn_extractor(backbone: resnet.ResNet, trainable_layers: int, returned_layers: list[int] | None = None,
                          extra_blocks: ExtraFPNBlock | None = None, norm_layer=None,
                          out_channels: int = 256) -> BackboneWithFPN:
    """Freeze ``backbone`` as ``trainable_layers`` says and put an FPN on it (torchvision's helper of that name).

    ``norm_layer`` is the FPN's (None: plain biased convs, as torchvision's default).
    """
    _check_extractor_arguments(trainable_layers, returned_layers)
    if returned_layers is None:
        returned_layers = [1, 2, 3, 4]
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, parameter in backbone.named_parameters():
        if not any(name.startswith(layer) for layer in layers_to_train):
            parameter.requires_grad_(False)
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned_layers)}
    in_channels_stage2 = backbone.inplanes // 8
    in_channels_list = [in_channels_stage2 * 2 ** (i - 1) for i in returned_layers]
    return BackboneWithFPN(backbone, return_layers, in_channels_list, out_channels, extra_blocks=extra_blocks,
                           norm_layer=norm_layer)
