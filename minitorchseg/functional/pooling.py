"""max_pool2d and max_unpool2d: the differentiable ops and their torch-named functions.

The two are duals and share their scatter: max-pool's backward adds the upstream
gradient into the input plane at the saved argmax indices
(``kernels.max_pool2d_backward``), which is max-unpool's forward with addition
instead of assignment (``kernels.max_unpool2d_forward``); max-unpool's backward
gathers at the same indices. Both kernels run one plane per thread.

Indices are flat offsets ``ih·W + iw`` into each ``H×W`` plane (int64), as in
torch. Shapes: input ``(N, C, H, W)`` or one unbatched image ``(C, H, W)``.
Every argument is checked here, before any work, so the kernels only ever see
valid geometry. max_unpool2d's index values are checked by its kernel as the
scatter reads them (a pass of their own took longer than the scatter): an index
outside the output plane raises the same ValueError, and nothing is returned.
"""

from __future__ import annotations

import numpy as np

from minitorchseg.kernels.geometry import pair, pool_output_size, unpool_default_size

from ..autograd import Function
from ..tensor import Tensor

__all__ = ["MaxPool2dFn", "MaxUnpool2dFn", "max_pool2d", "max_unpool2d"]


class MaxPool2dFn(Function):
    """``out, indices = max_pool2d(x)``; x (N, C, H, W) or (C, H, W), arguments already checked.

    backward: ``grad_x.plane.flat[indices] += grad_out`` (overlapping windows add up).
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        out, indices = ctx.kernels.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(indices)
        ctx.input_hw = tuple(x.shape[2:])
        if ctx.unbatched:
            return out[0], indices[0]
        return out, indices

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_arrays
        grad_x = None
        if ctx.needs_input_grad[0]:
            if ctx.unbatched:
                grad_out = grad_out[None]
            grad_x = ctx.kernels.max_pool2d_backward(grad_out, indices, ctx.input_hw)
            if ctx.unbatched:
                grad_x = grad_x[0]
        return grad_x, None, None, None, None, None


class MaxUnpool2dFn(Function):
    """``out = max_unpool2d(x, indices)`` of size ``output_hw``; arguments already checked (index values by the kernel).

    backward: ``grad_x = grad_out.plane.flat[indices]`` (a gather; no gradient for the indices).
    """

    @staticmethod
    def forward(ctx, x, indices, output_hw):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x, indices = x[None], indices[None]
        out = ctx.kernels.max_unpool2d_forward(x, indices, output_hw)
        ctx.save_for_backward(indices)
        return out[0] if ctx.unbatched else out

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_arrays
        grad_x = None
        if ctx.needs_input_grad[0]:
            if ctx.unbatched:
                grad_out = grad_out[None]
            grad_x = ctx.kernels.max_unpool2d_backward(grad_out, indices)
            if ctx.unbatched:
                grad_x = grad_x[0]
        return grad_x, None, None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_input(op: str, input) -> None:
    """A float32/float64 Tensor of shape (N, C, H, W) or (C, H, W) with C, H, W ≥ 1."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input: expected a Tensor, got {type(input).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"{op}: input: expected a float32 or float64 tensor, got dtype {input.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input: expected a 4-D (N, C, H, W) or 3-D (C, H, W) tensor, got shape {input.shape}")
    if min(input.shape[-3:]) < 1:
        raise ValueError(f"{op}: input: expected non-empty channel and spatial dimensions, got shape {input.shape}")


def _check_pair(op: str, value, name: str, minimum: int) -> tuple[int, int]:
    result = pair(value, f"{op}: {name}")
    if min(result) < minimum:
        raise ValueError(f"{op}: {name}: expected values ≥ {minimum}, got {value!r}")
    return result


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max-pooling as ``torch.nn.functional.max_pool2d``; with ``return_indices`` also the argmax.

    input (N, C, H, W) or (C, H, W) → out of shape (N, C, Ho, Wo) with, per dim,
    ``Ho = (H + 2p − d(k−1) − 1 + (s−1 if ceil_mode)) // s + 1``, minus one when
    ceil_mode makes the last window start at or past ``H + p`` (it must start
    inside the image or the left padding)::

        out[n, c, oh, ow] = max over in-bounds taps x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]

    ``stride`` defaults to ``kernel_size``; padding must be ≤ kernel_size // 2 and
    is never selected (as if −inf). indices (int64, same shape) hold the flat
    offset ``ih·W + iw`` of the chosen tap in its plane. Ties pick the first tap in
    row-major order; a NaN in the window wins (the last NaN is reported).
    """
    op = "max_pool2d"
    _check_input(op, input)
    kernel_size = _check_pair(op, kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else _check_pair(op, stride, "stride", 1)
    padding = _check_pair(op, padding, "padding", 0)
    dilation = _check_pair(op, dilation, "dilation", 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{op}: ceil_mode: expected a bool, got {ceil_mode!r}")
    if any(p > k // 2 for p, k in zip(padding, kernel_size)):
        raise ValueError(
            f"{op}: padding: expected at most half the kernel size per dimension (padding ≤ kernel_size // 2), "
            f"got padding={padding} with kernel_size={kernel_size}; allowed 0..{kernel_size[0] // 2} for the "
            f"height and 0..{kernel_size[1] // 2} for the width (inclusive)"
        )
    in_hw = input.shape[-2:]
    out_hw = tuple(
        pool_output_size(size, k, s, p, d, bool(ceil_mode))
        for size, k, s, p, d in zip(in_hw, kernel_size, stride, padding, dilation)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: the output would be {out_hw[0]}x{out_hw[1]} for an input of {in_hw[0]}x{in_hw[1]} "
            f"(kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}, "
            f"ceil_mode={bool(ceil_mode)}); expected every output size ≥ 1"
        )
    out, indices = MaxPool2dFn.apply(input, kernel_size, stride, padding, dilation, bool(ceil_mode))
    return (out, indices) if return_indices else out


def _unpool_output_hw(op: str, input_hw, kernel_size, stride, padding, output_size) -> tuple[int, int]:
    """torch's ``_unpool_output_size``: the default size, or ``output_size`` checked against it."""
    default = tuple(unpool_default_size(n, k, s, p) for n, k, s, p in zip(input_hw, kernel_size, stride, padding))
    if output_size is None:
        out_hw = default
    else:
        try:
            length = len(output_size)
        except TypeError:
            raise TypeError(f"{op}: output_size: expected a sequence of 2 or 4 ints, got {output_size!r}") from None
        if length == 4:
            output_size = output_size[2:]
        if len(output_size) != 2:
            raise ValueError(
                f"{op}: output_size should be a sequence containing 2 or 4 elements, but it has a length of "
                f"'{length}'"
            )
        sizes = []
        for size in output_size:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
                raise TypeError(f"{op}: output_size: expected ints, got {output_size!r}")
            sizes.append(int(size))
        for d, side in enumerate(("height", "width")):
            min_size = default[d] - stride[d]
            max_size = default[d] + stride[d]
            if not (min_size < sizes[d] < max_size):
                raise ValueError(
                    f"{op}: output_size: got the {side} {sizes[d]}; allowed {max(min_size + 1, 0)}.."
                    f"{max_size - 1} (inclusive: within stride − 1 = {stride[d] - 1} of the default {default[d]} "
                    f"for an input {side} of {input_hw[d]}, kernel_size={kernel_size[d]}, stride={stride[d]}, "
                    f"padding={padding[d]}); in torch's words, bounds excluded: invalid output_size "
                    f'"{output_size}" (dim {d} must be between {min_size} and {max_size})'
                )
        out_hw = tuple(sizes)
    for d in range(2):
        if out_hw[d] < 0:
            raise ValueError(
                f"{op}: output_size must contain non-negative spatial dimensions, but got output_size[{d}]={out_hw[d]} "
                f"(the {('height', 'width')[d]}); allowed ≥ 0"
            )
    return out_hw


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of max_pool2d, as ``torch.nn.functional.max_unpool2d``.

    input, indices (N, C, H, W) or (C, H, W) → zeros of (N, C, Ho, Wo) with
    ``out[n, c].flat[indices[n, c, i, j]] = input[n, c, i, j]``.
    Default size ``Ho = (H − 1)·s + k − 2p`` (stride defaults to kernel_size);
    ``output_size`` ((Ho, Wo) or (N, C, Ho, Wo)) may pick any size strictly
    between ``default − s`` and ``default + s`` per dim.

    Indices are decoded with the *output* width: after pooling an odd-sized map,
    pass ``output_size=x.shape`` (the size before pooling), or values land in the
    wrong place. Example: pooling a 5×5 map with k = s = 2 keeps x[1, 0] as index
    5; unpooled to the default 4×4 it lands at (1, 1); with ``output_size=(5, 5)``
    it lands back at (1, 0). Duplicate indices (overlapping windows): the value
    last in C-order wins. Every index must lie in ``[0, Ho·Wo)``, else ValueError.
    """
    op = "max_unpool2d"
    _check_input(op, input)
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: indices: expected a Tensor, got {type(indices).__name__}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{op}: indices: expected an integer (int64) tensor, got dtype {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(
            f"{op}: indices: expected the input's shape {input.shape}, got {indices.shape}"
        )
    if indices.device != input.device:
        raise ValueError(f"{op}: indices: expected device {input.device!r} (the input's), got {indices.device!r}")
    kernel_size = _check_pair(op, kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else _check_pair(op, stride, "stride", 1)
    padding = _check_pair(op, padding, "padding", 0)
    out_hw = _unpool_output_hw(op, input.shape[-2:], kernel_size, stride, padding, output_size)
    index_data = indices.data if indices.dtype == np.int64 else indices.data.astype(np.int64)
    # each index value is checked against the plane by the kernel, in the scatter's pass (ValueError)
    if index_data is not indices.data:
        indices = Tensor._from_op(index_data, indices.backend, None)
    return MaxUnpool2dFn.apply(input, indices, out_hw)
