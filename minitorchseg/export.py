"""To PyTorch and back: a PyTorch twin of every model, weights and optimiser state converted both ways.

A model trained here continues in PyTorch (on GPUs, with DistributedDataParallel)
without starting over, and comes back::

    from minitorchseg.export import to_torch, from_torch, optimizer_to_torch
    twin = to_torch(model)                       # a torch.nn.Module, the same weights and buffers
    torch_opt = optimizer_to_torch(opt, twin)    # torch.optim.Adam with the same moments and step count
    ...                                          # train in PyTorch
    model = from_torch(twin)                     # ours again, the weights copied bit for bit

The twins (:class:`TorchFCN32s`, :class:`TorchFCN16s`, :class:`TorchFCN8s`,
:class:`TorchUNet`, :class:`TorchSegNet`, :class:`TorchSegNetBasic`) are plain
``torch.nn`` code, one class per model, taking the same constructor arguments as
our builders (:func:`minitorchseg.models.get_model`) and naming their submodules
as ours do, so that the two ``state_dict()`` have the same keys, in the same
order, with the same shapes: a weight is copied, never renamed or reshaped. Each
twin remembers ``model_name`` and ``model_kwargs``, the arguments that rebuild
ours. Same weights, same outputs: float64 to ~1e-8, float32 to ~1e-4 relative, in
train and eval mode (``tests/test_export.py``).

Optimiser state: ours and torch's ``optimizer.state_dict()`` have the same shape
(``{'state': {index: {...}}, 'param_groups': [{..., 'params': [index, ...]}]}``,
a parameter referred to by its position in the optimiser's parameter list) and
the same per-parameter entries (Adam/AdamW: ``step``, ``exp_avg``,
``exp_avg_sq``; SGD: ``momentum_buffer``, see ``torch/optim/adam.py`` and
``torch/optim/sgd.py``). The conversion turns arrays into tensors (and back),
``step`` into torch's float32 scalar tensor, and completes the parameter groups
with torch's own defaults (``amsgrad=False``, ``maximize=False``, ...). Positions
match when both optimisers are built on ``model.parameters()`` and
``twin.parameters()`` (the same order; frozen parameters included).

Mask R-CNN (:class:`minitorchseg.models.detection.mask_rcnn.MaskRCNN`) has no
twin of ours: ``to_torch`` gives torchvision's own ``MaskRCNN``, with a
ResNet-FPN backbone of torchvision's blocks of the same depth, width and norm
layers (the compact CPU default of ``maskrcnn_resnet_fpn`` included), the same heads
and every threshold and size copied, and ``from_torch`` takes one back (the keys
are torchvision's on both sides).

Training checkpoints: :func:`export_checkpoint` writes a ``.npz`` checkpoint of
``minitorchseg train`` as a ``torch.save`` file (the twin's state dict, the model's
name and arguments, the optimiser state in torch's format, the epoch, the data's
classes and normalisation; :func:`checkpoint_to_torch` lists the keys), and
:func:`import_checkpoint` reads one back after training in PyTorch; these are the
commands ``minitorchseg export`` and ``minitorchseg import``. :func:`to_onnx`
writes a model as an ONNX graph through its twin (needs ``onnx`` and ``onnxscript``).

PyTorch is imported by this module only; ``import minitorchseg`` never imports
it. Without PyTorch, importing this module raises ImportError naming the install
command ``pip install "minitorchseg[torch]"``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from .models import FCN8s, FCN16s, FCN32s, SegNet, SegNetBasic, UNet, bilinear_kernel, get_model
from .models._common import scale_channels
from .models.fcn import FCN_CHANNELS
from .models.segnet import SEGNET_CHANNELS
from .nn import BatchNorm2d
from .nn import Module as _OurModule
from .optim import SGD, Adam, AdamW
from .optim.optimizer import Optimizer as _OurOptimizer
from .serialization import CheckpointError, atomic_write, save
from .train.checkpoint import CHECKPOINT_FORMAT, build_model, load_weights, read_checkpoint

TORCH_INSTALL = 'pip install "minitorchseg[torch]"'
"""The install command for PyTorch as minitorchseg's optional dependency (the ``torch`` extra)."""

try:
    import torch
    import torch.nn.functional as TF
    from torch import nn as tnn
except ImportError as exc:
    raise ImportError(
        f"minitorchseg.export needs PyTorch, which is not installed; install it with: {TORCH_INSTALL} "
        "(or follow https://pytorch.org/get-started for a CUDA build)"
    ) from exc

__all__ = [
    "TORCH_INSTALL", "TWINS",
    "TorchFCN32s", "TorchFCN16s", "TorchFCN8s", "TorchUNet", "TorchSegNet", "TorchSegNetBasic", "TorchDown", "TorchUp",
    "conv_stage", "double_conv", "model_arguments", "to_torch", "from_torch", "load_torch_state_dict",
    "optimizer_name", "optimizer_state_to_torch", "optimizer_state_from_torch",
    "optimizer_to_torch", "optimizer_from_torch", "to_onnx",
    "TORCH_CHECKPOINT_FORMAT", "checkpoint_to_torch", "checkpoint_from_torch", "export_checkpoint",
    "import_checkpoint", "maskrcnn_to_torchvision", "maskrcnn_from_torchvision", "TorchResNetBody",
]


# ----------------------------------------------------------------------------------------- building blocks
def conv_stage(channels: Sequence[int], batch_norm: bool = True, kernel_size: int = 3, padding: int = 1,
               first_padding: int | None = None, bias: bool = True, relu: bool = True) -> tnn.Sequential:
    """Torch twin of :func:`minitorchseg.models.vgg.conv_stage`: (conv → [BatchNorm2d] → [ReLU]) per channel step.

    Conv j sits at index 3j with batch norm and ReLU (its batch norm at 3j + 1),
    at 2j without batch norm: the state-dict names of torchvision's ``vgg16_bn``
    and ``vgg16`` within a stage.
    """
    layers: list[tnn.Module] = []
    for j, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        pad = first_padding if (j == 0 and first_padding is not None) else padding
        layers.append(tnn.Conv2d(cin, cout, kernel_size, padding=pad, bias=bias))
        if batch_norm:
            layers.append(tnn.BatchNorm2d(cout))
        if relu:
            layers.append(tnn.ReLU(inplace=True))
    return tnn.Sequential(*layers)


