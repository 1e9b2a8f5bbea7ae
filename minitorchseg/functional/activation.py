"""softmax, log_softmax and dropout.

Softmax is computed stably by subtracting the maximum (log-sum-exp):
``log_softmax(x)_i = x_i − m − log Σ_j exp(x_j − m)`` with ``m = max_j x_j``.
"""

from __future__ import annotations

from ..autograd import Function
from ..random import default_generator
from ..tensor import Tensor
from .shape import _dim

__all__ = ["softmax", "log_softmax", "dropout"]


def _log_softmax(xp, a, dim):
    shifted = a - a.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


class Softmax(Function):
    """y = softmax(x); backward: dx = y ⊙ (dy − Σ_j dy_j y_j)."""

    @staticmethod
    def forward(ctx, a, dim):
        out = ctx.xp.exp(_log_softmax(ctx.xp, a, dim))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return out * (grad - (grad * out).sum(axis=ctx.dim, keepdims=True)), None


class LogSoftmax(Function):
    """y = log_softmax(x); backward: dx = dy − softmax(x) · Σ_j dy_j."""

    @staticmethod
    def forward(ctx, a, dim):
        out = _log_softmax(ctx.xp, a, dim)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad - ctx.xp.exp(out) * grad.sum(axis=ctx.dim, keepdims=True), None


class Dropout(Function):
    """Zero each element with probability p and scale the rest by 1/(1−p) (inverted dropout)."""

    @staticmethod
    def forward(ctx, a, p):
        keep = default_generator().random(a.shape) >= p
        mask = ctx.xp.asarray(keep.astype(a.dtype) / (1 - p))
        ctx.save_for_backward(mask)
        return a * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_arrays
        return grad * mask, None


def softmax(input: Tensor, dim: int) -> Tensor:
    return Softmax.apply(input, _dim("softmax", dim, input.ndim))


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return LogSoftmax.apply(input, _dim("log_softmax", dim, input.ndim))


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return Dropout.apply(input, p)
