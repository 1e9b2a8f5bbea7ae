"""ResNet (He et al., 2016) with torchvision's module names (``torchvision/models/resnet.py``).

The network, for a 3×H×W image (strides relative to the input)::

    conv1 7×7/2 → bn1 → relu → maxpool 3×3/2      (stride 4, 64 channels)
    layer1 … layer4: blocks, the first block of layer2..4 with stride 2
                                                  (strides 4, 8, 16, 32;
                                                   64, 128, 256, 512 · expansion channels)
    global average pool → fc                      (classes)

``BasicBlock`` (ResNet-18/34, expansion 1): two 3×3 convs; ``Bottleneck``
(ResNet-50, expansion 4): 1×1 reduce, 3×3 (stride here, as torchvision's
"ResNet V1.5"), 1×1 expand. A block adds its input (through ``downsample`` =
1×1 conv + norm when the shape changes) before the last ReLU.

Module names, parameter shapes and the order of ``state_dict`` keys are
torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0`` /
``.1``, ``fc``), so its weights load by key. ``base_channels`` (64 in
torchvision) scales every channel count, for compact networks that train on
a CPU: ``base_channels=16`` gives widths 16, 32, 64, 128 · expansion.
"""

from __future__ import annotations

from typing import Callable

from .. import functional as F
from ..nn import BatchNorm2d, Conv2d, GroupNorm, Linear, MaxPool2d, Module, ReLU, Sequential, init
from ..tensor import Tensor

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "conv1x1", "conv3x3"]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> Conv2d:
    """3×3 convolution, padding = dilation (size kept at stride 1), no bias."""
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, groups=groups, bias=False,
                  dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> Conv2d:
    """1×1 convolution, no bias."""
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))``; conv1 carries the stride."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock only supports groups=1 and base_width=64, got groups={groups}, "
                             f"base_width={base_width}")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(Module):
    """1×1 (width) → 3×3 (width, stride) → 1×1 (planes·4), each with norm; ReLU after the residual sum.

    ``width = int(planes · base_width / 64) · groups`` (ResNeXt / wide ResNet).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: Callable[[int], Module] | None = None):
        super().__init__()
        norm_layer = norm_layer or BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(Module):
    """torchvision's ``ResNet(block, layers, num_classes=1000, zero_init_residual=False, groups=1,
    width_per_group=64, replace_stride_with_dilation=None, norm_layer=None)`` plus ``base_channels``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers (4 ints): blocks per stage ((2, 2, 2, 2) for ResNet-18).
        norm_layer (callable C → Module): BatchNorm2d by default; ``FrozenBatchNorm2d``
            in torchvision's detection backbones; ``lambda c: GroupNorm(g, c)`` for
            training from scratch with batches of 1–2 images.
        replace_stride_with_dilation (3 bools or None): layer2..4 keep the resolution
            and dilate instead (Bottleneck only).
        base_channels (int): width of conv1 and layer1 (64 in torchvision); the
            stages have base_channels · (1, 2, 4, 8) planes.

    ``inplanes`` after construction is the last stage's output channels
    (``8·base_channels·expansion``), which ``resnet_fpn_backbone`` reads.
    Initialisation as torchvision: convs Kaiming-normal (fan_out, ReLU), norm
    weights 1 and biases 0 (when they are parameters), ``zero_init_residual``
    zeroes each block's last norm weight.
    """

    def __init__(self, block, layers, num_classes: int = 1000, zero_init_residual: bool = False, groups: int = 1,
                 width_per_group: int = 64, replace_stride_with_dilation=None,
                 norm_layer: Callable[[int], Module] | None = None, base_channels: int = 64):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise TypeError(f"ResNet: block: expected BasicBlock or Bottleneck, got {block!r}")
        if len(layers) != 4 or not all(isinstance(n, int) and n >= 1 for n in layers):
            raise ValueError(f"ResNet: layers: expected 4 positive ints (blocks per stage), got {layers!r}")
        if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 1:
            raise ValueError(f"ResNet: base_channels: expected a positive int, got {base_channels!r}")
        norm_layer = norm_layer or BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = base_channels
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(f"replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base_channels, layers[0])
        self.layer2 = self._make_layer(block, 2 * base_channels, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 4 * base_channels, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 8 * base_channels, layers[3], 2, replace_stride_with_dilation[2])
        self.fc = Linear(8 * base_channels * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (BatchNorm2d, GroupNorm)) and m.weight is not None:
                init.constant_(m.weight, 1)
                init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                last = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                if isinstance(last, (BatchNorm2d, GroupNorm)) and last.weight is not None:
                    init.constant_(last.weight, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> Sequential:
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                    norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                        norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))
        return Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"ResNet: expected images (N, 3, H, W), got {shape}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.mean(x, dim=(2, 3))  # torchvision's avgpool (AdaptiveAvgPool2d(1)) then flatten
        return self.fc(x)


def _resnet(block, layers, weights, kwargs) -> ResNet:
    if weights is not None:
        raise ValueError(f"weights: only None is supported (no downloads); load a torchvision state dict with "
                         f"load_state_dict instead, got {weights!r}")
    return ResNet(block, layers, **kwargs)


def resnet18(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-18: BasicBlock, (2, 2, 2, 2). ``kwargs`` go to :class:`ResNet` (``norm_layer``, ``base_channels``...)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], weights, kwargs)


def resnet34(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-34: BasicBlock, (3, 4, 6, 3)."""
    return _resnet(BasicBlock, [3, 4, 6, 3], weights, kwargs)


def resnet50(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-50: Bottleneck, (3, 4, 6, 3)."""
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, kwargs)
