"""Segmentation models: FCN-32s/16s/8s, U-Net, SegNet and SegNet-Basic, a registry, ``summary`` and VGG16 weights.

Every model maps ``(N, C_in, H, W)`` images to ``(N, num_classes, H, W)`` class
scores (logits: the soft-max is part of the loss), and its ``state_dict()``
names and array layouts are those of the same network written in PyTorch.
"""

from .fcn import FCN8s, FCN16s, FCN32s, bilinear_kernel, fcn8s, fcn16s, fcn32s
from .registry import get_model, list_models
from .segnet import SegNet, SegNetBasic, segnet, segnet_basic
from .summary import summary
from .unet import UNet, unet
from .vgg import load_vgg16, torchvision_vgg16_key_map

__all__ = [
    "FCN32s", "FCN16s", "FCN8s", "fcn32s", "fcn16s", "fcn8s", "bilinear_kernel",
    "UNet", "unet", "SegNet", "SegNetBasic", "segnet", "segnet_basic",
    "get_model", "list_models", "summary", "load_vgg16", "torchvision_vgg16_key_map",
]
