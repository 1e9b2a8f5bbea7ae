"""minitorchseg: a from-scratch deep-learning segmentation library.

A tiny autograd engine (:class:`Tensor`), kernels in Numba (``minitorchseg.kernels``),
layers, optimisers, segmentation models, metrics and a command-line tool.

``functional``, ``nn``, ``ops`` and ``optim`` are imported with the package;
``models``, ``metrics``, ``data``, ``train`` and ``kmeans`` on first use
(``mts.models.unet(...)`` works after ``import minitorchseg as mts``), so that
importing the engine does not load matplotlib, Pillow or the data readers.
"""

import importlib

import numpy as np

from . import functional, nn, ops, optim
from .autograd import enable_grad, is_grad_enabled, no_grad
from .backend import cuda_available, get_backend
from .functional import cat, stack
from .random import manual_seed
from .serialization import load, save
from .tensor import Tensor, arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like

float32 = np.float32
float64 = np.float64
int64 = np.int64

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("models", "metrics", "data", "train", "kmeans")


def __getattr__(name: str):
    """Import ``minitorchseg.<name>`` on first access for the lazily loaded subpackages (PEP 562)."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand",
    "cat", "stack", "no_grad", "enable_grad", "is_grad_enabled", "manual_seed", "save", "load",
    "cuda_available", "get_backend", "functional", "nn", "ops", "optim", "float32", "float64", "int64",
    "models", "metrics", "data", "train", "kmeans",
]
