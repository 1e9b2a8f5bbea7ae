"""conv2d and conv_transpose2d: the differentiable ops and their torch-named functions.

The two ops are each other's adjoint, and their backward passes say so:

* conv2d's input gradient is a transposed convolution of the upstream gradient
  (``kernels.conv2d_backward_input`` calls ``conv_transpose2d_forward``);
* conv_transpose2d's input gradient is a convolution of the upstream gradient
  (``kernels.conv_transpose2d_backward_input`` calls ``conv2d_forward``);
* both weight gradients correlate the op's input with the upstream gradient
  (``Σ_{n,y,x}``), with the roles of the two swapped for the transpose;
* both bias gradients are ``Σ_{n,y,x} grad_out[n, o, y, x]`` (``kernels.conv2d_backward_bias``); the
  forward kernels add the bias themselves, to each block while it is in cache.

Shapes (``g`` = groups): conv2d ``x (N, Cin, H, W)``, ``weight (Cout, Cin/g, kh, kw)``;
conv_transpose2d ``x (N, Cin, H, W)``, ``weight (Cin, Cout/g, kh, kw)``; ``bias (Cout,)``.
A 3-D input ``(Cin, H, W)`` is one unbatched image, as in torch. Every argument
is checked here, before any work, so the kernels only ever see valid geometry.
"""

from __future__ import annotations

import numpy as np

from minitorchseg.kernels.geometry import conv_transpose_output_size, pair

from ..autograd import Function
from ..tensor import Tensor
from .shape import pad as _pad

__all__ = ["Conv2dFn", "ConvTranspose2dFn", "conv2d", "conv2d_relu", "conv_transpose2d"]


