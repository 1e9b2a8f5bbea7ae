"""Cross-entropy (softmax + negative log-likelihood) on the CPU (Numba): one pass forward, one backward.

Shapes: logits ``x: (N, C, *)`` seen as ``(N, C, L)`` (``L`` = pixels per image, 1
for ``(N, C)``), ``target: (N, *)`` integer class indices seen as ``(N, L)``,
``weight: (C,)`` or None (all 1). Per pixel ``(n, i)`` with ``t = target[n, i]``
(:mod:`kernels.shared.cross_entropy`, the loops both devices compile)::

    p[n, :, i] = softmax(x[n, :, i])                           (max-shifted, float64 sums)
    loss[n, i] = −w[t]·log p[n, t, i]                          (0 where t = ignore_index)
    dx[n, c, i] = s[n, i]·(p[n, c, i] − [c = t])               (0 where t = ignore_index)

The NumPy formulation makes about a dozen passes over the ``N·C·L`` logits (a
transpose to rows, max, subtract, exp, sum, log, gather, and as many in the
backward), each writing a temporary as large as the logits. Here each pixel's
``C`` logits are read in one parallel loop that writes the softmax (kept for the
backward, which then needs no exponential) and the pixel's loss and weight; the
backward is one more loop. Pixels are independent, so results do not depend on
the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..shared.cross_entropy import pixel_backward, pixel_forward

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


def _cross_entropy_forward_kernel(x, target, weight, ignore_index, log_probs_given, losses, weights, probs):
    """Every pixel's loss, weight and softmax; parallel over pixels.

    x, probs (written unless log_probs_given): (N, C, L); target: (N, L) int64;
    weight: (C,); losses, weights (written): (N, L)::

        for p in prange(N·L):  pixel_forward(x, ..., n = p // L, i = p % L, losses, weights, probs)

    (:func:`kernels.shared.cross_entropy.pixel_forward`).
    """
    length = x.shape[2]
    for p in prange(x.shape[0] * length):
        _pixel_forward(x, target, weight, ignore_index, log_probs_given, p // length, p % length, losses, weights,
                       probs)


def _cross_entropy_backward_kernel(scale, probs, target, ignore_index, log_probs_given, grad_x):
    """Every pixel's logit gradients; parallel over pixels.

    scale: (N, L); probs, grad_x (written): (N, C, L); target: (N, L) int64::

        for p in prange(N·L):
            pixel_backward(scale, probs, target, ignore_index, log_probs_given, p // L, p % L, grad_x)

    (:func:`kernels.shared.cross_entropy.pixel_backward`).
    """
    length = probs.shape[2]
    for p in prange(probs.shape[0] * length):
        _pixel_backward(scale, probs, target, ignore_index, log_probs_given, p // length, p % length, grad_x)


_pixel_forward = njit(cache=True, inline="always")(pixel_forward)
_pixel_backward = njit(cache=True, inline="always")(pixel_backward)
_cross_entropy_forward = njit(parallel=True, cache=True)(_cross_entropy_forward_kernel)
_cross_entropy_backward = njit(parallel=True, cache=True)(_cross_entropy_backward_kernel)


def _as_pixels(a, dims: int, dtype=None) -> np.ndarray:
    """``a: (N, [C,] *)`` as a C-contiguous ``(N, [C,] L)`` array (a view when it already is one)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[:dims - 1] + (math.prod(a.shape[dims - 1:]),))


def cross_entropy_forward(x, target, weight, ignore_index, log_probs_given):
    """Per-pixel softmax cross-entropy of logits ``x: (N, C, *)``; returns ``(losses, weights, probs)``.

    target: (N, *) integer class indices in ``[0, C)`` or ``ignore_index`` (not
    checked here: ``minitorchseg.functional.cross_entropy`` checks before calling);
    weight: (C,) or None (all 1). ``losses``, ``weights`` (``w[target]``, 0 where
    ignored): ``(N, L)`` in x's dtype; ``probs``: the softmax over classes in x's
    shape and dtype, or None with ``log_probs_given`` (``x`` holds log-probabilities:
    ``loss = −w·x[t]``). Loop: :func:`_cross_entropy_forward_kernel`.
    """
    x3 = _as_pixels(x, 3)
    dtype = x3.dtype
    t2 = _as_pixels(target, 2, np.int64)
    w = np.ones(x3.shape[1], dtype=dtype) if weight is None else np.ascontiguousarray(weight, dtype=dtype)
    losses = np.empty(t2.shape, dtype=dtype)
    weights = np.empty(t2.shape, dtype=dtype)
    probs = np.empty((1, 1, 1) if log_probs_given else x3.shape, dtype=dtype)
    _cross_entropy_forward(x3, t2, w, int(ignore_index), bool(log_probs_given), losses, weights, probs)
    return losses, weights, None if log_probs_given else probs.reshape(np.shape(x))


def cross_entropy_backward(scale, probs, target, ignore_index, log_probs_given):
    """``grad_x = scale·(probs − onehot(target))`` per pixel, 0 where ``target = ignore_index``.

    scale: (N, L) — dℓ/dloss[n, i]·w[target[n, i]], the reduction's factor included;
    probs: (N, C, *) the forward's softmax; target: (N, *). With ``log_probs_given``
    (``nll_loss``) ``grad_x = −scale·onehot(target)`` and only probs' shape and dtype
    are read (pass the input).
    Returns grad_x in probs' shape and dtype. Loop: :func:`_cross_entropy_backward_kernel`.
    """
    p3 = _as_pixels(probs, 3)
    t2 = _as_pixels(target, 2, np.int64)
    grad_x = np.empty(p3.shape, dtype=p3.dtype)
    _cross_entropy_backward(np.ascontiguousarray(scale, dtype=p3.dtype).reshape(t2.shape), p3, t2,
                            int(ignore_index), bool(log_probs_given), grad_x)
    return grad_x.reshape(np.shape(probs))