def double_conv(in_channels: int, out_channels: int, mid_channels: int | None = None,
                batch_norm: bool = True) -> tnn.Sequential:
    """Torch twin of :func:`minitorchseg.models.unet.double_conv`: (conv 3x3 → [BatchNorm2d] → ReLU) twice."""
    mid = out_channels if mid_channels is None else mid_channels
    layers: list[tnn.Module] = []
    for cin, cout in ((in_channels, mid), (mid, out_channels)):
        layers.append(tnn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(tnn.BatchNorm2d(cout))
        layers.append(tnn.ReLU(inplace=True))
    return tnn.Sequential(*layers)


def _he_init_(module: tnn.Module) -> None:
    """Every Conv2d: weight ~ N(0, 2 / fan_in), bias 0 (as ``minitorchseg.models._common.he_init_``)."""
    for m in module.modules():
        if isinstance(m, tnn.Conv2d):
            tnn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                tnn.init.zeros_(m.bias)


def _upsampling(num_classes: int, factor: int, learn: bool) -> tnn.ConvTranspose2d:
    """Transposed conv, kernel 2·factor, stride factor, no bias, bilinear weights; frozen unless ``learn``."""
    layer = tnn.ConvTranspose2d(num_classes, num_classes, 2 * factor, stride=factor, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(bilinear_kernel(num_classes, num_classes, 2 * factor)))
    layer.weight.requires_grad_(learn)
    return layer


def _score(in_channels: int, num_classes: int) -> tnn.Conv2d:
    """1x1 class-scoring convolution, zero-initialised (FCN §4.1)."""
    layer = tnn.Conv2d(in_channels, num_classes, 1)
    tnn.init.zeros_(layer.weight)
    tnn.init.zeros_(layer.bias)
    return layer


def _crop(x: torch.Tensor, offset: int, size: Sequence[int]) -> torch.Tensor:
    """``x[:, :, offset : offset + H, offset : offset + W]`` for ``size = (H, W)`` (Caffe's Crop layer)."""
    return x[:, :, offset:offset + size[0], offset:offset + size[1]]


# ----------------------------------------------------------------------------------------- FCN
class _TorchFCN(tnn.Module):
    """VGG16 stages conv1..conv5 with ceil-mode pools, fc6 (7x7, unpadded), fc7 (1x1), score_fr (stride 32).

    The twin of ``minitorchseg.models.fcn``; conv1_1 pads by 100 and the crop
    offsets (19, 27, 31; 5 and 9 for the skips) are derived in that module's
    docstring (the Caffe reference nets ``voc-fcn{32,16,8}s/net.py``).
    """

    model_name = "fcn"

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None, batch_norm: bool = False, dropout: float = 0.5,
                 learn_upsampling: bool = False):
        super().__init__()
        c1, c2, c3, c4, c5, fc = scale_channels(self.model_name, FCN_CHANNELS, width, channels)
        self.model_kwargs = dict(num_classes=num_classes, in_channels=in_channels, channels=[c1, c2, c3, c4, c5, fc],
                                 batch_norm=batch_norm, dropout=dropout, learn_upsampling=learn_upsampling)
        self.conv1 = conv_stage((in_channels, c1, c1), batch_norm, first_padding=100)
        self.pool1 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.conv2 = conv_stage((c1, c2, c2), batch_norm)
        self.pool2 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.conv3 = conv_stage((c2, c3, c3, c3), batch_norm)
        self.pool3 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.conv4 = conv_stage((c3, c4, c4, c4), batch_norm)
        self.pool4 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.conv5 = conv_stage((c4, c5, c5, c5), batch_norm)
        self.pool5 = tnn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.fc6 = tnn.Conv2d(c5, fc, 7)
        self.relu6 = tnn.ReLU(inplace=True)
        self.drop6 = tnn.Dropout(dropout)
        self.fc7 = tnn.Conv2d(fc, fc, 1)
        self.relu7 = tnn.ReLU(inplace=True)
        self.drop7 = tnn.Dropout(dropout)
        self.score_fr = _score(fc, num_classes)

    def _backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """pool3 (stride 8), pool4 (stride 16) and score_fr (stride 32)."""
        h = self.pool2(self.conv2(self.pool1(self.conv1(x))))
        pool3 = self.pool3(self.conv3(h))
        pool4 = self.pool4(self.conv4(pool3))
        h = self.pool5(self.conv5(pool4))
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        return pool3, pool4, self.score_fr(h)


class TorchFCN32s(_TorchFCN):
    """FCN-32s in PyTorch: score_fr upsampled ×32 (kernel 64), cropped at 19. Arguments as :func:`fcn32s`."""

    model_name = "fcn32s"

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None, batch_norm: bool = False, dropout: float = 0.5,
                 learn_upsampling: bool = False):
        super().__init__(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)
        self.upscore = _upsampling(num_classes, 32, learn_upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        _, _, score_fr = self._backbone(x)
        return _crop(self.upscore(score_fr), 19, x.shape[2:])


class TorchFCN16s(_TorchFCN):
    """FCN-16s in PyTorch: ×2, + score_pool4 (cropped at 5), ×16, cropped at 27. Arguments as :func:`fcn16s`."""

    model_name = "fcn16s"

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None, batch_norm: bool = False, dropout: float = 0.5,
                 learn_upsampling: bool = False):
        super().__init__(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)
        c4 = self.model_kwargs["channels"][3]
        self.upscore2 = _upsampling(num_classes, 2, learn_upsampling)
        self.score_pool4 = _score(c4, num_classes)
        self.upscore16 = _upsampling(num_classes, 16, learn_upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        _, pool4, score_fr = self._backbone(x)
        upscore2 = self.upscore2(score_fr)
        fuse_pool4 = upscore2 + _crop(self.score_pool4(pool4), 5, upscore2.shape[2:])
        return _crop(self.upscore16(fuse_pool4), 27, x.shape[2:])


class TorchFCN8s(_TorchFCN):
    """FCN-8s in PyTorch: as FCN-16s, then ×2, + score_pool3 (cropped at 9), ×8, cropped at 31."""

    model_name = "fcn8s"

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None, batch_norm: bool = False, dropout: float = 0.5,
                 learn_upsampling: bool = False):
        super().__init__(num_classes, in_channels, width, channels, batch_norm, dropout, learn_upsampling)
        c3, c4 = self.model_kwargs["channels"][2:4]
        self.upscore2 = _upsampling(num_classes, 2, learn_upsampling)
        self.score_pool4 = _score(c4, num_classes)
        self.upscore_pool4 = _upsampling(num_classes, 2, learn_upsampling)
        self.score_pool3 = _score(c3, num_classes)
        self.upscore8 = _upsampling(num_classes, 8, learn_upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) → class scores (N, num_classes, H, W)."""
        pool3, pool4, score_fr = self._backbone(x)
        upscore2 = self.upscore2(score_fr)
        fuse_pool4 = upscore2 + _crop(self.score_pool4(pool4), 5, upscore2.shape[2:])
        upscore_pool4 = self.upscore_pool4(fuse_pool4)
        fuse_pool3 = upscore_pool4 + _crop(self.score_pool3(pool3), 9, upscore_pool4.shape[2:])
        return _crop(self.upscore8(fuse_pool3), 31, x.shape[2:])


# ----------------------------------------------------------------------------------------- SegNet
class TorchSegNet(tnn.Module):
    """SegNet in PyTorch: VGG16-bn encoder enc1..enc5, pools with indices, mirrored decoder dec5..dec1, classifier.

    Arguments as :func:`minitorchseg.models.segnet`. Decoder stage s keeps its
    encoder's width and narrows to the next one at its last convolution; the
    unpools get ``output_size`` = the size before the pool, so odd sizes come back.
    """

    model_name = "segnet"

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0,
                 channels: Sequence[int] | None = None):
        super().__init__()
        c1, c2, c3, c4, c5 = scale_channels(self.model_name, SEGNET_CHANNELS, width, channels)
        self.model_kwargs = dict(num_classes=num_classes, in_channels=in_channels, channels=[c1, c2, c3, c4, c5])
        self.enc1 = conv_stage((in_channels, c1, c1))
        self.pool1 = tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc2 = conv_stage((c1, c2, c2))
        self.pool2 = tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc3 = conv_stage((c2, c3, c3, c3))
        self.pool3 = tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc4 = conv_stage((c3, c4, c4, c4))
        self.pool4 = tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc5 = conv_stage((c4, c5, c5, c5))
        self.pool5 = tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool5 = tnn.MaxUnpool2d(2, stride=2)
        self.dec5 = conv_stage((c5, c5, c5, c4))
        self.unpool4 = tnn.MaxUnpool2d(2, stride=2)
        self.dec4 = conv_stage((c4, c4, c4, c3))
        self.unpool3 = tnn.MaxUnpool2d(2, stride=2)
        self.dec3 = conv_stage((c3, c3, c3, c2))
        self.unpool2 = tnn.MaxUnpool2d(2, stride=2)
        self.dec2 = conv_stage((c2, c2, c1))
        self.unpool1 = tnn.MaxUnpool2d(2, stride=2)
        self.dec1 = conv_stage((c1, c1))
        self.classifier = tnn.Conv2d(c1, num_classes, 3, padding=1)
        _he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 32 → class scores (N, num_classes, H, W)."""
        encoders = (self.enc1, self.enc2, self.enc3, self.enc4, self.enc5)
        pools = (self.pool1, self.pool2, self.pool3, self.pool4, self.pool5)
        sizes, indices = [], []
        for enc, pool in zip(encoders, pools):
            x = enc(x)
            sizes.append(x.shape[2:])
            x, idx = pool(x)
            indices.append(idx)
        unpools = (self.unpool5, self.unpool4, self.unpool3, self.unpool2, self.unpool1)
        decoders = (self.dec5, self.dec4, self.dec3, self.dec2, self.dec1)
        for unpool, dec, idx, size in zip(unpools, decoders, reversed(indices), reversed(sizes)):
            x = dec(unpool(x, idx, output_size=size))
        return self.classifier(x)


