"""Cross-entropy's per-pixel loops, shared by both devices.

Shapes: logits ``x: (N, C, L)`` (``L`` = the pixels of one image, 1 for ``(N, C)``
input), ``target: (N, L)`` int64, ``weight: (C,)``. Per pixel ``(n, i)`` with
``t = target[n, i]`` and the max-shifted log-sum-exp ``lse = log Σ_c exp x[n, c, i]``::

    forward:   p[n, c, i] = exp(x[n, c, i] − lse)          (the softmax, kept for the backward)
               loss[n, i] = −w[t]·(x[n, t, i] − lse)
    backward:  dx[n, c, i] = s[n, i]·(p[n, c, i] − [c = t])

with ``s`` the upstream gradient of ``loss[n, i]`` times ``w[t]`` (and over the
mean's denominator). Ignored pixels (``t = ignore_index``) get loss and weight 0
and an exactly zero gradient. ``log_probs_given`` (``nll_loss``): ``x`` already
holds log-probabilities, so ``lse = 0`` and ``p`` is neither computed nor used
(``dx = −s·[c = t]``). Exponentials are taken in the data type (float32's ``exp`` for
float32 logits, within an ulp, and about twice as fast as float64's; the CPU's
forward uses its own vectorised ``exp``, :func:`kernels.cpu.cross_entropy._exp_kernel`,
within 2 ulp), their sums and everything after them in float64; stored values are
rounded once, to the output's dtype.
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

__all__ = ["pixel_loss", "pixel_forward", "pixel_backward"]


@register_jitable
def pixel_loss(x, target, weight, ignore_index, n, i, lse, losses, weights):
    """Loss and weight of pixel ``(n, i)`` given its log-sum-exp ``lse`` (float64); both forwards call it.

    ::

        t = target[n, i]:  t = ignore_index → loss 0, weight 0
                           otherwise  w = weight[t];  loss = −w·(x[n, t, i] − lse)

    Called from inside :func:`pixel_forward` and the CPU's blocked forward, so it is
    registered with ``register_jitable``, which either compiler inlines.
    """
    t = target[n, i]
    if t == ignore_index:
        losses[n, i] = 0.0
        weights[n, i] = 0.0
    else:
        w = weight[t] * 1.0
        weights[n, i] = w
        losses[n, i] = -w * (x[n, t, i] - lse)


def pixel_forward(x, target, weight, ignore_index, log_probs_given, n, i, losses, weights, probs):
    """Loss, weight and softmax of pixel ``(n, i)``: the GPU's loop, one thread per pixel, and the reference that
    the CPU's forward runs with its loops reordered (class outside, pixels inside).

    ::

        m = max_c x[n, c, i]                                                   (in T, the data type)
        e_c = exp(x[n, c, i] − m)  (in T),  probs[n, c, i] = e_c;   s = Σ_c e_c  (float64)
        probs[n, c, i] = e_c / s;   lse = m + log s                          (lse = 0 if log_probs_given)
        pixel_loss(x, target, weight, ignore_index, n, i, lse, losses, weights)
    """
    lse = 0.0
    if not log_probs_given:
        m = x[n, 0, i]
        for c in range(1, x.shape[1]):
            v = x[n, c, i]
            if v > m:
                m = v
        s = 0.0
        for c in range(x.shape[1]):
            e = math.exp(x[n, c, i] - m)
            probs[n, c, i] = e
            s += e * 1.0
        inv = 1.0 / s
        for c in range(x.shape[1]):
            probs[n, c, i] = probs[n, c, i] * inv
        lse = m * 1.0 + math.log(s)
    pixel_loss(x, target, weight, ignore_index, n, i, lse, losses, weights)


def pixel_backward(scale, probs, target, ignore_index, log_probs_given, n, i, grad_x):
    """``grad_x[n, :, i]`` of pixel ``(n, i)``; both devices run this loop (CPU: parallel over pixels).

    ::

        t = ignore_index:  grad_x[n, c, i] = 0                                (every c)
        otherwise:         grad_x[n, c, i] = s·(probs[n, c, i] − [c = t]),   s = scale[n, i]
                           (−s·[c = t] if log_probs_given: probs is not read)
    """
    t = target[n, i]
    s = scale[n, i] * 1.0
    for c in range(probs.shape[1]):
        g = 0.0
        if t != ignore_index:
            if not log_probs_given:
                g = probs[n, c, i] * s
            if c == t:
                g -= s
        grad_x[n, c, i] = g
