"""minitorchseg: a from-scratch deep-learning segmentation library.

A tiny autograd engine (:class:`Tensor`), kernels in Numba (package ``kernels``),
layers, optimisers, segmentation models, metrics and a command-line tool.
"""

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

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand",
    "cat", "stack", "no_grad", "enable_grad", "is_grad_enabled", "manual_seed", "save", "load",
    "cuda_available", "get_backend", "functional", "nn", "ops", "optim", "float32", "float64", "int64",
]
