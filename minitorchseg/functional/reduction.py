"""Reductions: sum, mean, max (with ``dim`` and ``keepdim``), argmax, and matmul/linear.

``dim`` may be None (all axes), an int or a tuple of ints; negative dims count
from the end. The backward of a reduction broadcasts the gradient back over the
reduced axes: the adjoint of a sum is a broadcast.
"""

from __future__ import annotations

import builtins

from ..autograd import Function, unbroadcast
from ..tensor import Tensor

__all__ = ["sum", "mean", "max", "argmax", "matmul", "linear"]


def _axes(name: str, dim, ndim: int) -> tuple[int, ...]:
    """``dim`` as a sorted tuple of non-negative axes; a clear error when out of range."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = []
    for d in dims:
        if not isinstance(d, int) or not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            span = builtins.max(ndim, 1)
            raise ValueError(
                f"{name}: dim {d!r} is out of range for a tensor with {ndim} dimensions; allowed "
                f"{-span}..{span - 1} (inclusive)"
            )
        axes.append(d % builtins.max(ndim, 1))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}: dim {dim!r} repeats an axis")
    return tuple(sorted(axes))


def _keep_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.shape, ctx.axes = a.shape, axes
        return a.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keep_shape(ctx.shape, ctx.axes))
        return ctx.xp.broadcast_to(grad, ctx.shape).copy(), None, None


class Max(Function):
    """Maximum over ``axes``; the gradient goes to the first maximal element of each slice.

    (torch sends the gradient of a full reduction, ``x.max()``, evenly to all tied
    maxima; with unique maxima, which the tests draw, both rules agree.)
    """

    @staticmethod
    def forward(ctx, a, axes, keepdim):
        xp = ctx.xp
        # Move the reduced axes to the end and flatten them, so one argmax finds each slice's winner.
        kept = tuple(i for i in range(a.ndim) if i not in axes)
        moved = xp.transpose(a, kept + axes).reshape(tuple(a.shape[i] for i in kept) + (-1,))
        index = moved.argmax(axis=-1)
        values = xp.take_along_axis(moved, index[..., None], axis=-1)[..., 0]
        ctx.save_for_backward(index)
        ctx.shape, ctx.axes, ctx.kept = a.shape, axes, kept
        if keepdim:
            values = values.reshape(_keep_shape(a.shape, axes))
        return values

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        (index,) = ctx.saved_arrays
        shape, axes, kept = ctx.shape, ctx.axes, ctx.kept
        reduced = 1
        for i in axes:
            reduced *= shape[i]
        moved = xp.zeros(index.shape + (reduced,), dtype=grad.dtype)
        xp.put_along_axis(moved, index[..., None], grad.reshape(index.shape)[..., None], axis=-1)
        moved = moved.reshape(tuple(shape[i] for i in kept) + tuple(shape[i] for i in axes))
        inverse = [0] * len(shape)
        for position, axis in enumerate(kept + axes):
            inverse[axis] = position
        return xp.transpose(moved, inverse).copy(), None, None


class MatMul(Function):
    """``a @ b`` with NumPy's matmul broadcasting (1-D operands promoted and squeezed).

    Backward: dA = dC·Bᵀ, dB = Aᵀ·dC, summed over broadcast batch axes.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        a, b = ctx.saved_arrays
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad  # restore the axes that matmul squeezed away for 1-D operands
        if a.ndim == 1 and b.ndim == 1:
            g = g.reshape(1, 1)
        elif a.ndim == 1:
            g = xp.expand_dims(g, -2)
        elif b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g @ xp.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


class Linear(Function):
    """``y = x Wᵀ + b`` with x (*, in), W (out, in), b (out,)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = x @ weight.T
        return y + bias if bias is not None else y

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        gx = grad @ weight if ctx.needs_input_grad[0] else None
        gw = gb = None
        if ctx.needs_input_grad[1]:
            gw = grad.reshape(-1, grad.shape[-1]).T @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.reshape(-1, grad.shape[-1]).sum(axis=0)
        return gx, gw, gb


def sum(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(input, _axes("sum", dim, input.ndim), keepdim)


def mean(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if input.dtype.kind != "f":
        raise TypeError(f"mean: expected a floating-point input, got {input.dtype}")
    axes = _axes("mean", dim, input.ndim)
    count = 1
    for i in axes:
        count *= input.shape[i]
    return Sum.apply(input, axes, keepdim) / count


def max(input: Tensor, dim=None, keepdim: bool = False):
    """``max(x)`` → the largest value; ``max(x, dim)`` → ``(values, indices)`` as torch."""
    if input.numel() == 0:
        raise ValueError(f"max: expected a non-empty tensor, got shape {input.shape}")
    axes = _axes("max", dim, input.ndim)
    values = Max.apply(input, axes, keepdim)
    if dim is None:
        return values
    return values, argmax(input, dim, keepdim)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the first maximum (flat index when ``dim`` is None); not differentiable."""
    data = input.data
    if dim is None:
        out = data.reshape(-1).argmax()
    else:
        (axis,) = _axes("argmax", dim, input.ndim)
        out = data.argmax(axis=axis)
        if keepdim:
            out = input.backend.xp.expand_dims(out, axis)
    return Tensor._from_op(out.astype("int64"), input.backend, None)


def matmul(input, other) -> Tensor:
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul: expected two Tensors")
    if input.ndim == 0 or other.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got {input.shape} and {other.shape}")
    k_a = input.shape[-1]
    k_b = other.shape[0] if other.ndim == 1 else other.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {input.shape} and {other.shape} do not align (inner dimensions {k_a} != {k_b})"
        )
    return MatMul.apply(input, other)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``; input (*, in_features), weight (out, in), bias (out,)."""
    if weight.ndim != 2 or input.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input has shape {input.shape} and weight {weight.shape}; "
            "expected weight (out_features, in_features) with in_features == input.shape[-1]"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    return Linear.apply(input, weight, bias)
