"""Adam's per-element update and its scalars, shared by both devices.

For step ``t`` (counted, ≥ 1) and each element, in the parameter's dtype ``T``, in
torch's order (``torch/optim/adam.py``, ``_single_tensor_adam``; Kingma & Ba 2015;
AdamW's decoupled decay: Loshchilov & Hutter 2019)::

    AdamW (decoupled):  p ← p·(1 − lr·wd)                 Adam with wd > 0:  g ← g + wd·p
    m ← m + (1 − β1)·(g − m)                              (torch's lerp, weight 1 − β1 < 0.5)
    v ← v·β2 + (1 − β2)·g·g                               (mul_ then addcmul_)
    p ← p − (lr / (1 − β1ᵗ))·m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)      (addcdiv_: scalar·m, then / denom)

The scalars are computed once in float64 on the host and rounded to ``T``
(:func:`adam_scalars`), as torch passes Python floats to its float ops.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["adam_scalars", "adam_element"]


def adam_scalars(dtype, step: int, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                 decoupled: bool) -> tuple:
    """``(decay, wd, 1 − β1, β2, 1 − β2, sqrt(1 − β2ᵗ), eps, lr / (1 − β1ᵗ))``, each rounded to ``dtype`` (host).

    ``decay = 1 − lr·wd`` and ``wd = 0`` for AdamW; ``decay = 1`` and the given ``wd`` for Adam.
    """
    t = np.dtype(dtype).type
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    wd = 0.0 if decoupled else weight_decay
    return (t(decay), t(wd), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(math.sqrt(1.0 - beta2**step)), t(eps),
            t(lr / (1.0 - beta1**step)))


def adam_element(param, grad, exp_avg, exp_avg_sq, i, decay, wd, one_minus_beta1, beta2, one_minus_beta2,
                 bias_correction2_sqrt, eps, step_size):
    """Update element ``i`` of the flat ``param``, ``exp_avg``, ``exp_avg_sq`` in place.

    The scalars are :func:`adam_scalars`'s, in ``T``.
    """
    p = param[i] * decay
    g = grad[i] + wd * p if wd != 0 else grad[i]
    m = exp_avg[i]
    m = m + one_minus_beta1 * (g - m)
    v = exp_avg_sq[i] * beta2
    v = v + one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    param[i] = p - step_size * m / (math.sqrt(v) / bias_correction2_sqrt + eps)
