"""Differentiable functions with torch's names and argument orders (``import minitorchseg.functional as F``).

Each function validates its arguments, then applies one op class (a
:class:`minitorchseg.autograd.Function`) whose forward and backward sit side by
side in the module named below.
"""

from .activation import dropout, log_softmax, softmax
from .conv import conv2d, conv2d_relu, conv_transpose2d
from .dice import dice_loss
from .elementwise import (
    abs,
    add,
    cast,
    clamp,
    clone,
    div,
    exp,
    log,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
)
from .interpolate import interpolate
from .loss import binary_cross_entropy_with_logits, cross_entropy, nll_loss, smooth_l1_loss
from .normalization import batch_norm, batch_norm_relu, group_norm
from .pooling import max_pool2d, max_unpool2d
from .reduction import argmax, linear, matmul, max, mean, sum
from .shape import cat, flatten, index, pad, permute, reshape, squeeze, stack, transpose, unsqueeze

__all__ = [
    "abs", "add", "argmax", "batch_norm", "batch_norm_relu", "binary_cross_entropy_with_logits", "cast", "cat",
    "clamp", "clone",
    "cross_entropy", "div", "dropout", "exp", "flatten", "index", "linear", "log", "log_softmax", "matmul",
    "max", "mean", "mul", "neg", "nll_loss", "pad", "permute", "pow", "relu", "reshape", "sigmoid",
    "smooth_l1_loss", "softmax", "sqrt", "squeeze", "stack", "sub", "sum", "tanh", "transpose", "unsqueeze",
    "dice_loss", "conv2d", "conv2d_relu", "conv_transpose2d",
    "max_pool2d", "max_unpool2d", "interpolate", "group_norm",
]
