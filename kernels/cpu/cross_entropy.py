"""Cross-entropy (softmax + negative log-likelihood) on the CPU (Numba): one pass forward, one backward.

Shapes: logits ``x: (N, C, *)`` seen as ``(N, C, L)`` (``L`` = pixels per image, 1
for ``(N, C)``), ``target: (N, *)`` integer class indices seen as ``(N, L)``,
``weight: (C,)`` or None (all 1). Per pixel ``(n, i)`` with ``t = target[n, i]``
(:mod:`kernels.shared.cross_entropy`, the per-pixel loops; the GPU runs them as they are,
the CPU's forward with its loops reordered)::

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

from ..shared.cross_entropy import pixel_backward, pixel_loss

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


_BLOCK = 256
"""Pixels per parallel job of the forward: one image's block of consecutive pixels."""


def _cross_entropy_forward_kernel(x, target, weight, ignore_index, log_probs_given, losses, weights, probs):
    """Every pixel's loss, weight and softmax, in blocks of consecutive pixels of one image.

    x, probs (written unless log_probs_given): (N, C, L); target: (N, L) int64;
    weight: (C,); losses, weights (written): (N, L). The formula of
    :func:`kernels.shared.cross_entropy.pixel_forward` (the GPU's loop, one thread per
    pixel) with the loops turned inside out: the class loop outside, the pixel loop
    inside, so that every pass reads and writes one contiguous class row (1.4x faster
    here than the per-pixel order, which reads the ``C`` rows with stride ``L``)::

        for (n, block) in prange(N × blocks of _BLOCK pixels):
            m[i] = max_c x[n, c, i]                                   (in T)
            probs[n, c, i] = e = exp(x[n, c, i] − m[i]);  s[i] += e   (exp in T, s float64; c outer, i inner)
            probs[n, c, i] *= 1 / s[i];   lse[i] = m[i] + log s[i]       (lse = 0 if log_probs_given)
            pixel_loss(x, target, weight, ignore_index, n, i, lse[i], losses, weights)
    """
    n_images, classes, length = x.shape
    blocks = (length + _BLOCK - 1) // _BLOCK
    for job in prange(n_images * blocks):
        n = job // blocks
        i0 = (job % blocks) * _BLOCK
        size = min(_BLOCK, length - i0)
        lse = np.zeros(size, dtype=np.float64)
        if not log_probs_given:
            m = x[n, 0, i0:i0 + size].copy()
            for c in range(1, classes):
                row = x[n, c]
                for k in range(size):
                    v = row[i0 + k]
                    m[k] = v if v > m[k] else m[k]
            s = np.zeros(size, dtype=np.float64)
            for c in range(classes):
                row = x[n, c]
                dst = probs[n, c]
                for k in range(size):
                    e = math.exp(row[i0 + k] - m[k])
                    dst[i0 + k] = e
                    s[k] += e
            for k in range(size):
                lse[k] = m[k] * 1.0 + math.log(s[k])
                s[k] = 1.0 / s[k]
            for c in range(classes):
                dst = probs[n, c]
                for k in range(size):
                    dst[i0 + k] = dst[i0 + k] * s[k]
        for k in range(size):
            pixel_loss(x, target, weight, ignore_index, n, i0 + k, lse[k], losses, weights)


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
