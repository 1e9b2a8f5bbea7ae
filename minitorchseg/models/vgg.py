"""VGG16's convolutional stages (shared by FCN and SegNet) and the loader of torchvision's ImageNet weights.

VGG16 (Simonyan & Zisserman, 2015, configuration D) is five stages of 3x3
convolutions (padding 1, so a stage keeps the size), each followed by a 2x2
max-pool that halves it::

    stage        1        2         3              4              5
    convs     64, 64   128, 128  256, 256, 256  512, 512, 512  512, 512, 512
    size       H        H/2       H/4            H/8            H/16     → pool5: H/32

then three fully connected layers (fc6 25088 → 4096 on pool5's 512x7x7, fc7
4096 → 4096, fc8 → 1000 classes). FCN and SegNet both start from these 13
convolutions trained on ImageNet; :func:`load_vgg16` copies them (and, for FCN,
fc6/fc7 as convolutions) from torchvision's ``vgg16``/``vgg16_bn`` state dict.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np

from ..nn import BatchNorm2d, Conv2d, Module, ReLU, Sequential

__all__ = ["VGG16_STAGES", "conv_stage", "torchvision_vgg16_key_map", "load_vgg16"]

VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
"""(output channels, number of 3x3 convolutions) of VGG16's five stages."""


def conv_stage(channels: Sequence[int], batch_norm: bool = True, kernel_size: int = 3, padding: int = 1,
               first_padding: int | None = None, bias: bool = True, relu: bool = True) -> Sequential:
    """``len(channels) − 1`` layers of conv k×k → [BatchNorm2d] → [ReLU], channels ``c0 → c1 → ... → cn``.

    ``channels = (3, 64, 64)`` is VGG16's first stage. The positions inside the
    Sequential are the state-dict names: with batch norm and ReLU, conv j sits at
    index 3j and its batch norm at 3j + 1 (torchvision's ``vgg16_bn`` layout within
    a stage); without batch norm, conv j at 2j. ``first_padding`` overrides the
    padding of the first convolution only (FCN's conv1_1 pads by 100).
    """
    layers: list[Module] = []
    for j, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        pad = first_padding if (j == 0 and first_padding is not None) else padding
        layers.append(Conv2d(cin, cout, kernel_size, padding=pad, bias=bias))
        if batch_norm:
            layers.append(BatchNorm2d(cout))
        if relu:
            layers.append(ReLU(inplace=True))
    return Sequential(*layers)


def torchvision_vgg16_key_map(stage_names: Sequence[str], batch_norm: bool, source_batch_norm: bool
                              ) -> OrderedDict[str, str]:
    """``{our key: torchvision key}`` for the 13 convolutions (and their batch norms) of VGG16.

    torchvision's ``features`` is one Sequential; a conv is followed by a ReLU
    (``vgg16``) or a BatchNorm2d and a ReLU (``vgg16_bn``), and each stage ends in
    a MaxPool2d, which also takes an index. The convolutions therefore sit at::

        stage              1        2         3             4             5
        vgg16        features.0, 2  5, 7     10, 12, 14    17, 19, 21    24, 26, 28
        vgg16_bn     features.0, 3  7, 10    14, 17, 20    24, 27, 30    34, 37, 40   (batch norm at +1)

    Ours: conv j of stage s is ``{stage_names[s]}.{3j}`` with batch norm (its batch
    norm at ``3j + 1``) or ``.{2j}`` without (:func:`conv_stage`). Batch-norm
    entries are ``weight``, ``bias``, ``running_mean``, ``running_var``,
    ``num_batches_tracked``. When only the model has batch norm, only the
    convolutions are mapped.
    """
    if len(stage_names) != len(VGG16_STAGES):
        raise ValueError(f"torchvision_vgg16_key_map: expected {len(VGG16_STAGES)} stage names, got {stage_names}")
    if source_batch_norm and not batch_norm:
        raise ValueError(
            "load_vgg16: the state dict is vgg16_bn's (it has batch norm) but the model has no batch norm; "
            "build the model with batch_norm=True, or load torchvision's plain vgg16"
        )
    mapping: OrderedDict[str, str] = OrderedDict()
    theirs = 0
    for name, (_, num_convs) in zip(stage_names, VGG16_STAGES):
        for j in range(num_convs):
            ours = 3 * j if batch_norm else 2 * j
            for p in ("weight", "bias"):
                mapping[f"{name}.{ours}.{p}"] = f"features.{theirs}.{p}"
            if source_batch_norm:
                for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                    mapping[f"{name}.{ours + 1}.{p}"] = f"features.{theirs + 1}.{p}"
            theirs += 3 if source_batch_norm else 2
        theirs += 1  # the stage's MaxPool2d
    return mapping