class Conv2dFn(Function):
    """``out = conv2d(x, weight) + bias``, then ReLU when ``relu``; x (N, Cin, H, W) or (Cin, H, W), arguments
    already checked."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, relu=False):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        out = ctx.kernels.conv2d_forward(x, weight, stride, padding, dilation, groups, bias, relu)
        ctx.save_for_backward(x, weight, out if relu else None)
        ctx.geometry = stride, padding, dilation, groups
        ctx.has_bias = bias is not None
        return out[0] if ctx.unbatched else out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, out = ctx.saved_arrays
        stride, padding, dilation, groups = ctx.geometry
        if out is not None:         # through ReLU first: relu_backward's mask, as a separate ReLU's backward
            grad_out = ctx.kernels.relu_backward(grad_out[None] if ctx.unbatched else grad_out, out)
        elif ctx.unbatched:
            grad_out = grad_out[None]
        # one copy here when grad_out is a view (a concatenation's gradient arrives as channel slices), rather
        # than one in each of the two kernels below
        grad_out = ctx.xp.ascontiguousarray(grad_out)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.conv2d_backward_input(
                grad_out, weight, x.shape[2:], stride, padding, dilation, groups
            )
            if ctx.unbatched:
                grad_x = grad_x[0]
        if ctx.needs_input_grad[1]:
            grad_w = ctx.kernels.conv2d_backward_weight(
                x, grad_out, weight.shape[2:], stride, padding, dilation, groups
            )
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = ctx.kernels.conv2d_backward_bias(grad_out)
        return grad_x, grad_w, grad_b, None, None, None, None, None


class ConvTranspose2dFn(Function):
    """``out = conv_transpose2d(x, weight) + bias``; x (N, Cin, H, W) or (Cin, H, W), arguments already checked."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding, groups, dilation):
        ctx.unbatched = x.ndim == 3
        if ctx.unbatched:
            x = x[None]
        out = ctx.kernels.conv_transpose2d_forward(x, weight, stride, padding, output_padding, groups, dilation,
                                                   bias)
        ctx.save_for_backward(x, weight)
        ctx.geometry = stride, padding, groups, dilation
        ctx.has_bias = bias is not None
        return out[0] if ctx.unbatched else out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_arrays
        stride, padding, groups, dilation = ctx.geometry
        grad_out = ctx.xp.ascontiguousarray(grad_out[None] if ctx.unbatched else grad_out)   # once, as above
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.conv_transpose2d_backward_input(grad_out, weight, stride, padding, groups, dilation)
            H, W = x.shape[2:]
            if grad_x.shape[2:] != (H, W):  # output_padding ≥ stride: rows past H belong to no input pixel
                grad_x = ctx.xp.ascontiguousarray(grad_x[:, :, :H, :W])
            if ctx.unbatched:
                grad_x = grad_x[0]
        if ctx.needs_input_grad[1]:
            grad_w = ctx.kernels.conv_transpose2d_backward_weight(
                x, grad_out, weight.shape[2:], stride, padding, groups, dilation
            )
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = ctx.kernels.conv2d_backward_bias(grad_out)
        return grad_x, grad_w, grad_b, None, None, None, None, None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_tensors(op: str, input, weight, bias) -> None:
    """Types, dtypes and ranks of input, weight and bias."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input: expected a Tensor, got {type(input).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"{op}: input: expected a float32 or float64 tensor, got dtype {input.dtype}")
    if input.ndim not in (3, 4):
        raise ValueError(
            f"{op}: input: expected a 4-D (N, C, H, W) or 3-D (C, H, W) tensor, got shape {input.shape}"
        )
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight: expected a Tensor, got {type(weight).__name__}")
    if weight.dtype != input.dtype:
        raise TypeError(f"{op}: weight: expected dtype {input.dtype} (the input's), got {weight.dtype}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight: expected a 4-D tensor, got shape {weight.shape}")
    if any(n < 1 for n in weight.shape):
        raise ValueError(f"{op}: weight: expected every dimension ≥ 1, got shape {weight.shape}")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias: expected a Tensor or None, got {type(bias).__name__}")
        if bias.dtype != input.dtype:
            raise TypeError(f"{op}: bias: expected dtype {input.dtype} (the input's), got {bias.dtype}")


def _check_geometry(op: str, stride, dilation, groups) -> tuple[tuple[int, int], tuple[int, int], int]:
    """stride and dilation as positive pairs, groups a positive int."""
    stride = pair(stride, f"{op}: stride")
    dilation = pair(dilation, f"{op}: dilation")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride: expected positive values, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation: expected positive values, got {dilation}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups: expected a positive int, got {groups!r}")
    return stride, dilation, groups


def _check_bias_shape(op: str, bias, out_channels: int) -> None:
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"{op}: bias: expected shape ({out_channels},) (the output channels), got {bias.shape}")


def _check_output(op: str, input_hw, out_hw) -> None:
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: the output would be {out_hw[0]}x{out_hw[1]} for an input of {input_hw[0]}x{input_hw[1]}; "
            "expected every output size ≥ 1"
        )


def _same_padding(kernel_hw, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """padding='same': per dim total ``d·(k−1)``, left ``total // 2``, right the rest."""
    total = tuple(d * (k - 1) for d, k in zip(dilation, kernel_hw))
    left = tuple(t // 2 for t in total)
    right = tuple(t - lo for t, lo in zip(total, left))
    return left, right


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation as ``torch.nn.functional.conv2d``.

    input (N, Cin, H, W) or (Cin, H, W); weight (Cout, Cin/groups, kh, kw); bias (Cout,) or None.
    Returns (N, Cout, Ho, Wo) with ``Ho = (H + 2ph − dh(kh−1) − 1) // sh + 1``::

        out[n, o, y, x] = bias[o] + Σ_{c, i, j} weight[o, c, i, j] · x[n, g·Cg + c, y·sh + i·dh − ph, x·sw + j·dw − pw]

    ``padding``: an int, a pair, ``'valid'`` (no padding) or ``'same'`` (stride 1
    only; per dim ``d·(k−1)`` zeros in total, ``total // 2`` before and the rest
    after, so an even kernel gets the extra row at the bottom and column at the right).
    """
    return _conv2d("conv2d", input, weight, bias, stride, padding, dilation, groups, relu=False)


def conv2d_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
                groups: int = 1) -> Tensor:
    """``F.relu(F.conv2d(...))`` with the same arguments, ReLU applied by the convolution's kernel.

    The same values and gradients as the two calls, bit for bit, without ReLU's own pass
    over the output in the forward (its backward still masks the gradient first):
    what ``torch.ao.nn.intrinsic.ConvReLU2d`` fuses. :class:`minitorchseg.nn.Sequential`
    calls it for a ``Conv2d`` followed by a ``ReLU`` (FCN's VGG stages).
    """
    return _conv2d("conv2d_relu", input, weight, bias, stride, padding, dilation, groups, relu=True)


def _conv2d(op, input, weight, bias, stride, padding, dilation, groups, relu):
    _check_tensors(op, input, weight, bias)
    stride, dilation, groups = _check_geometry(op, stride, dilation, groups)
    cin = input.shape[-3]
    cout, cin_per_group = weight.shape[:2]
    kernel_hw = weight.shape[2:]
    if cout % groups != 0:
        raise ValueError(
            f"{op}: weight: expected the output channels (dim 0, got shape {weight.shape}) to be divisible "
            f"by groups={groups}"
        )
    if cin_per_group * groups != cin:
        raise ValueError(
            f"{op}: input: expected {cin_per_group * groups} channels (weight shape {weight.shape} with "
            f"groups={groups}), got input of shape {input.shape}"
        )
    _check_bias_shape(op, bias, cout)
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            padding, right = _same_padding(kernel_hw, dilation)
            extra = (right[0] - padding[0], right[1] - padding[1])
        else:
            raise ValueError(f"{op}: padding: expected an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        padding = pair(padding, f"{op}: padding")
        if min(padding) < 0:
            raise ValueError(f"{op}: padding: expected non-negative values, got {padding}")
    H, W = input.shape[-2:]
    H, W = H + extra[0], W + extra[1]
    for dim, size, k, p, d in zip("HW", (H, W), kernel_hw, padding, dilation):
        if size + 2 * p < d * (k - 1) + 1:
            raise ValueError(
                f"{op}: weight: the dilated kernel ({d * (k - 1) + 1} along {dim}, kernel shape {tuple(kernel_hw)}, "
                f"dilation {dilation}) is larger than the padded input ({size + 2 * p} along {dim}, input shape "
                f"{input.shape}, padding {padding}); expected kernel ≤ padded input"
            )
    if extra != (0, 0):
        input = _pad(input, (0, extra[1], 0, extra[0]))
    return Conv2dFn.apply(input, weight, bias, stride, padding, dilation, groups, relu)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed convolution as ``torch.nn.functional.conv_transpose2d`` (NB: groups before dilation).

    input (N, Cin, H, W) or (Cin, H, W); weight (Cin, Cout/groups, kh, kw); bias (Cout,) or None.
    Returns (N, Cout, Ho, Wo) with ``Ho = (H − 1)·sh − 2ph + dh(kh−1) + oph + 1``: each input
    pixel adds its kernel-weighted value to a window of the output::

        out[n, g·Og + o, y·sh + i·dh − ph, x·sw + j·dw − pw] += x[n, g·Cg + c, y, x] · weight[g·Cg + c, o, i, j]

    It is the adjoint of ``conv2d(·, weight, None, stride, padding, dilation, groups)``
    (and the input gradient of that conv2d). ``output_padding`` (per dim smaller
    than the stride or the dilation) selects one of the input sizes a strided
    conv2d maps to the same output size.
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias)
    stride, dilation, groups = _check_geometry(op, stride, dilation, groups)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding: expected an int or a pair of ints, got {padding!r}")
    padding = pair(padding, f"{op}: padding")
    output_padding = pair(output_padding, f"{op}: output_padding")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding: expected non-negative values, got {padding}")
    if min(output_padding) < 0:
        raise ValueError(f"{op}: output_padding: expected non-negative values, got {output_padding}")
    for dim, o, s, d in zip("HW", output_padding, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(
                f"{op}: output_padding: expected a value smaller than either the stride or the dilation along {dim}, "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}; allowed "
                f"0..{max(s, d) - 1} (inclusive) for the {'height' if dim == 'H' else 'width'}"
            )
    cin = input.shape[-3]
    cin_w, cout_per_group = weight.shape[:2]
    kernel_hw = weight.shape[2:]
    if cin_w != cin:
        raise ValueError(
            f"{op}: weight: expected {cin} in dim 0 (the input's channels, input shape {input.shape}), "
            f"got weight of shape {weight.shape}"
        )
    if cin % groups != 0:
        raise ValueError(f"{op}: input: expected the channels ({cin}, shape {input.shape}) to be divisible by "
                         f"groups={groups}")
    _check_bias_shape(op, bias, cout_per_group * groups)
    H, W = input.shape[-2:]
    out_hw = tuple(
        conv_transpose_output_size(n, k, s, p, o, d)
        for n, k, s, p, o, d in zip((H, W), kernel_hw, stride, padding, output_padding, dilation)
    )
    _check_output(op, (H, W), out_hw)
    return ConvTranspose2dFn.apply(input, weight, bias, stride, padding, output_padding, groups, dilation)
