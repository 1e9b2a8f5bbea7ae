"""Losses: cross-entropy (with class weights and an ignore label), BCE with logits, smooth L1.

Each is one fused op: its backward is written in closed form instead of being
assembled from log_softmax, gather and mean, which keeps segmentation losses
over N·H·W pixels cheap.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "smooth_l1_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class CrossEntropy(Function):
    """ℓ_i = −w[t_i]·log softmax(x_i)[t_i] for each sample/pixel i whose target t_i ≠ ignore_index.

    input x: (N, C) or (N, C, d1, ...); target t: (N,) or (N, d1, ...) ints.
    'mean' divides Σ ℓ_i by Σ w[t_i] over non-ignored i (torch's weighted mean;
    NaN when every target is ignored, as torch); 'sum' and 'none' as named.
    Backward: dℓ_i/dx_i = w[t_i]·(softmax(x_i) − onehot(t_i)) (over Σ w for
    'mean'), exactly 0 for ignored i: when every target is ignored the loss is
    NaN but the gradient is all zeros, as torch's ``nll_loss`` backward
    (``aten/src/ATen/native/LossNLL.cpp``), so one all-ignored batch cannot
    turn the weights into NaN. Non-ignored targets whose weights sum to 0 give
    0/0 = NaN in those rows, as torch. No floating-point warnings are raised.

    The per-pixel work is one kernel each way (``kernels.*.cross_entropy_forward``
    and ``_backward``), on the (N, C, d1, ...) layout as it is (no transpose to
    rows): the forward keeps the softmax, the per-pixel weights ``w[t_i]`` (0 where
    ignored) and nothing else; the reduction over pixels is done here, in float64.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, log_probs_given):
        xp = ctx.xp
        losses, w, probs = ctx.kernels.cross_entropy_forward(x, target, weight, ignore_index, log_probs_given)
        ctx.save_for_backward(x if log_probs_given else probs, target, w)
        ctx.reduction, ctx.ignore_index, ctx.log_probs_given = reduction, ignore_index, log_probs_given
        if reduction == "none":
            return losses.reshape(target.shape)
        total = losses.sum(dtype=xp.float64)
        if reduction == "sum":
            return xp.asarray(total, dtype=x.dtype)
        ctx.denominator = w.sum(dtype=xp.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total / ctx.denominator
        return xp.asarray(mean, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        probs, target, w = ctx.saved_arrays
        if ctx.reduction == "none":
            scale = grad.reshape(w.shape) * w
        elif ctx.reduction == "sum":
            scale = grad * w
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = grad * (w / ctx.denominator)
        scale = xp.asarray(scale, dtype=probs.dtype)
        gx = ctx.kernels.cross_entropy_backward(scale, probs, target, ctx.ignore_index, ctx.log_probs_given)
        return gx, None, None, None, None, None


def _validate_classification(name, input, target, weight, ignore_index):
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: expected Tensors for input and target")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating point, got {input.dtype}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {target.dtype}")
    if input.ndim < 2:
        raise ValueError(f"{name}: input must have shape (N, C) or (N, C, d1, ...), got {input.shape}")
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{name}: target has shape {target.shape}, expected {expected} for input {input.shape}")
    classes = input.shape[1]
    if weight is not None and weight.shape != (classes,):
        raise ValueError(f"{name}: weight has shape {weight.shape}, expected ({classes},)")
    t = target.data
    bad = (t != ignore_index) & ((t < 0) | (t >= classes))
    if bool(bad.any()):
        value = int(t[bad].reshape(-1)[0])
        raise ValueError(
            f"{name}: target value {value} is out of range: expected class indices in [0, {classes - 1}] "
            f"or ignore_index={ignore_index}"
        )


def _loss(name, input, target, weight, ignore_index, reduction, log_probs_given):
    _check_reduction(name, reduction)
    _validate_classification(name, input, target, weight, ignore_index)
    w = weight.data.astype(input.dtype) if weight is not None else None
    return CrossEntropy.apply(input, target.data, w, ignore_index, reduction, log_probs_given)


def cross_entropy(
    input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """torch's ``F.cross_entropy`` for class-index targets; see :class:`CrossEntropy`."""
    return _loss("cross_entropy", input, target, weight, ignore_index, reduction, False)


def nll_loss(
    input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """torch's ``F.nll_loss``: ``input`` holds log-probabilities."""
    return _loss("nll_loss", input, target, weight, ignore_index, reduction, True)


class BCEWithLogits(Function):
    """ℓ = w·(max(x, 0) − x·y + log(1 + e^−|x|)), the stable form of −w·[y log σ(x) + (1−y) log(1−σ(x))].

    dℓ/dx = w·(σ(x) − y);  dℓ/dy = −w·x.
    """

    @staticmethod
    def forward(ctx, x, y, weight, reduction):
        xp = ctx.xp
        losses = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
        if weight is not None:
            losses = losses * weight
        ctx.save_for_backward(x, y, weight)
        ctx.reduction, ctx.count = reduction, losses.size
        if reduction == "none":
            return losses
        total = losses.sum() if reduction == "sum" else losses.mean()
        return xp.asarray(total, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        x, y, weight = ctx.saved_arrays
        scale = grad / ctx.count if ctx.reduction == "mean" else grad
        if weight is not None:
            scale = scale * weight
        e = xp.exp(-xp.abs(x))
        sig = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        gx = xp.broadcast_to(scale * (sig - y), x.shape) if ctx.needs_input_grad[0] else None
        gy = xp.broadcast_to(-scale * x, y.shape) if ctx.needs_input_grad[1] else None
        return gx, gy, None, None


def binary_cross_entropy_with_logits(
    input: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target has shape {target.shape}, expected the input's {input.shape}"
        )
    if input.dtype.kind != "f" or target.dtype.kind != "f":
        raise TypeError(
            "binary_cross_entropy_with_logits: input and target must be floating point, "
            f"got {input.dtype} and {target.dtype}"
        )
    w = None
    if weight is not None:
        w = input.backend.asarray(weight.data if isinstance(weight, Tensor) else weight)
        np.broadcast_shapes(w.shape, input.shape)
    return BCEWithLogits.apply(input, target, w, reduction)


class SmoothL1(Function):
    """ℓ = 0.5·d²/β if |d| < β else |d| − 0.5·β, with d = input − target (β = 0: L1).

    dℓ/dd = d/β if |d| < β else sign(d).
    """

    @staticmethod
    def forward(ctx, x, y, beta, reduction):
        xp = ctx.xp
        d = x - y
        ad = xp.abs(d)
        losses = xp.where(ad < beta, 0.5 * d * d / beta if beta > 0 else 0 * d, ad - 0.5 * beta)
        ctx.save_for_backward(d)
        ctx.beta, ctx.reduction = beta, reduction
        if reduction == "none":
            return losses.astype(x.dtype, copy=False)
        total = losses.sum() if reduction == "sum" else losses.mean()
        return xp.asarray(total, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        xp = ctx.xp
        (d,) = ctx.saved_arrays
        beta = ctx.beta
        scale = grad / d.size if ctx.reduction == "mean" else grad
        slope = xp.where(xp.abs(d) < beta, d / beta if beta > 0 else 0 * d, xp.sign(d))
        g = scale * slope
        gx = g if ctx.needs_input_grad[0] else None
        gy = -g if ctx.needs_input_grad[1] else None
        return gx, gy, None, None


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    _check_reduction("smooth_l1_loss", reduction)
    if input.shape != target.shape:
        raise ValueError(f"smooth_l1_loss: target has shape {target.shape}, expected the input's {input.shape}")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    return SmoothL1.apply(input, target, float(beta), reduction)
