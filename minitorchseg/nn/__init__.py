"""Layers with torch's names, parameter names, weight layouts and default initialisations."""

from . import init
from .containers import ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .layers import BatchNorm2d, CrossEntropyLoss, Dropout, GroupNorm, Identity, Linear, ReLU, Sigmoid
from .module import Module, Parameter
from .pooling import MaxPool2d, MaxUnpool2d
from .upsampling import Upsample

__all__ = [
    "init", "Module", "Parameter", "Sequential", "ModuleList", "Identity", "Linear", "ReLU", "Sigmoid",
    "Dropout", "BatchNorm2d", "GroupNorm", "CrossEntropyLoss", "Conv2d", "ConvTranspose2d",
    "MaxPool2d", "MaxUnpool2d", "Upsample",
]