class TorchSegNetBasic(tnn.Module):
    """SegNet-Basic in PyTorch: 4 × (conv k×k no bias → BN → ReLU → pool), 4 × (unpool → conv → BN), 1x1 classifier.

    Arguments as :func:`minitorchseg.models.segnet_basic`.
    """

    model_name = "segnet_basic"

    def __init__(self, num_classes: int, in_channels: int = 3, channels: int = 64, kernel_size: int = 7):
        super().__init__()
        self.model_kwargs = dict(num_classes=num_classes, in_channels=in_channels, channels=channels,
                                 kernel_size=kernel_size)
        c, k, p = channels, kernel_size, kernel_size // 2

        def encoder(cin: int) -> tnn.Sequential:
            return tnn.Sequential(tnn.Conv2d(cin, c, k, padding=p, bias=False), tnn.BatchNorm2d(c),
                                  tnn.ReLU(inplace=True))

        def decoder() -> tnn.Sequential:
            return tnn.Sequential(tnn.Conv2d(c, c, k, padding=p, bias=False), tnn.BatchNorm2d(c))

        self.enc1, self.pool1 = encoder(in_channels), tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc2, self.pool2 = encoder(c), tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc3, self.pool3 = encoder(c), tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.enc4, self.pool4 = encoder(c), tnn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool4, self.dec4 = tnn.MaxUnpool2d(2, stride=2), decoder()
        self.unpool3, self.dec3 = tnn.MaxUnpool2d(2, stride=2), decoder()
        self.unpool2, self.dec2 = tnn.MaxUnpool2d(2, stride=2), decoder()
        self.unpool1, self.dec1 = tnn.MaxUnpool2d(2, stride=2), decoder()
        self.classifier = tnn.Conv2d(c, num_classes, 1)
        _he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 16 → class scores (N, num_classes, H, W)."""
        sizes, indices = [], []
        for enc, pool in ((self.enc1, self.pool1), (self.enc2, self.pool2), (self.enc3, self.pool3),
                          (self.enc4, self.pool4)):
            x = enc(x)
            sizes.append(x.shape[2:])
            x, idx = pool(x)
            indices.append(idx)
        decoders = ((self.unpool4, self.dec4), (self.unpool3, self.dec3), (self.unpool2, self.dec2),
                    (self.unpool1, self.dec1))
        for (unpool, dec), idx, size in zip(decoders, reversed(indices), reversed(sizes)):
            x = dec(unpool(x, idx, output_size=size))
        return self.classifier(x)


# ----------------------------------------------------------------------------------------- U-Net
class TorchDown(tnn.Module):
    """One contracting step: 2x2 max-pool, then :func:`double_conv`."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        super().__init__()
        self.pool = tnn.MaxPool2d(2)
        self.conv = double_conv(in_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class TorchUp(tnn.Module):
    """One expansive step: upsample ×2, zero-pad to the skip's size, concatenate [skip, up], :func:`double_conv`."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, bilinear: bool = False,
                 batch_norm: bool = True):
        super().__init__()
        if bilinear:
            self.up = tnn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            concat = in_channels + skip_channels
            self.conv = double_conv(concat, out_channels, concat // 2, batch_norm)
        else:
            self.up = tnn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
            self.conv = double_conv(in_channels // 2 + skip_channels, out_channels, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dh, dw = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]   # 0 or 1 each
        x = TF.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])    # (left, right, top, bottom)
        return self.conv(torch.cat([skip, x], dim=1))


class TorchUNet(tnn.Module):
    """U-Net in PyTorch: ``inc``, ``down[0..depth−1]``, ``up[0..depth−1]``, ``outc``. Arguments as :func:`unet`."""

    model_name = "unet"

    def __init__(self, num_classes: int, in_channels: int = 3, base_channels: int = 64, depth: int = 4,
                 bilinear: bool = False, batch_norm: bool = True):
        super().__init__()
        self.model_kwargs = dict(num_classes=num_classes, in_channels=in_channels, base_channels=base_channels,
                                 depth=depth, bilinear=bilinear, batch_norm=batch_norm)
        widths = [base_channels * 2 ** level for level in range(depth)]
        bottom = base_channels * 2 ** depth // (2 if bilinear else 1)
        self.inc = double_conv(in_channels, widths[0], batch_norm=batch_norm)
        self.down = tnn.ModuleList([TorchDown(a, b, batch_norm) for a, b in zip(widths, widths[1:] + [bottom])])
        ups, below = [], bottom
        for level in range(depth - 1, -1, -1):
            out = widths[level] // 2 if bilinear and level > 0 else widths[level]
            ups.append(TorchUp(below, widths[level], out, bilinear, batch_norm))
            below = out
        self.up = tnn.ModuleList(ups)
        self.outc = tnn.Conv2d(base_channels, num_classes, 1)
        _he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C_in, H, W) with H, W ≥ 2^depth → class scores (N, num_classes, H, W)."""
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.up:
            h = up(h, skips.pop())
        return self.outc(h)


TWINS: dict[str, type[tnn.Module]] = {
    "fcn32s": TorchFCN32s,
    "fcn16s": TorchFCN16s,
    "fcn8s": TorchFCN8s,
    "unet": TorchUNet,
    "segnet": TorchSegNet,
    "segnet_basic": TorchSegNetBasic,
}
"""Model name (as :func:`minitorchseg.models.get_model` knows it) → its PyTorch twin class."""


# ----------------------------------------------------------------------------------------- weights
def model_arguments(model: _OurModule) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` with ``get_model(name, **kwargs)`` building a model of ``model``'s architecture.

    Channel widths come back as explicit ``channels`` (a ``width`` is resolved).
    Raises TypeError for a model no twin covers, naming the ones covered.
    """
    if isinstance(model, (FCN32s, FCN16s, FCN8s)):
        name = {FCN32s: "fcn32s", FCN16s: "fcn16s", FCN8s: "fcn8s"}[type(model)]
        return name, dict(num_classes=model.num_classes, in_channels=model.in_channels,
                          channels=list(model.channels), batch_norm=isinstance(model.conv1[1], BatchNorm2d),
                          dropout=float(model.drop6.p), learn_upsampling=bool(model.learn_upsampling))
    if isinstance(model, UNet):
        return "unet", dict(num_classes=model.num_classes, in_channels=model.in_channels,
                            base_channels=model.base_channels, depth=model.depth, bilinear=bool(model.bilinear),
                            batch_norm=isinstance(model.inc[1], BatchNorm2d))
    if isinstance(model, SegNet):
        return "segnet", dict(num_classes=model.num_classes, in_channels=model.in_channels,
                              channels=list(model.channels))
    if isinstance(model, SegNetBasic):
        return "segnet_basic", dict(num_classes=model.num_classes, in_channels=model.in_channels,
                                    channels=model.channels, kernel_size=int(model.enc1[0].kernel_size[0]))
    raise TypeError(
        f"to_torch: no PyTorch twin for a {type(model).__name__}; the models with a twin are "
        f"FCN32s, FCN16s, FCN8s, UNet, SegNet and SegNetBasic (names {', '.join(TWINS)}); MaskRCNN converts to "
        "torchvision's MaskRCNN"
    )


def _float_dtype(state: Mapping[str, np.ndarray]) -> np.dtype | None:
    """The one floating dtype of a state dict's arrays (None when it has none or several)."""
    kinds = {np.dtype(v.dtype) for v in state.values() if np.dtype(v.dtype).kind == "f"}
    return kinds.pop() if len(kinds) == 1 else None


def _check_state(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple], who: str) -> None:
    """ValueError naming the first missing, unexpected or mis-shaped key (before anything is copied)."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(
            f"{who}: the state dict has no {missing[0]!r} (shape {tuple(expected[missing[0]])} expected)"
            + (f" and {len(missing) - 1} more missing key(s)" if len(missing) > 1 else "")
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise ValueError(
            f"{who}: the state dict has key {unexpected[0]!r}, which the model does not have"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            + "; was it saved from another model or with other arguments?"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise ValueError(
                f"{who}: {key!r} has shape {tuple(state[key].shape)} in the state dict, "
                f"but the model expects {tuple(shape)}"
            )


def to_torch(model: _OurModule) -> tnn.Module:
    """The PyTorch twin of ``model`` with its weights and buffers copied, in its dtype and train/eval mode.

    ``model``: FCN-32s/16s/8s, U-Net, SegNet, SegNet-Basic, or Mask R-CNN (to
    torchvision's ``MaskRCNN``, :func:`maskrcnn_to_torchvision`); anything else:
    TypeError. The twin is built on the CPU (move it with ``.to('cuda')``), its
    ``state_dict()`` has ours' keys in ours' order, every value bit-identical
    (float32 stays float32, float64 becomes float64), and ``requires_grad`` is
    ours' (FCN's fixed upsampling stays frozen).
    """
    if type(model).__name__ == "MaskRCNN" and type(model).__module__.startswith("minitorchseg.models.detection"):
        return maskrcnn_to_torchvision(model)
    name, kwargs = model_arguments(model)
    twin = TWINS[name](**kwargs)
    state = model.state_dict()
    dtype = _float_dtype(state)
    if dtype is not None:
        twin.to(getattr(torch, dtype.name))
    _check_state(state, {k: tuple(v.shape) for k, v in twin.state_dict().items()}, "to_torch")
    twin.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    for (_, ours), (_, theirs) in zip(model.named_parameters(), twin.named_parameters()):
        theirs.requires_grad_(ours.requires_grad)
    return twin.train(model.training)


def _numpy_state(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{key: ndarray}`` from torch tensors (any device) or arrays."""
    if not isinstance(state, Mapping):
        raise TypeError(f"from_torch: expected a torch.nn.Module or a state dict (a mapping), got "
                        f"{type(state).__name__}")
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"from_torch: state dict keys must be str, got {key!r}")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        out[key] = np.asarray(value)
    return out


def load_torch_state_dict(model: _OurModule, state_dict: Mapping[str, Any]) -> _OurModule:
    """Copy a torch ``state_dict`` (tensors or arrays) into our ``model``, every key and shape checked first.

    Raises ValueError naming the first missing, unexpected or mis-shaped key, before
    anything is copied. The model takes the state dict's floating dtype (float64
    weights make a float64 model), so the copy is bit-identical. A state dict saved
    from a ``DistributedDataParallel``/``DataParallel`` wrapper (every key starting
    with ``module.``) loads with the prefix removed, as torch's
    ``consume_prefix_in_state_dict_if_present`` does. Returns ``model``.
    """
    state = _numpy_state(state_dict)
    if state and all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in
                                                                           model.state_dict()):
        state = {k[len("module."):]: v for k, v in state.items()}
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    _check_state(state, expected, f"from_torch into {type(model).__name__}")
    dtype = _float_dtype(state)
    if dtype is not None:
        model.to(dtype)
    model.load_state_dict(state, strict=True)
    return model


def from_torch(source, model: str | _OurModule | None = None, **kwargs) -> _OurModule:
    """Our model from a PyTorch twin or a state dict: the reverse of :func:`to_torch`.

    * ``from_torch(twin)``: a twin (one of :data:`TWINS`, or a module carrying
      ``model_name``/``model_kwargs``) rebuilds ours with the twin's arguments;
      torchvision's ``MaskRCNN`` gives ours (:func:`maskrcnn_from_torchvision`); a
      ``DistributedDataParallel`` or ``DataParallel`` wrapper is unwrapped;
    * ``from_torch(state_dict, "unet", num_classes=3, base_channels=16)``: a
      ``{key: tensor}`` into a new model built by :func:`~minitorchseg.models.get_model`;
    * ``from_torch(state_dict_or_module, our_model)``: into an existing model.

    Every weight and buffer is copied bit for bit (dtype kept, see
    :func:`load_torch_state_dict`); ``requires_grad`` of the twin's parameters is
    copied too, and the result is in the twin's train/eval mode (a state dict:
    train mode, as built). Errors: TypeError for a source that is neither, or a
    module that is not a twin when no ``model`` is given; ValueError naming the
    key for a missing, unexpected or mis-shaped entry.
    """
    if isinstance(source, (tnn.parallel.DistributedDataParallel, tnn.DataParallel)):
        source = source.module   # the wrapped twin
    module = source if isinstance(source, tnn.Module) else None
    if module is not None and model is None and type(module).__name__ == "MaskRCNN" \
            and type(module).__module__.startswith("torchvision."):
        if kwargs:
            raise TypeError(f"from_torch: arguments {sorted(kwargs)} given with a torchvision MaskRCNN")
        return maskrcnn_from_torchvision(module)
    if module is not None and model is None:
        name, twin_kwargs = getattr(module, "model_name", None), getattr(module, "model_kwargs", None)
        if name not in TWINS or not isinstance(twin_kwargs, dict):
            raise TypeError(
                f"from_torch: a {type(module).__name__} is not one of minitorchseg's twins "
                f"({', '.join(cls.__name__ for cls in TWINS.values())}); pass model= (a name and its arguments, "
                "or a model to load into)"
            )
        model, kwargs = name, {**twin_kwargs, **kwargs}
    state = module.state_dict() if module is not None else source
    if model is None:
        raise TypeError(
            "from_torch: a state dict does not say which model it holds; pass model= with a name "
            f"({', '.join(TWINS)}) and its arguments (num_classes=...), or a model to load into"
        )
    if isinstance(model, str):
        ours = get_model(model, **kwargs)
    elif isinstance(model, _OurModule):
        if kwargs:
            raise TypeError(f"from_torch: model arguments {sorted(kwargs)} given with an already built model")
        ours = model
    else:
        raise TypeError(f"from_torch: model must be a model name or a minitorchseg Module, got {type(model).__name__}")
    load_torch_state_dict(ours, state)
    if module is not None:
        theirs = dict(module.named_parameters())
        for key, p in ours.named_parameters():
            if key in theirs:
                p.requires_grad_(theirs[key].requires_grad)
        ours.train(module.training)
    return ours


# ----------------------------------------------------------------------------------------- optimisers
_OPTIMIZERS: dict[str, tuple[type[_OurOptimizer], str, tuple[str, ...]]] = {
    # name: (our class, torch.optim class name, the hyper-parameters both have)
    "adam": (Adam, "Adam", ("lr", "betas", "eps", "weight_decay")),
    "adamw": (AdamW, "AdamW", ("lr", "betas", "eps", "weight_decay")),
    "sgd": (SGD, "SGD", ("lr", "momentum", "dampening", "weight_decay", "nesterov")),
}

# Settings torch has and we do not: converting a torch state that uses one is an error, not a silent change.
_TORCH_ONLY = {"amsgrad": False, "maximize": False}


def optimizer_name(optimizer) -> str:
    """``'adam'``, ``'adamw'`` or ``'sgd'`` for one of ours or torch's optimisers; TypeError for any other."""
    for name, (ours, theirs, _) in _OPTIMIZERS.items():
        if type(optimizer) is ours or type(optimizer) is getattr(torch.optim, theirs):
            return name
    raise TypeError(f"optimizer conversion: {type(optimizer).__name__} is not supported; "
                    f"supported: Adam, AdamW and SGD (ours and torch.optim's)")


def _check_name(name: str) -> str:
    if name not in _OPTIMIZERS:
        raise ValueError(f"optimizer conversion: unknown optimizer {name!r}; expected one of {', '.join(_OPTIMIZERS)}")
    return name


def optimizer_state_to_torch(state_dict: Mapping, name: str) -> dict:
    """Our ``optimizer.state_dict()`` → the dict torch's ``optimizer.load_state_dict()`` takes.

    ``name``: ``'adam'``, ``'adamw'`` or ``'sgd'``. Arrays become tensors (copies),
    Adam's ``step`` a float32 scalar tensor (as torch stores it), and each group is
    completed with torch's defaults for the settings we do not have (those of
    ``torch.optim.<Class>(params, **our hyper-parameters)``: ``amsgrad=False``,
    ``maximize=False``, AdamW's ``decoupled_weight_decay=True``, ...).
    """
    _, torch_class, keys = _OPTIMIZERS[_check_name(name)]
    state = {}
    for index, values in state_dict["state"].items():
        entry = {}
        for key, value in values.items():
            if key == "step":
                entry[key] = torch.tensor(float(value), dtype=torch.float32)
            else:
                entry[key] = torch.from_numpy(np.array(value, copy=True))
        state[int(index)] = entry
    groups = []
    for group in state_dict["param_groups"]:
        hyper = {k: group[k] for k in keys if k in group}
        if "betas" in hyper:
            hyper["betas"] = tuple(float(b) for b in hyper["betas"])
        template = getattr(torch.optim, torch_class)([tnn.Parameter(torch.zeros(1))], **hyper).param_groups[0]
        extra = {k: v for k, v in group.items() if k not in template and k != "params"}
        groups.append({**{k: v for k, v in template.items() if k != "params"}, **extra,
                       "params": [int(i) for i in group["params"]]})
    return {"state": state, "param_groups": groups}


def _plain(value):
    """A hyper-parameter as a Python number: torch allows tensors (``lr=torch.tensor(0.01)``); tuples stay tuples."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def optimizer_state_from_torch(state_dict: Mapping, name: str | None = None) -> dict:
    """Torch's ``optimizer.state_dict()`` → the dict our ``optimizer.load_state_dict()`` takes.

    ``name`` (``'adam'``, ``'adamw'``, ``'sgd'``) defaults to what the groups say
    (``betas`` → Adam, or AdamW when ``decoupled_weight_decay``; ``momentum`` → SGD).
    Tensors become arrays, ``step`` an int; the groups keep our hyper-parameters
    (and any extra key such as a scheduler's ``initial_lr``), dropping torch-only
    switches at their defaults. ValueError for a setting we cannot reproduce
    (``amsgrad=True``, ``maximize=True``) or a per-parameter entry we do not know.
    """
    groups = list(state_dict["param_groups"])
    if name is None:
        first = groups[0] if groups else {}
        name = ("adamw" if first.get("decoupled_weight_decay") else "adam") if "betas" in first else \
            "sgd" if "momentum" in first else None
        if name is None:
            raise ValueError("optimizer_state_from_torch: cannot tell the optimizer from the parameter groups "
                             f"(keys {sorted(first)}); pass name='adam', 'adamw' or 'sgd'")
    _, torch_class, keys = _OPTIMIZERS[_check_name(name)]
    known_state = {"adam": {"step", "exp_avg", "exp_avg_sq"}, "adamw": {"step", "exp_avg", "exp_avg_sq"},
                   "sgd": {"momentum_buffer"}}[name]
    template = getattr(torch.optim, torch_class)([tnn.Parameter(torch.zeros(1))]).param_groups[0]
    out_groups = []
    for g, group in enumerate(groups):
        only = dict(_TORCH_ONLY)
        if name in ("adam", "adamw"):   # torch's Adam(decoupled_weight_decay=True) is AdamW
            only["decoupled_weight_decay"] = name == "adamw"
        for key, default in only.items():
            if bool(group.get(key, default)) != default:
                raise ValueError(f"optimizer_state_from_torch: parameter group {g} has {key}={group[key]!r}; "
                                 f"minitorchseg's {torch_class} has only {key}={default!r}")
        group_out = {k: _plain(group[k]) for k in keys if k in group}
        group_out.update({k: v for k, v in group.items() if k not in template and k != "params"})
        group_out["params"] = [int(i) for i in group["params"]]
        out_groups.append(group_out)
    state = {}
    for index, values in state_dict["state"].items():
        unknown = sorted(set(values) - known_state)
        if unknown:
            raise ValueError(f"optimizer_state_from_torch: parameter {index} has state {unknown}, which "
                             f"minitorchseg's {torch_class} does not keep (expected {sorted(known_state)})")
        entry = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                entry[key] = int(value.item()) if key == "step" else value.numpy().copy()
            else:
                entry[key] = int(value) if key == "step" else np.asarray(value).copy()
        state[int(index)] = entry
    return {"state": state, "param_groups": out_groups}


def optimizer_to_torch(optimizer: _OurOptimizer, twin: tnn.Module) -> torch.optim.Optimizer:
    """The torch optimiser (``torch.optim.Adam``/``AdamW``/``SGD``) on ``twin.parameters()`` with ours' state.

    ``optimizer`` must have been built on the model's parameters, in order, in one
    or more groups (as :func:`~minitorchseg.train.make_optimizer` does); the
    twin's parameters are split into groups of the same sizes. ValueError when the
    counts differ.
    """
    name = optimizer_name(optimizer)
    params = list(twin.parameters())
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    if sum(sizes) != len(params):
        raise ValueError(f"optimizer_to_torch: the optimizer holds {sum(sizes)} parameters, the twin has "
                         f"{len(params)}; build the optimizer on model.parameters()")
    groups, start = [], 0
    for size in sizes:
        groups.append({"params": params[start:start + size]})
        start += size
    torch_opt = getattr(torch.optim, _OPTIMIZERS[name][1])(groups)
    torch_opt.load_state_dict(optimizer_state_to_torch(optimizer.state_dict(), name))
    return torch_opt


def optimizer_from_torch(torch_optimizer: torch.optim.Optimizer, model: _OurModule) -> _OurOptimizer:
    """Our Adam/AdamW/SGD on ``model.parameters()`` with the torch optimiser's hyper-parameters and state.

    The reverse of :func:`optimizer_to_torch`; the state arrays take each
    parameter's dtype. ValueError when the parameter counts differ.
    """
    name = optimizer_name(torch_optimizer)
    params = list(model.parameters())
    sizes = [len(g["params"]) for g in torch_optimizer.param_groups]
    if sum(sizes) != len(params):
        raise ValueError(f"optimizer_from_torch: the torch optimizer holds {sum(sizes)} parameters, the model has "
                         f"{len(params)}; it must have been built on twin.parameters()")
    groups, start = [], 0
    for size in sizes:
        groups.append({"params": params[start:start + size]})
        start += size
    ours = _OPTIMIZERS[name][0](groups)
    state = optimizer_state_from_torch(torch_optimizer.state_dict(), name)
    for index, values in state["state"].items():
        dtype = params[index].dtype
        for key, value in values.items():
            if isinstance(value, np.ndarray):
                values[key] = value.astype(dtype, copy=False)
    ours.load_state_dict(state)
    return ours


# ----------------------------------------------------------------------------------------- ONNX
def to_onnx(model: _OurModule, path: str | os.PathLike, input_shape: Sequence[int]) -> None:
    """Write ``model`` as an ONNX graph through its PyTorch twin (``torch.onnx.export``), in eval mode.

    ``input_shape``: ``(N, C_in, H, W)`` of the example input that fixes the
    graph's dtype; the batch, height and width stay dynamic (input ``image``,
    output ``scores``). Needs the ``onnx`` and ``onnxscript`` packages (ImportError
    naming them otherwise), and the model must accept ``input_shape``.
    """
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"to_onnx needs {' and '.join(missing)}, which is not installed: "
                          f"pip install {' '.join(missing)}")
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 4:
        raise ValueError(f"to_onnx: input_shape must be (N, C_in, H, W), got {tuple(input_shape)}")
    twin = to_torch(model).eval()
    example = torch.zeros(shape, dtype=next(twin.parameters()).dtype)
    dims = {0: "N", 2: "H", 3: "W"}
    torch.onnx.export(twin, (example,), os.fspath(path), input_names=["image"], output_names=["scores"],
                      dynamic_axes={"image": dims, "scores": dims})


# ----------------------------------------------------------------------------------------- training checkpoints
TORCH_CHECKPOINT_FORMAT = "minitorchseg-torch-v1"
"""The ``format`` entry of a PyTorch checkpoint written by :func:`export_checkpoint`."""


def _tree_to_torch(obj):
    """Arrays → tensors (copies), NumPy scalars → Python numbers, through dicts, lists and tuples."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _tree_to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree_to_torch(v) for v in obj)
    return obj


def _tree_from_torch(obj):
    """Tensors → NumPy arrays, through dicts, lists and tuples (the reverse of :func:`_tree_to_torch`)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _tree_from_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree_from_torch(v) for v in obj)
    return obj


def checkpoint_to_torch(ckpt: dict, path: str | os.PathLike = "<checkpoint>") -> dict:
    """A training checkpoint (:func:`minitorchseg.train.make_checkpoint`'s dict) → the PyTorch checkpoint dict.

    Keys of the result (``torch.load(path, weights_only=True)`` reads it):

    * ``format``: ``"minitorchseg-torch-v1"``;
    * ``model``: ``{"name", "kwargs"}``, so ``TWINS[name](**kwargs)`` is the twin;
    * ``state_dict``: the twin's state dict (tensors, our keys and order);
    * ``optimizer``: ``{"name": "adam" | "sgd" | ..., "state_dict": torch's format}``
      for ``twin.parameters()``, or None when the checkpoint has no optimiser state;
    * ``epoch``, ``data`` (classes, palette, normalisation, data spec), ``config``,
      ``history``, ``rng``: as in the training checkpoint (arrays as tensors).

    ValueError for a model without a twin (naming the models with one) or weights
    that do not fit the model the checkpoint names.
    """
    name, kwargs = ckpt["model"]["name"], dict(ckpt["model"]["kwargs"])
    if name not in TWINS:
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds a {name!r} model, which has no PyTorch twin; "
                         f"the models with a twin are "
                         f"{', '.join(TWINS)}")
    model = build_model(name, kwargs)
    load_weights(model, ckpt, path)
    twin = to_torch(model)
    optimizer = None
    opt_name = dict(ckpt.get("config") or {}).get("optimizer")
    if ckpt.get("optimizer_state") is not None and opt_name is not None:
        optimizer = {"name": opt_name, "state_dict": optimizer_state_to_torch(ckpt["optimizer_state"], opt_name)}
    return {
        "format": TORCH_CHECKPOINT_FORMAT,
        "model": {"name": name, "kwargs": _tree_to_torch(kwargs)},
        "state_dict": twin.state_dict(),
        "optimizer": optimizer,
        "epoch": int(ckpt["epoch"]),
        "data": _tree_to_torch(ckpt["data"]),
        "config": _tree_to_torch(ckpt.get("config")),
        "history": _tree_to_torch(ckpt.get("history", [])),
        "rng": ckpt.get("rng"),
    }


def checkpoint_from_torch(obj, source: str = "the PyTorch checkpoint") -> dict:
    """A PyTorch checkpoint dict (:func:`checkpoint_to_torch`'s layout, trained on in PyTorch) → a training checkpoint.

    The weights are checked against the model the file names (ValueError naming the
    first missing, unexpected or mis-shaped key); the optimiser state is converted
    back (:func:`optimizer_state_from_torch`) and ``config["optimizer"]`` set to
    its name. ValueError for a dict of another format or a model without a twin.
    """
    if not isinstance(obj, dict) or obj.get("format") != TORCH_CHECKPOINT_FORMAT:
        raise ValueError(f"{source} is not a minitorchseg PyTorch checkpoint (no format {TORCH_CHECKPOINT_FORMAT!r}); "
                         "write one with `minitorchseg export`")
    for key in ("model", "state_dict", "epoch", "data"):
        if key not in obj:
            raise ValueError(f"{source} has no {key!r} entry")
    name, kwargs = obj["model"]["name"], _tree_from_torch(dict(obj["model"]["kwargs"]))
    if name not in TWINS:
        raise ValueError(f"{source} holds a {name!r} model; the models with a PyTorch twin are {', '.join(TWINS)}")
    model = build_model(name, kwargs)
    load_torch_state_dict(model, obj["state_dict"])
    config = dict(_tree_from_torch(obj.get("config") or {}))
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": {"name": name, "kwargs": kwargs},
        "model_state": model.state_dict(),
        "epoch": int(obj["epoch"]),
        "data": _tree_from_torch(obj["data"]),
        "config": config,
        "history": _tree_from_torch(obj.get("history") or []),
    }
    if obj.get("optimizer") is not None:
        opt = obj["optimizer"]
        ckpt["optimizer_state"] = optimizer_state_from_torch(opt["state_dict"], opt["name"])
        config["optimizer"] = opt["name"]
    if obj.get("rng") is not None:
        ckpt["rng"] = obj["rng"]
    return ckpt


def export_checkpoint(path: str | os.PathLike, out_path: str | os.PathLike) -> dict:
    """Read the training checkpoint ``path`` (``.npz``) and write ``out_path`` with ``torch.save`` (atomically).

    Returns the dict written (:func:`checkpoint_to_torch`). Errors: see
    :func:`~minitorchseg.train.read_checkpoint` and :func:`checkpoint_to_torch`.
    """
    obj = checkpoint_to_torch(read_checkpoint(path), path)
    atomic_write(out_path, lambda fh: torch.save(obj, fh))
    return obj


def _torch_load_error(where: str, exc: Exception) -> str:
    """One line saying why ``torch.load(weights_only=True)`` refused ``where``: a pickled object it will not
    run (a whole ``nn.Module`` saved with ``torch.save(model)``), or the first line of torch's message."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (f"import: {where!r} holds a pickled Python object ({found.group(1)}), which torch.load with "
                f"weights_only=True will not run; save tensors, not modules: the dict `minitorchseg export` "
                f"writes, {{'model': {{'name': ..., 'kwargs': ...}}, 'state_dict': model.state_dict(), ...}}")
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"import: {where!r} cannot be read by torch.load ({type(exc).__name__}: {first})"


def import_checkpoint(path: str | os.PathLike, out_path: str | os.PathLike) -> dict:
    """Read the PyTorch checkpoint ``path`` and write the training checkpoint ``out_path`` (``.npz``).

    ``path`` is read with ``torch.load(weights_only=True, map_location="cpu")``
    (no arbitrary code runs). Returns the checkpoint written. FileNotFoundError for
    a missing file, CheckpointError (a ValueError) for a file torch cannot read,
    and the errors of :func:`checkpoint_from_torch`.
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise FileNotFoundError(f"import: no PyTorch checkpoint at {where!r}")
    try:
        obj = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as exc:   # torch raises pickle, zip and runtime errors alike for an unreadable file
        raise CheckpointError(_torch_load_error(where, exc)) from exc
    ckpt = checkpoint_from_torch(obj, f"PyTorch checkpoint {where!r}")
    save(ckpt, out_path)
    return ckpt


# ----------------------------------------------------------------------------------------- Mask R-CNN
# Ours (minitorchseg.models.detection) and torchvision's Mask R-CNN share their attribute names, submodule names
# and state-dict keys (torchvision/models/detection/mask_rcnn.py, faster_rcnn.py, rpn.py, roi_heads.py,
# backbone_utils.py), so one reader below describes either, and the two builders make the same network from it.
_RESNETS = {("BasicBlock", (2, 2, 2, 2)): "resnet18", ("BasicBlock", (3, 4, 6, 3)): "resnet34",
            ("Bottleneck", (3, 4, 6, 3)): "resnet50"}


def _maskrcnn_spec(model) -> dict:
    """The architecture and settings of a Mask R-CNN (ours or torchvision's), read from its modules.

    ValueError for a part neither side can rebuild (another backbone, a box head other
    than TwoMLPHead, norm layers of another kind, RoIPool pooling), naming it. The
    group count of every GroupNorm is recorded by its channel count
    (``group_sizes``), so a factory such as ``group_norm_layer()`` is rebuilt exactly.
    """
    who = f"Mask R-CNN conversion ({type(model).__module__.split('.')[0]})"
    body, fpn = model.backbone.body, model.backbone.fpn
    layers = [name for name in ("layer1", "layer2", "layer3", "layer4") if name in dict(body.named_children())]
    blocks = type(getattr(body, layers[0])[0]).__name__
    counts = tuple(len(getattr(body, name)) for name in layers)
    resnet = next((name for (kind, full), name in _RESNETS.items() if kind == blocks and full[:len(counts)] == counts),
                  None)
    if resnet is None:
        raise ValueError(f"{who}: a ResNet of {blocks}s {counts} per stage is not one of "
                         f"{', '.join(_RESNETS.values())}")
    norm = type(body.bn1).__name__
    if norm not in ("FrozenBatchNorm2d", "BatchNorm2d", "GroupNorm"):
        raise ValueError(f"{who}: the backbone's norm layer {norm} is not FrozenBatchNorm2d, BatchNorm2d or GroupNorm")
    extra = type(fpn.extra_blocks).__name__ if fpn.extra_blocks is not None else None
    if extra != "LastLevelMaxPool" or len(fpn.inner_blocks[0]) != 1:
        raise ValueError(f"{who}: only an FPN without norm layers and with LastLevelMaxPool is supported, "
                         f"got extra block {extra}")
    heads = model.roi_heads
    for pool_name in ("box_roi_pool", "mask_roi_pool"):
        if getattr(getattr(heads, pool_name), "roi_op", "align") != "align":
            raise ValueError(f"{who}: roi_heads.{pool_name} pools with RoIPool; torchvision's Mask R-CNN has only "
                             "RoIAlign")
    if type(heads.box_head).__name__ != "TwoMLPHead":
        raise ValueError(f"{who}: box head {type(heads.box_head).__name__} is not a TwoMLPHead")
    mask_norms = {type(block[1]).__name__ for block in heads.mask_head if len(block) == 3}
    if len(mask_norms) > 1 or not mask_norms <= {"FrozenBatchNorm2d", "BatchNorm2d", "GroupNorm"}:
        raise ValueError(f"{who}: the mask head's norm layers {sorted(mask_norms)} are not one of "
                         "FrozenBatchNorm2d, BatchNorm2d or GroupNorm")
    group_sizes: dict[int, int] = {}
    for m in model.modules():
        if type(m).__name__ == "GroupNorm":
            if group_sizes.setdefault(int(m.num_channels), int(m.num_groups)) != int(m.num_groups):
                raise ValueError(f"{who}: GroupNorms of {m.num_channels} channels with different group counts")

    def pool(p) -> dict:
        return dict(featmap_names=list(p.featmap_names), output_size=tuple(p.output_size),
                    sampling_ratio=int(p.sampling_ratio), canonical_scale=int(p.canonical_scale),
                    canonical_level=int(p.canonical_level))

    def shape(layer) -> tuple[int, ...]:
        return tuple(layer.weight.shape)

    rpn, t = model.rpn, model.transform
    return {
        "resnet": resnet, "norm": norm, "mask_norm": mask_norms.pop() if mask_norms else None,
        "group_sizes": group_sizes,
        "base_channels": shape(body.conv1)[0],
        "return_layers": dict(body.return_layers),
        "in_channels_list": [shape(block[0])[1] for block in fpn.inner_blocks],
        "out_channels": int(model.backbone.out_channels),
        "anchor_sizes": tuple(tuple(int(v) for v in s) for s in rpn.anchor_generator.sizes),
        "aspect_ratios": tuple(tuple(float(v) for v in r) for r in rpn.anchor_generator.aspect_ratios),
        "rpn_head": (shape(rpn.head.cls_logits)[1], shape(rpn.head.cls_logits)[0], len(rpn.head.conv)),
        "box_roi_pool": pool(heads.box_roi_pool), "mask_roi_pool": pool(heads.mask_roi_pool),
        "box_head": (shape(heads.box_head.fc6)[1], shape(heads.box_head.fc6)[0]),
        "box_predictor": (shape(heads.box_predictor.cls_score)[1], shape(heads.box_predictor.cls_score)[0]),
        "mask_head": (shape(heads.mask_head[0][0])[1], [shape(block[0])[0] for block in heads.mask_head],
                      int(heads.mask_head[0][0].dilation[0])),
        "mask_predictor": (*shape(heads.mask_predictor.conv5_mask)[:2], shape(heads.mask_predictor.mask_fcn_logits)[0]),
        "settings": dict(
            min_size=tuple(int(v) for v in t.min_size), max_size=int(t.max_size),
            image_mean=[float(v) for v in t.image_mean], image_std=[float(v) for v in t.image_std],
            size_divisible=int(t.size_divisible), fixed_size=t.fixed_size,
            rpn_pre_nms_top_n_train=int(rpn._pre_nms_top_n["training"]),
            rpn_pre_nms_top_n_test=int(rpn._pre_nms_top_n["testing"]),
            rpn_post_nms_top_n_train=int(rpn._post_nms_top_n["training"]),
            rpn_post_nms_top_n_test=int(rpn._post_nms_top_n["testing"]),
            rpn_nms_thresh=float(rpn.nms_thresh), rpn_score_thresh=float(rpn.score_thresh),
            rpn_fg_iou_thresh=float(rpn.proposal_matcher.high_threshold),
            rpn_bg_iou_thresh=float(rpn.proposal_matcher.low_threshold),
            rpn_batch_size_per_image=int(rpn.fg_bg_sampler.batch_size_per_image),
            rpn_positive_fraction=float(rpn.fg_bg_sampler.positive_fraction),
            box_score_thresh=float(heads.score_thresh), box_nms_thresh=float(heads.nms_thresh),
            box_detections_per_img=int(heads.detections_per_img),
            box_fg_iou_thresh=float(heads.proposal_matcher.high_threshold),
            box_bg_iou_thresh=float(heads.proposal_matcher.low_threshold),
            box_batch_size_per_image=int(heads.fg_bg_sampler.batch_size_per_image),
            box_positive_fraction=float(heads.fg_bg_sampler.positive_fraction),
            bbox_reg_weights=tuple(float(w) for w in heads.box_coder.weights),
        ),
    }


def _torchvision():
    try:
        import torchvision
        from torchvision.models.detection import backbone_utils, faster_rcnn, mask_rcnn, rpn
    except ImportError as exc:
        raise ImportError(f"Mask R-CNN conversion needs torchvision, which is not installed: {TORCH_INSTALL}") from exc
    return torchvision, backbone_utils, faster_rcnn, mask_rcnn, rpn


class TorchResNetBody(tnn.Module):
    """torchvision's ResNet (``torchvision/models/resnet.py``) up to layer4, every width scaled by ``base_channels``.

    The children ``conv1, bn1, relu, maxpool, layer1..layer4`` and their keys are
    torchvision's, built from torchvision's own ``BasicBlock``/``Bottleneck``; at
    ``base_channels=64`` it is torchvision's ResNet without ``avgpool``/``fc``. The
    twin of ``minitorchseg.models.resnet.ResNet(base_channels=...)`` inside a
    detection backbone (its ``IntermediateLayerGetter`` runs the children in order).
    """

    def __init__(self, block, layers: Sequence[int], norm_layer, base_channels: int):
        super().__init__()
        from torchvision.models.resnet import conv1x1

        self.inplanes = base_channels
        self.conv1 = tnn.Conv2d(3, base_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(base_channels)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        for k, blocks in enumerate(layers):
            planes, stride = base_channels * 2 ** k, 1 if k == 0 else 2
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = tnn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                            norm_layer(planes * block.expansion))
            stage = [block(self.inplanes, planes, stride, downsample, norm_layer=norm_layer)]
            self.inplanes = planes * block.expansion
            stage += [block(self.inplanes, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
            stages.append(tnn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages


def _build_maskrcnn(spec: dict, torch_side: bool):
    """torchvision's (``torch_side``) or our MaskRCNN with the architecture and settings of ``spec``.

    Both libraries name their classes alike, module for module (``anchor_utils.AnchorGenerator``,
    ``rpn.RPNHead``, ``faster_rcnn.TwoMLPHead``/``FastRCNNPredictor``,
    ``mask_rcnn.MaskRCNNHeads``/``MaskRCNNPredictor``/``MaskRCNN``, ``backbone_utils.BackboneWithFPN``,
    ``MultiScaleRoIAlign``, ``LastLevelMaxPool``), so only the imports differ. The
    torch side's backbone is torchvision's ResNet at torchvision's width (64), else
    :class:`TorchResNetBody`.
    """
    if torch_side:
        torchvision, backbone_utils, faster_rcnn, mask_rcnn, rpn = _torchvision()
        from torchvision.models import resnet as tv_resnet
        from torchvision.models.detection import anchor_utils
        from torchvision.ops import MultiScaleRoIAlign
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
        from torchvision.ops.misc import FrozenBatchNorm2d

        norm_classes = {"FrozenBatchNorm2d": FrozenBatchNorm2d, "BatchNorm2d": tnn.BatchNorm2d,
                        "GroupNorm": tnn.GroupNorm}
    else:
        from .models import resnet as our_resnet
        from .models.detection import anchor_utils, backbone_utils, faster_rcnn, mask_rcnn, rpn
        from .nn import BatchNorm2d as OurBatchNorm2d
        from .nn import GroupNorm
        from .ops.feature_pyramid_network import LastLevelMaxPool
        from .ops.misc import FrozenBatchNorm2d
        from .ops.poolers import MultiScaleRoIAlign

        norm_classes = {"FrozenBatchNorm2d": FrozenBatchNorm2d, "BatchNorm2d": OurBatchNorm2d, "GroupNorm": GroupNorm}

    def norm_layer(kind: str | None):
        if kind is None:
            return None
        if kind == "GroupNorm":
            return lambda c: norm_classes["GroupNorm"](spec["group_sizes"][c], c)
        return norm_classes[kind]

    if not torch_side:
        resnet = getattr(our_resnet, spec["resnet"])(weights=None, norm_layer=norm_layer(spec["norm"]),
                                                     base_channels=spec["base_channels"])
    elif spec["base_channels"] == 64:
        resnet = getattr(torchvision.models, spec["resnet"])(weights=None, norm_layer=norm_layer(spec["norm"]))
    else:
        block, counts = next((getattr(tv_resnet, kind), full) for (kind, full), name in _RESNETS.items()
                             if name == spec["resnet"])
        resnet = TorchResNetBody(block, counts, norm_layer(spec["norm"]), spec["base_channels"])
    backbone = backbone_utils.BackboneWithFPN(resnet, spec["return_layers"], spec["in_channels_list"],
                                              spec["out_channels"], extra_blocks=LastLevelMaxPool())
    mask_in, mask_layers, dilation = spec["mask_head"]
    return mask_rcnn.MaskRCNN(
        backbone, num_classes=None,
        rpn_anchor_generator=anchor_utils.AnchorGenerator(spec["anchor_sizes"], spec["aspect_ratios"]),
        rpn_head=rpn.RPNHead(*spec["rpn_head"]),
        box_roi_pool=MultiScaleRoIAlign(**spec["box_roi_pool"]), box_head=faster_rcnn.TwoMLPHead(*spec["box_head"]),
        box_predictor=faster_rcnn.FastRCNNPredictor(*spec["box_predictor"]),
        mask_roi_pool=MultiScaleRoIAlign(**spec["mask_roi_pool"]),
        mask_head=mask_rcnn.MaskRCNNHeads(mask_in, mask_layers, dilation, norm_layer=norm_layer(spec["mask_norm"])),
        mask_predictor=mask_rcnn.MaskRCNNPredictor(*spec["mask_predictor"]),
        **spec["settings"])


def _copy_flags(source, target) -> None:
    """requires_grad per parameter name, and the train/eval mode."""
    flags = {name: p.requires_grad for name, p in source.named_parameters()}
    for name, p in target.named_parameters():
        if name in flags:
            p.requires_grad_(flags[name])
    target.train(source.training)


def maskrcnn_to_torchvision(model) -> tnn.Module:
    """Our :class:`~minitorchseg.models.detection.mask_rcnn.MaskRCNN` → torchvision's, weights copied bit for bit.

    The backbone is torchvision's ResNet (18, 34 or 50; at a width other than
    torchvision's 64, :class:`TorchResNetBody` of torchvision's blocks) with the same
    norm layers (GroupNorm group counts included), returned layers and FPN; anchors,
    heads, poolers and every threshold and size of the transform, RPN and RoI heads
    are ours. ``requires_grad``
    (the frozen stages) and the train/eval mode are copied. ValueError for a part
    torchvision cannot build (see :func:`_maskrcnn_spec`).
    """
    theirs = _build_maskrcnn(_maskrcnn_spec(model), torch_side=True)
    state = model.state_dict()
    dtype = _float_dtype(state)
    if dtype is not None:
        theirs.to(getattr(torch, dtype.name))
    _check_state(state, {k: tuple(v.shape) for k, v in theirs.state_dict().items()}, "to_torch (Mask R-CNN)")
    theirs.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    _copy_flags(model, theirs)
    return theirs


def maskrcnn_from_torchvision(module: tnn.Module) -> _OurModule:
    """torchvision's ``MaskRCNN`` → ours with the same architecture, settings and weights (the reverse)."""
    ours = _build_maskrcnn(_maskrcnn_spec(module), torch_side=False)
    load_torch_state_dict(ours, module.state_dict())
    _copy_flags(module, ours)
    return ours
