"""Ops that move numbers without computing new ones: reshape, permute, cat, pad, indexing.

Each backward is the inverse movement: reshape back, the inverse permutation,
split, crop (or scatter-add, for padding modes that read a pixel twice), and
scatter-add for indexing (an index may select the same element twice).
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..tensor import Tensor

__all__ = [
    "reshape", "flatten", "permute", "transpose", "unsqueeze", "squeeze",
    "cat", "stack", "pad", "index",
]


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inverse = tuple(int(i) for i in np.argsort(dims))
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse), None


class Cat(Function):
    """Concatenate along ``dim``; backward splits the gradient at the same offsets."""

    @staticmethod
    def forward(ctx, dim, *arrays):
        ctx.dim = dim
        ctx.sizes = [a.shape[dim] for a in arrays]
        return ctx.xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        offsets = np.cumsum(ctx.sizes)[:-1]
        return (None, *ctx.xp.split(grad, offsets, axis=ctx.dim))


class Pad(Function):
    """Pad the last ``len(pad)//2`` dims; ``pad = (left_last, right_last, left_prev, right_prev, ...)``.

    'constant' copies the input into the middle of a filled array (backward crops).
    'reflect', 'replicate' and 'circular' read some input pixels more than once:
    their forward gathers through an index map made by padding ``arange`` with
    NumPy's matching mode, and their backward scatter-adds through the same map.
    """

    @staticmethod
    def forward(ctx, a, pad_width, mode, value):
        xp = ctx.xp
        ctx.shape, ctx.mode = a.shape, mode
        if mode == "constant":
            out = xp.full(tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, pad_width)), value, dtype=a.dtype)
            ctx.window = tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, pad_width))
            out[ctx.window] = a
            return out
        numpy_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
        index = np.pad(np.arange(a.size).reshape(a.shape), pad_width, mode=numpy_mode)
        ctx.index = xp.asarray(index.reshape(-1))
        return a.reshape(-1)[ctx.index].reshape(index.shape)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        if ctx.mode == "constant":
            return grad[ctx.window], None, None, None
        size = int(np.prod(ctx.shape))
        flat = xp.bincount(ctx.index, weights=grad.reshape(-1), minlength=size)
        return flat.astype(grad.dtype).reshape(ctx.shape), None, None, None


def _is_basic(index) -> bool:
    """True for NumPy *basic* indexing (ints, slices, None, ...): no element is picked twice."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in items)


class Index(Function):
    """``a[index]`` with NumPy indexing; backward writes the gradient into zeros at ``index``.

    Basic indexing (slices, ints: FCN's crops) picks each element at most once, so
    ``full[index] = grad`` is the adjoint; advanced indexing (integer arrays) may
    repeat an element, so it scatter-adds with ``np.add.at`` (much slower: 28 ms
    for the gradient of FCN-8s' final crop, 4x11x176x240 out of 4x11x248x312,
    against 1.3 ms for the assignment).
    """

    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.index, ctx.dtype = a.shape, index, a.dtype
        out = a[index]
        return out if isinstance(out, type(a)) else ctx.xp.asarray(out)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        full = xp.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic(ctx.index):
            full[ctx.index] = grad
        elif xp is np:
            np.add.at(full, ctx.index, grad)
        else:  # cupy
            xp.add.at(full, ctx.index, grad)
        return full, None


def _axis_name(axis: int, ndim: int) -> str:
    """``"the width (dimension 3)"`` for the last two axes of an image batch, ``"dimension 1"`` otherwise."""
    names = {ndim - 1: "the width", ndim - 2: "the height"} if ndim >= 3 else {}
    return f"{names[axis]} (dimension {axis})" if axis in names else f"dimension {axis}"


def _dim(name: str, dim: int, ndim: int) -> int:
    if not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise ValueError(
            f"{name}: dim {dim!r} is out of range for {ndim} dimensions; allowed {-ndim}..{ndim - 1} (inclusive)"
        )
    return dim % ndim


def reshape(input: Tensor, shape) -> Tensor:
    shape = tuple(int(s) for s in shape)
    known = math.prod(s for s in shape if s != -1)
    if shape.count(-1) > 1 or (-1 not in shape and known != input.numel()) or (
        -1 in shape and (known == 0 or input.numel() % known)
    ):
        raise ValueError(
            f"reshape: shape {shape} is invalid for input of shape {input.shape} ({input.numel()} elements)"
        )
    return Reshape.apply(input, shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return reshape(input, (1,))
    start, end = _dim("flatten", start_dim, input.ndim), _dim("flatten", end_dim, input.ndim)
    merged = 1
    for n in input.shape[start : end + 1]:
        merged *= n
    return reshape(input, input.shape[:start] + (merged,) + input.shape[end + 1 :])


def permute(input: Tensor, dims) -> Tensor:
    dims = tuple(_dim("permute", d, input.ndim) for d in dims)
    if sorted(dims) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of 0..{input.ndim - 1}")
    return Permute.apply(input, dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(input.ndim))
    d0, d1 = _dim("transpose", dim0, input.ndim), _dim("transpose", dim1, input.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, tuple(dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    d = _dim("unsqueeze", dim, input.ndim + 1)
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


def squeeze(input: Tensor, dim=None) -> Tensor:
    if dim is None:
        return reshape(input, tuple(n for n in input.shape if n != 1))
    d = _dim("squeeze", dim, input.ndim)
    if input.shape[d] != 1:
        return input
    return reshape(input, input.shape[:d] + input.shape[d + 1 :])


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    first = tensors[0]
    d = _dim("cat", dim, first.ndim)
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or t.shape[:d] + t.shape[d + 1 :] != first.shape[:d] + first.shape[d + 1 :]:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}; expected {first.shape} except in dimension {d}"
            )
    return Cat.apply(d, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape} like tensor 0")
    d = _dim("stack", dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad as ``torch.nn.functional.pad``: ``pad`` lists (left, right) pairs from the last dim backwards.

    Example: ``pad(x, (1, 2))`` adds 1 column on the left and 2 on the right of
    the last dim; ``pad(x, (1, 1, 2, 2))`` also adds 2 rows above and below.
    Modes 'constant' (with ``value``), 'reflect', 'replicate', 'circular'.
    """
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(isinstance(p, int) for p in pad):
        raise ValueError(f"pad: expected an even number (≤ 2·{input.ndim}) of ints, got {pad}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding is not supported, got {pad}")
    pad_width = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        size = input.shape[axis]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                f"pad: reflect padding ({lo}, {hi}) must be smaller than dimension {axis}'s size {size}: allowed "
                f"0..{size - 1} (inclusive) on each side of {_axis_name(axis, input.ndim)}"
            )
        if mode in ("replicate", "circular") and size == 0:
            raise ValueError(f"pad: {mode} padding of an empty dimension {axis}")
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError(
                f"pad: circular padding ({lo}, {hi}) wraps around more than once (size {size}): allowed 0..{size} "
                f"(inclusive) on each side of {_axis_name(axis, input.ndim)}"
            )
        pad_width[axis] = (lo, hi)
    return Pad.apply(input, tuple(pad_width), mode, value)


def index(input: Tensor, key) -> Tensor:
    """``input[key]``: ints, slices, None, Ellipsis, boolean masks and integer arrays (NumPy rules)."""
    if isinstance(key, Tensor):
        key = key.data
    elif isinstance(key, tuple):
        key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
    elif isinstance(key, list):
        key = input.backend.asarray(key)
    return Index.apply(input, key)
