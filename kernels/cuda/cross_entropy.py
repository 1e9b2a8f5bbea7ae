"""Cross-entropy (softmax + negative log-likelihood) on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.cross_entropy`.

Shapes and formulas are the CPU module's: logits ``x: (N, C, *)`` seen as
``(N, C, L)``, ``target: (N, *)`` as ``(N, L)``; per pixel the softmax, the loss
``−w[t]·log p[t]`` and the gradient ``s·(p − onehot(t))``. One thread per pixel
(grid-stride loop over ``N·L``), running the per-pixel loops of
:mod:`kernels.shared.cross_entropy` as written (the CPU runs the same backward loop,
and the forward's with the class loop moved outside); each thread writes only its
own pixel, so no atomics and the results equal the CPU's up to the device's rounding
of ``exp`` and ``log``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ..shared.cross_entropy import pixel_backward, pixel_forward
from ._launch import array_module, launch

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


def _cross_entropy_forward_kernel(x, target, weight, ignore_index, log_probs_given, losses, weights, probs):
    """Thread ``t`` handles pixels ``t, t + G, ...`` of the ``N·L``: :func:`pixel_forward` at ``(p // L, p % L)``."""
    length = x.shape[2]
    for p in range(cuda.grid(1), x.shape[0] * length, cuda.gridsize(1)):
        _pixel_forward(x, target, weight, ignore_index, log_probs_given, p // length, p % length, losses, weights,
                       probs)


def _cross_entropy_backward_kernel(scale, probs, target, ignore_index, log_probs_given, grad_x):
    """Thread ``t`` handles pixels ``t, t + G, ...``: :func:`pixel_backward` at ``(p // L, p % L)``."""
    length = probs.shape[2]
    for p in range(cuda.grid(1), probs.shape[0] * length, cuda.gridsize(1)):
        _pixel_backward(scale, probs, target, ignore_index, log_probs_given, p // length, p % length, grad_x)


_pixel_forward = cuda.jit(device=True)(pixel_forward)
_pixel_backward = cuda.jit(device=True)(pixel_backward)
_cross_entropy_forward = cuda.jit(cache=True)(_cross_entropy_forward_kernel)
_cross_entropy_backward = cuda.jit(cache=True)(_cross_entropy_backward_kernel)


def _as_pixels(xp, a, dims: int, dtype=None):
    """``a: (N, [C,] *)`` as a C-contiguous ``(N, [C,] L)`` device array."""
    a = xp.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[:dims - 1] + (math.prod(a.shape[dims - 1:]),))


def cross_entropy_forward(x, target, weight, ignore_index, log_probs_given):
    """``(losses, weights, probs)``; same contract as :func:`kernels.cpu.cross_entropy.cross_entropy_forward`."""
    xp = array_module()
    x3 = _as_pixels(xp, x, 3)
    dtype = x3.dtype
    t2 = _as_pixels(xp, target, 2, np.int64)
    w = xp.ones(x3.shape[1], dtype=dtype) if weight is None else xp.ascontiguousarray(weight, dtype=dtype)
    losses = xp.empty(t2.shape, dtype=dtype)
    weights = xp.empty(t2.shape, dtype=dtype)
    probs = xp.empty((1, 1, 1) if log_probs_given else x3.shape, dtype=dtype)
    launch(_cross_entropy_forward, t2.size, x3, t2, w, int(ignore_index), bool(log_probs_given), losses, weights,
           probs)
    return losses, weights, None if log_probs_given else probs.reshape(x.shape)


def cross_entropy_backward(scale, probs, target, ignore_index, log_probs_given):
    """``grad_x``; same contract as :func:`kernels.cpu.cross_entropy.cross_entropy_backward`."""
    xp = array_module()
    p3 = _as_pixels(xp, probs, 3)
    t2 = _as_pixels(xp, target, 2, np.int64)
    grad_x = xp.empty(p3.shape, dtype=p3.dtype)
    launch(_cross_entropy_backward, t2.size, xp.ascontiguousarray(scale, dtype=p3.dtype).reshape(t2.shape), p3, t2,
           int(ignore_index), bool(log_probs_given), grad_x)
    return grad_x.reshape(probs.shape)
