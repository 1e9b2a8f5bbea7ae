"""Batch normalisation on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.batch_norm`.

Shapes: ``x: (N, C, *)`` seen as ``(N, C, L)``; per-channel vectors ``(C,)``. The
formulas are the CPU module's::

    batch statistics:  μ = Σ x / m;   σ² = Σ (x − μ)² / m          (m = N·L, float64 sums)
    y = (x − μ)·k + b,   k = w / sqrt(σ² + eps)
    db = Σ dy;  dw = Σ dy·x̂;  dx = k·(dy − db/m − x̂·dw/m)  (batch statistics)  or  k·dy

Thread mappings:

* the per-channel sums (:func:`_channel_stats_kernel`, :func:`_channel_grad_sums_kernel`):
  one *block* per channel (a grid-stride loop over channels when there are more
  channels than blocks). The block's threads stride over the channel's ``m``
  values, each keeping a float64 partial sum, and the block adds the partial sums
  in shared memory by halving (:func:`_block_sum_kernel`). No atomics: the result is
  deterministic, but the order of the additions is not the CPU's, so the sums
  agree with the CPU's to rounding;
* the elementwise passes (:func:`_normalize_kernel`, :func:`_input_grad_kernel`): one
  thread per element (grid-stride loop, :mod:`kernels.cuda._launch`), each reading
  its channel's coefficients, computed on the host side from the ``(C,)`` sums
  with the array module (a handful of numbers per channel).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from ._index import unravel3
from ._launch import THREADS_PER_BLOCK, array_module, launch, launch_blocks
from .relu import relu_backward, relu_forward

__all__ = ["batch_norm_forward", "batch_norm_backward"]


def _block_sum_kernel(buffer, value):
    """The sum of ``value`` over the threads of this block (every thread gets it); ``buffer``: shared float64.

    ::

        buffer[tid] = value;  sync
        for half = blockDim/2, blockDim/4, ..., 1:  if tid < half: buffer[tid] += buffer[tid + half];  sync
        return buffer[0]                             (after a last sync, so the buffer can be reused)

    ``blockDim`` must be a power of two (:data:`kernels.cuda._launch.THREADS_PER_BLOCK`).
    """
    tid = cuda.threadIdx.x
    buffer[tid] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if tid < half:
            buffer[tid] += buffer[tid + half]
        cuda.syncthreads()
        half //= 2
    total = buffer[0]
    cuda.syncthreads()
    return total


def _channel_stats_kernel(x, mean, var):
    """Batch mean and biased variance of every channel of ``x: (N, C, L)``; block ``b``: channels ``b, b + G, ...``.

    mean, var: (C,) in x's dtype, written::

        μ = Σ_{n,i} x[n, c, i] / m;   σ² = Σ_{n,i} (x[n, c, i] − μ)² / m     (float64, :func:`_block_sum_kernel`)
    """
    buffer = cuda.shared.array(THREADS_PER_BLOCK, float64)
    n_images, channels, length = x.shape
    m = n_images * length
    tid = cuda.threadIdx.x
    for c in range(cuda.blockIdx.x, channels, cuda.gridDim.x):
        s = 0.0
        for t in range(tid, m, cuda.blockDim.x):
            s += x[t // length, c, t % length]
        mu = _block_sum(buffer, s) / m
        ss = 0.0
        for t in range(tid, m, cuda.blockDim.x):
            d = x[t // length, c, t % length] - mu
            ss += d * d
        total = _block_sum(buffer, ss)
        if tid == 0:
            mean[c] = mu
            var[c] = total / m


def _channel_grad_sums_kernel(grad_out, x, mean, sum_dy, sum_dy_xc):
    """Per channel ``Σ dy`` and ``Σ dy·(x − mean[c])`` (float64, (C,) each, written); one block per channel."""
    buffer = cuda.shared.array(THREADS_PER_BLOCK, float64)
    n_images, channels, length = x.shape
    m = n_images * length
    tid = cuda.threadIdx.x
    for c in range(cuda.blockIdx.x, channels, cuda.gridDim.x):
        mu = mean[c] * 1.0
        s = 0.0
        sx = 0.0
        for t in range(tid, m, cuda.blockDim.x):
            g = grad_out[t // length, c, t % length] * 1.0
            s += g
            sx += g * (x[t // length, c, t % length] - mu)
        total = _block_sum(buffer, s)
        total_x = _block_sum(buffer, sx)
        if tid == 0:
            sum_dy[c] = total
            sum_dy_xc[c] = total_x


def _normalize_kernel(x, mean, scale, bias, y):
    """``y[n, c, i] = (x[n, c, i] − mean[c])·scale[c] + bias[c]``; thread ``t``: element ``t`` of ``(N, C, L)``.

    mean, scale, bias: (C,) in x's dtype.
    """
    n_images, channels, length = x.shape
    for t in range(cuda.grid(1), n_images * channels * length, cuda.gridsize(1)):
        n, c, i = unravel3(t, channels, length)
        y[n, c, i] = (x[n, c, i] - mean[c]) * scale[c] + bias[c]


def _input_grad_kernel(grad_out, x, mean, k, shift, q, grad_x):
    """``grad_x = k[c]·(dy − shift[c] − (x − mean[c])·q[c])``; thread ``t``: element ``t`` of ``(N, C, L)``.

    All per-channel vectors in x's dtype; the given-statistics case passes
    ``shift = q = 0`` (``grad_x = k·dy``).
    """
    n_images, channels, length = x.shape
    for t in range(cuda.grid(1), n_images * channels * length, cuda.gridsize(1)):
        n, c, i = unravel3(t, channels, length)
        grad_x[n, c, i] = k[c] * (grad_out[n, c, i] - shift[c] - (x[n, c, i] - mean[c]) * q[c])


_block_sum = cuda.jit(device=True)(_block_sum_kernel)
_channel_stats = cuda.jit(cache=True)(_channel_stats_kernel)
_channel_grad_sums = cuda.jit(cache=True)(_channel_grad_sums_kernel)
_normalize = cuda.jit(cache=True)(_normalize_kernel)
_input_grad = cuda.jit(cache=True)(_input_grad_kernel)


def _channels(xp, a, dtype):
    """``a: (N, C, *)`` as a C-contiguous ``(N, C, L)`` device array of ``dtype``."""
    a = xp.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _per_channel(xp, v, channels: int, fill: float, dtype):
    """``v`` as a contiguous (C,) device array of ``dtype``, or ``fill`` repeated when ``v`` is None."""
    if v is None:
        return xp.full(channels, fill, dtype=dtype)
    return xp.ascontiguousarray(v, dtype=dtype)


def batch_norm_forward(x, weight, bias, mean, var, eps, relu=False):
    """Batch normalisation of ``x: (N, C, *)``; returns ``(y, mean, var, inv_std)``.

    Same contract as :func:`kernels.cpu.batch_norm.batch_norm_forward`: statistics
    by :func:`_channel_stats_kernel` when ``mean``/``var`` are None, then
    :func:`_normalize_kernel`; ``relu``: then :func:`kernels.cuda.relu.relu_forward`
    (on the GPU the two kernels run one after the other).
    """
    xp = array_module()
    dtype = x.dtype
    x3 = _channels(xp, x, dtype)
    channels = x3.shape[1]
    if mean is None:
        mean = xp.empty(channels, dtype=dtype)
        var = xp.empty(channels, dtype=dtype)
        launch_blocks(_channel_stats, channels, x3, mean, var)
    else:
        mean = xp.ascontiguousarray(mean, dtype=dtype)
        var = xp.ascontiguousarray(var, dtype=dtype)
    inv_std = 1.0 / xp.sqrt(var.astype(np.float64) + float(eps))
    scale = (_per_channel(xp, weight, channels, 1.0, dtype) * inv_std).astype(dtype)
    y = xp.empty(x3.shape, dtype=dtype)
    launch(_normalize, x3.size, x3, mean, scale, _per_channel(xp, bias, channels, 0.0, dtype), y)
    if relu:
        y = relu_forward(y)
    return y.reshape(x.shape), mean, var, inv_std


def batch_norm_backward(grad_out, x, weight, mean, inv_std, batch_stats, out=None):
    """Gradients of :func:`batch_norm_forward`: ``(grad_x, grad_weight, grad_bias)``.

    Same contract as :func:`kernels.cpu.batch_norm.batch_norm_backward`: with ``out``
    (a ``relu=True`` forward's output) first :func:`kernels.cuda.relu.relu_backward`;
    then the sums by :func:`_channel_grad_sums_kernel` and :func:`_input_grad_kernel`.
    """
    if out is not None:
        grad_out = relu_backward(grad_out, out)
    xp = array_module()
    dtype = x.dtype
    x3 = _channels(xp, x, dtype)
    go = _channels(xp, grad_out, dtype)
    n_images, channels, length = x3.shape
    m = n_images * length
    mean = xp.ascontiguousarray(mean, dtype=dtype)
    inv_std = xp.ascontiguousarray(inv_std, dtype=np.float64)
    sum_dy = xp.zeros(channels, dtype=np.float64)
    sum_dy_xc = xp.zeros(channels, dtype=np.float64)
    launch_blocks(_channel_grad_sums, channels, go, x3, mean, sum_dy, sum_dy_xc)
    grad_weight = sum_dy_xc * inv_std
    k = (_per_channel(xp, weight, channels, 1.0, dtype) * inv_std).astype(dtype)
    if batch_stats:
        shift = (sum_dy / m).astype(dtype)
        q = (inv_std * grad_weight / m).astype(dtype)
    else:
        shift = xp.zeros(channels, dtype=dtype)
        q = xp.zeros(channels, dtype=dtype)
    grad_x = xp.empty(x3.shape, dtype=dtype)
    launch(_input_grad, x3.size, go, x3, mean, k, shift, q, grad_x)
    return grad_x.reshape(x.shape), grad_weight.astype(dtype), sum_dy.astype(dtype)
