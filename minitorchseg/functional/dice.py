"""Soft Dice loss for multi-class segmentation, composed of differentiable ops.

For logits ``x`` ``(N, C, d1, ...)`` and class-index targets ``t`` ``(N, d1, ...)``,
with ``p = softmax(x, dim=1)``, ``y = onehot(t)`` ``(N, C, d1, ...)`` and ``v`` the
mask of pixels whose target is not ``ignore_index`` (``v = 1`` everywhere when it
is None), each class ``c`` aggregates over the whole batch and every pixel ``i``::

    I_c    = Σ_{n,i} v p[n,c,i] y[n,c,i]
    S_c    = Σ_{n,i} v p[n,c,i] + Σ_{n,i} v y[n,c,i]
    dice_c = (2 I_c + eps) / (S_c + eps)
    loss_c = 1 − dice_c

``reduction``: ``'mean'`` → ``mean_c loss_c`` (a scalar), ``'sum'`` → ``Σ_c loss_c``,
``'none'`` → the ``(C,)`` vector. ``eps`` (the smoothing term, default 1) keeps a
class absent from the batch defined: its loss ``1 − eps / (Σ p + eps)`` pushes its
probabilities down; ``eps = 0`` makes such a class 0/0 = NaN. Ignored pixels
count in neither sum, so they get no gradient.

The gradient comes from the ops it is built of (softmax, mul, sum, add, div):
no backward is written here.
"""

from __future__ import annotations

from ..tensor import Tensor
from .activation import softmax
from .elementwise import add, div, mul, sub
from .reduction import mean, sum

__all__ = ["dice_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _validate(input, target, ignore_index, eps, reduction) -> None:
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"dice_loss: expected Tensors for input and target, got {type(input).__name__} "
            f"and {type(target).__name__}"
        )
    if input.dtype.kind != "f":
        raise TypeError(f"dice_loss: input must hold floating-point logits, got dtype {input.dtype}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"dice_loss: target must hold integer class indices, got dtype {target.dtype}")
    if input.ndim < 2:
        raise ValueError(f"dice_loss: input must have shape (N, C) or (N, C, d1, ...), got {input.shape}")
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"dice_loss: target has shape {target.shape}, expected {expected} for input {input.shape}"
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"dice_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not eps >= 0:
        raise ValueError(f"dice_loss: eps must be >= 0, got {eps!r}")
    if input.device != target.device:
        raise ValueError(f"dice_loss: input is on {input.device} but target on {target.device}")
    classes = input.shape[1]
    t = target.data
    bad = (t < 0) | (t >= classes)
    if ignore_index is not None:
        bad &= t != ignore_index
    if bool(bad.any()):
        value = int(t[bad].reshape(-1)[0])
        raise ValueError(
            f"dice_loss: target value {value} is out of range: expected class indices in [0, {classes - 1}]"
            f" or ignore_index={ignore_index}"
        )


def dice_loss(
    input: Tensor, target: Tensor, ignore_index: int | None = None, eps: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Soft multi-class Dice loss of logits ``input`` ``(N, C, d1, ...)`` against class indices
    ``target`` ``(N, d1, ...)``; see the module docstring for the formula."""
    _validate(input, target, ignore_index, eps, reduction)
    xp = input.backend.xp
    dtype = input.dtype
    classes = input.shape[1]
    t = target.data
    valid = t != ignore_index if ignore_index is not None else xp.ones(t.shape, dtype=bool)
    class_axis = xp.arange(classes).reshape((1, classes) + (1,) * (t.ndim - 1))
    onehot = ((xp.expand_dims(t, 1) == class_axis) & xp.expand_dims(valid, 1)).astype(dtype)
    weight = xp.expand_dims(valid, 1).astype(dtype)
    axes = (0,) + tuple(range(2, input.ndim))

    probs = mul(softmax(input, dim=1), Tensor(weight, device=input.device))
    intersection = sum(mul(probs, Tensor(onehot, device=input.device)), dim=axes)
    cardinality = add(sum(probs, dim=axes), Tensor(onehot.sum(axis=axes), device=input.device))
    dice = div(add(mul(intersection, 2.0), eps), add(cardinality, eps))
    loss = sub(1.0, dice)
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    return loss
