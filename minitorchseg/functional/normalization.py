"""Batch normalisation (Ioffe & Szegedy, 2015), torch's ``F.batch_norm``; group normalisation (Wu & He, 2018),
torch's ``F.group_norm``.

For input x (N, C, *) and each channel c, over the m = N·∏(*) values of that channel:

    training: μ = mean(x), σ² = mean((x − μ)²)          (biased, used to normalise)
              running_mean ← (1 − momentum)·running_mean + momentum·μ
              running_var  ← (1 − momentum)·running_var  + momentum·σ²·m/(m − 1)   (unbiased)
    eval:     μ, σ² = running_mean, running_var
    y = (x − μ) / sqrt(σ² + eps) · weight + bias

Backward in training mode, with x̂ = (x − μ)/sqrt(σ² + eps) and g = dy·weight:
    dx = (g − mean(g) − x̂·mean(g·x̂)) / sqrt(σ² + eps)
    dweight = Σ dy·x̂,  dbias = Σ dy
(In eval mode μ and σ² are constants, so dx = g / sqrt(σ² + eps).)

Group normalisation of x (N, C, *) with G groups of C/G consecutive channels:
statistics per sample and group, over the m = (C/G)·∏(*) values of group g,
so it works the same for a batch of one and in training and eval:

    μ[n, g] = mean(x[n, group g]),  σ²[n, g] = mean((x − μ)²)   (biased)
    y[n, c] = (x[n, c] − μ[n, g(c)]) / sqrt(σ²[n, g(c)] + eps) · weight[c] + bias[c]

Backward: the training-mode batch-norm formula inside each (n, g) group, with
g = dy·weight[c]: dx = (g − mean(g) − x̂·mean(g·x̂)) / sqrt(σ² + eps) (means over the
group); dweight[c] = Σ_{n,*} dy·x̂, dbias[c] = Σ_{n,*} dy.
"""

from __future__ import annotations

import math

from ..autograd import Function
from ..tensor import Tensor

__all__ = ["batch_norm", "batch_norm_relu", "group_norm"]


class BatchNorm(Function):
    """y = (x − μ)/sqrt(σ² + eps)·weight + bias per channel; forward and backward each one kernel call.

    ``mean``/``var`` None: the batch's statistics, computed by the forward kernel
    (``kernels.*.batch_norm_forward``), which returns them beside ``y`` so that the
    caller can update the running averages. Saved for backward: the input ``x``
    (the kernel recomputes x̂ from it), the statistics and ``weight``.

    ``relu=True``: ``max(y, 0)``, batch norm and ReLU in the same kernel calls
    (:func:`batch_norm_relu`); the output is saved too, as ReLU's backward reads its
    mask from it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, relu=False):
        ctx.batch_stats = mean is None
        y, mean, var, inv_std = ctx.kernels.batch_norm_forward(x, weight, bias, mean, var, eps, relu)
        ctx.save_for_backward(x, weight, mean, inv_std, y if relu else None)
        return y, mean, var

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, inv_std, out = ctx.saved_arrays
        gx, gw, gb = ctx.kernels.batch_norm_backward(grad, x, weight, mean, inv_std, ctx.batch_stats, out)
        needs = ctx.needs_input_grad
        return (gx if needs[0] else None, gw if needs[1] else None, gb if needs[2] else None, None, None, None,
                None)


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """torch's ``F.batch_norm``; updates ``running_mean``/``running_var`` in place when training."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=False)


def batch_norm_relu(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """``F.relu(F.batch_norm(...))`` with the same arguments, in the batch-norm kernels' own passes.

    The same values and gradients as the two calls, bit for bit, without ReLU's
    separate pass over every activation (forward and backward) or the batch norm's
    output before ReLU in memory: what ``torch.ao.nn.intrinsic.BNReLU2d`` fuses.
    :class:`minitorchseg.nn.Sequential` calls it for a ``BatchNorm2d`` followed by a ``ReLU``.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu=True)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu):
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, ...), got {input.shape}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({channels},) for input {input.shape}")
    if training:
        count = input.numel() // channels if channels else 0
        if count <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input {input.shape}"
            )
        y, mean, var = BatchNorm.apply(input, weight, bias, None, None, eps, relu)
        if running_mean is not None:
            running_mean.data[...] = (1 - momentum) * running_mean.data + momentum * mean.data
        if running_var is not None:
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * var.data * count / (count - 1)
        return y
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when training=False")
    xp = input.backend.xp
    mean = xp.asarray(running_mean.data, dtype=input.dtype)
    var = xp.asarray(running_var.data, dtype=input.dtype)
    return BatchNorm.apply(input, weight, bias, mean, var, eps, relu)[0]


class GroupNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        xp = ctx.xp
        n, c = x.shape[:2]
        group_size = math.prod(x.shape[1:]) // num_groups  # explicit (not -1): an empty batch reshapes too
        grouped = x.reshape(n, num_groups, group_size)
        mean = grouped.mean(axis=2, keepdims=True)
        var = ((grouped - mean) ** 2).mean(axis=2, keepdims=True)
        inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        x_hat = ((grouped - mean) * inv_std).reshape(x.shape)
        shape = (1, c) + (1,) * (x.ndim - 2)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.num_groups, ctx.shape = num_groups, shape
        y = x_hat
        if weight is not None:
            y = y * weight.reshape(shape)
        if bias is not None:
            y = y + bias.reshape(shape)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x_hat, inv_std, weight = ctx.saved_arrays
        shape, groups = ctx.shape, ctx.num_groups
        n = grad.shape[0]
        axes = (0,) + tuple(range(2, grad.ndim))
        gx = None
        if ctx.needs_input_grad[0]:
            group_size = math.prod(grad.shape[1:]) // groups
            g = (grad * weight.reshape(shape) if weight is not None else grad).reshape(n, groups, group_size)
            xh = x_hat.reshape(n, groups, group_size)
            mean_g = g.mean(axis=2, keepdims=True)
            mean_gx = (g * xh).mean(axis=2, keepdims=True)
            gx = ((g - mean_g - xh * mean_gx) * inv_std).reshape(grad.shape)
        gw = (grad * x_hat).sum(axis=axes) if ctx.needs_input_grad[1] else None
        gb = grad.sum(axis=axes) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """torch's ``F.group_norm``: input (N, C, *), C divisible by ``num_groups``; weight, bias (C,) or None."""
    if not isinstance(input, Tensor):
        raise TypeError(f"group_norm: input: expected a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"group_norm: input: expected shape (N, C, ...), got {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"group_norm: input: expected a floating-point tensor, got dtype {input.dtype}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"group_norm: num_groups: expected a positive int, got {num_groups!r}")
    channels = input.shape[1]
    if channels % num_groups:
        raise ValueError(
            f"group_norm: expected the number of channels ({channels}) of input {input.shape} to be divisible by "
            f"num_groups={num_groups}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"group_norm: {name} has shape {t.shape}, expected ({channels},) for input {input.shape}")
    per_group = input.shape[0] * (channels // num_groups)
    for n in input.shape[2:]:
        per_group *= n
    if per_group == 1:  # torch's _verify_batch_size on (N·C/G, G, *), torch/nn/functional.py group_norm
        raise ValueError(
            f"group_norm: expected more than 1 value per channel when training, got input {input.shape} "
            f"with num_groups={num_groups}"
        )
    return GroupNorm.apply(input, weight, bias, num_groups, eps)
