"""Elementwise ops with NumPy broadcasting: arithmetic, exp/log, activations.

Binary ops accept a Tensor and a Python number (or array); the number takes the
tensor's dtype, as in torch. Backward un-broadcasts each gradient to its
input's shape (:func:`minitorchseg.autograd.unbroadcast`).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, unbroadcast
from ..tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "clamp",
    "relu", "sigmoid", "tanh", "cast", "clone",
]


def _pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors on one device; a plain number takes the other's dtype."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a, b
    if isinstance(a, Tensor):
        return a, _constant(b, a)
    if isinstance(b, Tensor):
        return _constant(a, b), b
    raise TypeError(f"expected at least one Tensor operand, got {type(a).__name__} and {type(b).__name__}")


def _constant(value, like: Tensor) -> Tensor:
    if isinstance(value, (bool, int, float, np.number)):
        return Tensor(like.backend.xp.asarray(value, dtype=like.dtype), device=like.device)
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return Tensor(value, device=like.device)
    raise TypeError(f"unsupported operand of type {type(value).__name__} (expected a Tensor, number or array)")


def _check_broadcast(name: str, a: Tensor, b: Tensor) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx, grad):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_arrays
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """``a ** b``: d/da = b·a^(b−1), d/db = a^b·log(a) (only where a > 0 is it defined)."""

    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_arrays
        xp = ctx.xp
        ga = unbroadcast(grad * b * a ** (b - 1), a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            log_a = xp.log(xp.where(a > 0, a, 1))
            gb = unbroadcast(grad * out * log_a, b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad / (2 * out)


class Abs(Function):
    """``|a|``; the gradient at 0 is 0 (torch's sign(0) = 0)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return ctx.xp.abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        return grad * ctx.xp.sign(a)


class Clamp(Function):
    """``min(max(a, lo), hi)``; the gradient passes where lo ≤ a ≤ hi (torch's rule at the bounds)."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.bounds = lo, hi
        return ctx.xp.clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_arrays
        lo, hi = ctx.bounds
        mask = ctx.xp.ones(a.shape, dtype=bool)
        if lo is not None:
            mask &= a >= lo
        if hi is not None:
            mask &= a <= hi
        return grad * mask, None, None


class ReLU(Function):
    """``max(a, 0)``; gradient 1 where a > 0, else 0 (0 at the kink, as torch).

    The backward reads the mask from the *output* (``max(a, 0) > 0`` exactly when
    ``a > 0``), as torch's ``threshold_backward`` does: the input is not kept, so
    in conv → batch norm → ReLU → conv the batch norm's output is freed as soon as
    the ReLU has read it (the ReLU's output is kept by the next layer anyway).
    Kernels: ``kernels/{cpu,cuda}/relu.py`` (one parallel pass each way).
    """

    @staticmethod
    def forward(ctx, a):
        out = ctx.kernels.relu_forward(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return ctx.kernels.relu_backward(grad, out)


class Sigmoid(Function):
    """``1 / (1 + e^−a)``, computed without overflow for either sign; σ' = σ(1 − σ)."""

    @staticmethod
    def forward(ctx, a):
        xp = ctx.xp
        e = xp.exp(-xp.abs(a))
        out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = ctx.xp.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_arrays
        return grad * (1 - out * out)


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def add(input, other) -> Tensor:
    a, b = _pair(input, other)
    _check_broadcast("add", a, b)
    return Add.apply(a, b)


def sub(input, other) -> Tensor:
    a, b = _pair(input, other)
    _check_broadcast("sub", a, b)
    return Sub.apply(a, b)


def mul(input, other) -> Tensor:
    a, b = _pair(input, other)
    _check_broadcast("mul", a, b)
    return Mul.apply(a, b)


def div(input, other) -> Tensor:
    a, b = _pair(input, other)
    _check_broadcast("div", a, b)
    return Div.apply(a, b)


def neg(input: Tensor) -> Tensor:
    return Neg.apply(input)


def pow(input, exponent) -> Tensor:
    a, b = _pair(input, exponent)
    _check_broadcast("pow", a, b)
    return Pow.apply(a, b)


def exp(input: Tensor) -> Tensor:
    return Exp.apply(input)


def log(input: Tensor) -> Tensor:
    return Log.apply(input)


def sqrt(input: Tensor) -> Tensor:
    return Sqrt.apply(input)


def abs(input: Tensor) -> Tensor:
    return Abs.apply(input)


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(input, min, max)


def relu(input: Tensor) -> Tensor:
    return ReLU.apply(input)


def sigmoid(input: Tensor) -> Tensor:
    return Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    return Tanh.apply(input)


def cast(input: Tensor, dtype) -> Tensor:
    """``input`` converted to ``dtype`` (differentiable between float dtypes)."""
    return Cast.apply(input, np.dtype(dtype))


def clone(input: Tensor) -> Tensor:
    return Clone.apply(input)