def load_vgg16(model: Module, state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """Copy torchvision's ``vgg16`` or ``vgg16_bn`` weights (a ``{name: ndarray}``) into the VGG encoder of ``model``.

    ``model`` names its five VGG stages in ``model.vgg_stage_names`` (SegNet:
    ``enc1``..``enc5``; FCN: ``conv1``..``conv5``) and must be built at the paper's
    width with 3 input channels. The mapping of the 13 convolutions is
    :func:`torchvision_vgg16_key_map`. If the model has ``fc6``/``fc7`` (FCN) and
    the state dict has the classifier, the fully connected layers become
    convolutions, as in the FCN paper (§3.1, "convolutionalization")::

        fc6.weight = classifier.0.weight.reshape(4096, 512, 7, 7)   # Linear on flatten(pool5) ≡ 7x7 conv
        fc7.weight = classifier.3.weight.reshape(4096, 4096, 1, 1)   # Linear ≡ 1x1 conv
        (biases copied as they are)

    ``flatten`` of a ``(512, 7, 7)`` map is C-ordered (channel, row, column), the
    same order as the reshaped weight, so the 7x7 convolution at one position
    computes exactly the Linear layer. Returns the list of our keys that were loaded.
    """
    stage_names = getattr(model, "vgg_stage_names", None)
    if stage_names is None:
        raise TypeError(f"load_vgg16: {type(model).__name__} has no VGG16 encoder (no vgg_stage_names attribute)")
    first = getattr(model, stage_names[0])
    batch_norm = isinstance(first[1], BatchNorm2d)
    source_batch_norm = "features.1.running_mean" in state_dict
    mapping = torchvision_vgg16_key_map(stage_names, batch_norm, source_batch_norm)
    own = model.state_dict()
    arrays: dict[str, np.ndarray] = {}
    for ours, theirs in mapping.items():
        if theirs not in state_dict:
            raise KeyError(f"load_vgg16: the state dict has no {theirs!r} (needed for {ours!r}); "
                           "expected torchvision's vgg16 or vgg16_bn state dict")
        arrays[ours] = np.asarray(state_dict[theirs])
    if hasattr(model, "fc6") and "classifier.0.weight" in state_dict:
        for ours, theirs in (("fc6", "classifier.0"), ("fc7", "classifier.3")):
            weight = np.asarray(state_dict[f"{theirs}.weight"])
            shape = own[f"{ours}.weight"].shape
            arrays[f"{ours}.weight"] = weight.reshape(shape) if weight.size == np.prod(shape) else weight
            arrays[f"{ours}.bias"] = np.asarray(state_dict[f"{theirs}.bias"])
            mapping[f"{ours}.weight"], mapping[f"{ours}.bias"] = f"{theirs}.weight", f"{theirs}.bias"
    for ours, value in arrays.items():
        if value.shape != own[ours].shape:
            source = mapping.get(ours, ours)
            raise ValueError(
                f"load_vgg16: {source!r} has shape {value.shape} but {type(model).__name__}'s {ours!r} expects "
                f"{own[ours].shape}; load ImageNet weights into a model of the paper's width with in_channels=3"
            )
    model.load_state_dict(arrays, strict=False)
    return list(arrays)
