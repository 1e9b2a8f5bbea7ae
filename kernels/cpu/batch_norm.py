"""Batch normalisation on the CPU (Numba): statistics and normalisation in one call, the backward in one.

Shapes: ``x: (N, C, *)``, seen as ``(N, C, L)`` with ``L = ∏(*)`` (``L = 1`` for
``(N, C)``); every per-channel vector is ``(C,)``. Over the ``m = N·L`` values of
channel ``c`` (Ioffe & Szegedy 2015; torch's ``aten/src/ATen/native/Normalization.cpp``)::

    batch statistics:  μ = Σ x / m;   σ² = Σ (x − μ)² / m          (biased, float64 sums)
    k = w / sqrt(σ² + eps)
    y = (x − μ)·k + b

    backward, with x̂ = (x − μ)/sqrt(σ² + eps):
    db = Σ dy;   dw = Σ dy·x̂
    batch statistics:  dx = k·(dy − db/m − x̂·dw/m)
    given statistics:  dx = k·dy                                     (μ, σ² are constants)

A NumPy chain would make a pass over the activation for every operator (a mean,
a subtraction, a square, another mean, ...), each writing a temporary as large as
the input. Here one parallel loop over channels does it all: per channel, the
forward sweeps the channel's ``N`` rows twice for μ and σ² (two sweeps, not
``Σx² − (Σx)²/m``, which cancels catastrophically when ``|μ| ≫ σ``) and once to write
``y``; the backward sweeps them once for ``db, dw`` and once to write ``dx``. The
sums are accumulated in float64 whatever the data type, by the row helpers below, which are compiled
with ``fastmath={"reassoc"}`` so that the float64 sums vectorise; the elementwise
formulas are compiled without it, so ``(x − μ)·k + b`` is evaluated exactly as
written. Channels are independent, so the results do not depend on the number of
threads.

Only the backward needs ``x`` (it recomputes ``x̂``): no normalised copy of the
input is kept between the passes.

Batch norm + ReLU (``relu=True``): the forward writes ``max(y, 0)`` in its last pass
and the backward reads ReLU's gradient ``0 if out ≤ 0 else dy`` in both of its passes,
so the pair costs no pass of its own (a separate ReLU reads and writes every
activation once more, forward and backward). The results are those of the two
kernels one after the other, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import _runtime

__all__ = ["batch_norm_forward", "batch_norm_backward"]


def _row_sum_kernel(row):
    """``Σ row[i]`` in float64."""
    s = 0.0
    for i in range(row.shape[0]):
        s += row[i]
    return s


def _row_centered_sq_sum_kernel(row, mu):
    """``Σ (row[i] − μ)²`` in float64 (μ float64)."""
    s = 0.0
    for i in range(row.shape[0]):
        d = row[i] - mu
        s += d * d
    return s


def _row_masked_grad_sums_kernel(dy, out, row, mu):
    """:func:`_row_grad_sums_kernel` of ReLU's backward ``g = 0 if out[i] ≤ 0 else dy[i]`` (float64)."""
    s = 0.0
    sx = 0.0
    for i in range(row.shape[0]):
        g = 0.0 if out[i] <= 0 else dy[i] * 1.0
        s += g
        sx += g * (row[i] - mu)
    return s, sx


def _row_grad_sums_kernel(dy, row, mu):
    """``(Σ dy[i], Σ dy[i]·(row[i] − μ))`` in float64 (μ float64)."""
    s = 0.0
    sx = 0.0
    for i in range(row.shape[0]):
        g = dy[i] * 1.0
        s += g
        sx += g * (row[i] - mu)
    return s, sx


def _batch_norm_forward_kernel(x, weight, bias, eps, batch_stats, relu, mean, var, inv_std, y):
    """Normalise ``x: (N, C, L)`` into ``y``; with ``batch_stats`` first compute ``mean, var`` (written);
    with ``relu``, ``y = max(y, 0)`` in the same write (``0 if v < 0 else v``, as :mod:`kernels.cpu.relu`).

    weight, bias: (C,) in x's dtype; mean, var: (C,) in x's dtype, read (given
    statistics) or written (batch statistics); inv_std: (C,) float64, written::

        for c in prange(C):
            if batch_stats:
                μ = Σ_{n,i} x[n, c, i] / m;   σ² = Σ_{n,i} (x[n, c, i] − μ)² / m      (float64)
                mean[c], var[c] = μ, σ²
            inv_std[c] = 1 / sqrt(var[c] + eps)                                       (float64)
            k = T(weight[c]·inv_std[c])
            y[n, c, i] = (x[n, c, i] − mean[c])·k + bias[c]                          (in T, x's dtype)
    """
    n_images, channels, length = x.shape
    m = n_images * length
    for c in prange(channels):
        if batch_stats:
            s = 0.0
            for n in range(n_images):
                s += _row_sum(x[n, c])
            mu = s / m
            ss = 0.0
            for n in range(n_images):
                ss += _row_centered_sq_sum(x[n, c], mu)
            mean[c] = mu
            var[c] = ss / m
        istd = 1.0 / math.sqrt(var[c] * 1.0 + eps)
        inv_std[c] = istd
        k = weight[c] * istd
        mu_t = mean[c]
        b = bias[c]
        k_t = y.dtype.type(k)
        zero = y.dtype.type(0)
        for n in range(n_images):
            src = x[n, c]
            dst = y[n, c]
            if relu:
                for i in range(length):
                    v = (src[i] - mu_t) * k_t + b
                    dst[i] = zero if v < 0 else v
            else:
                for i in range(length):
                    dst[i] = (src[i] - mu_t) * k_t + b


def _batch_norm_backward_kernel(grad_out, x, out, weight, mean, inv_std, batch_stats, relu, grad_x, grad_weight,
                                grad_bias):
    """``grad_x`` (N, C, L) and the per-channel ``grad_weight``, ``grad_bias`` (C,), all written.

    grad_out, x: (N, C, L); weight, mean: (C,) in x's dtype; inv_std: (C,) float64. With ``relu``
    (the forward applied ReLU), ``out`` (N, C, L) is that forward's output and every read of ``dy``
    below is ReLU's backward, ``0 if out ≤ 0 else grad_out`` (as :mod:`kernels.cpu.relu`); without,
    ``out`` is not read::

        for c in prange(C):
            db = Σ_{n,i} dy;   s = Σ_{n,i} dy·(x − mean[c]);   dw = s·inv_std[c]          (float64)
            grad_bias[c], grad_weight[c] = db, dw
            k = weight[c]·inv_std[c]
            batch_stats:  grad_x = k·(dy − db/m − (x − mean[c])·q),  q = inv_std[c]·dw/m  (in T)
            otherwise:    grad_x = k·dy
    """
    n_images, channels, length = x.shape
    m = n_images * length
    T = grad_x.dtype.type
    for c in prange(channels):
        mu = mean[c] * 1.0
        istd = inv_std[c]
        db = 0.0
        s = 0.0
        for n in range(n_images):
            if relu:
                a, b = _row_masked_grad_sums(grad_out[n, c], out[n, c], x[n, c], mu)
            else:
                a, b = _row_grad_sums(grad_out[n, c], x[n, c], mu)
            db += a
            s += b
        dw = s * istd
        grad_bias[c] = db
        grad_weight[c] = dw
        k = T(weight[c] * istd)
        zero = T(0)
        shift = T(db / m) if batch_stats else zero
        q = T(istd * dw / m) if batch_stats else zero
        mu_t = mean[c]
        for n in range(n_images):
            dy = grad_out[n, c]
            src = x[n, c]
            dst = grad_x[n, c]
            if relu:
                mask = out[n, c]
                if batch_stats:
                    for i in range(length):
                        g = zero if mask[i] <= 0 else dy[i]
                        dst[i] = k * (g - shift - (src[i] - mu_t) * q)
                else:
                    for i in range(length):
                        dst[i] = k * (zero if mask[i] <= 0 else dy[i])
            elif batch_stats:
                for i in range(length):
                    dst[i] = k * (dy[i] - shift - (src[i] - mu_t) * q)
            else:
                for i in range(length):
                    dst[i] = k * dy[i]


_row_sum = njit(cache=True, fastmath={"reassoc"})(_row_sum_kernel)
_row_centered_sq_sum = njit(cache=True, fastmath={"reassoc"})(_row_centered_sq_sum_kernel)
_row_grad_sums = njit(cache=True, fastmath={"reassoc"})(_row_grad_sums_kernel)
_row_masked_grad_sums = njit(cache=True, fastmath={"reassoc"})(_row_masked_grad_sums_kernel)
_batch_norm_forward = njit(parallel=True, cache=True)(_batch_norm_forward_kernel)
_batch_norm_backward = njit(parallel=True, cache=True)(_batch_norm_backward_kernel)


def _channels(a: np.ndarray, dtype) -> np.ndarray:
    """``a: (N, C, *)`` as a C-contiguous ``(N, C, L)`` array of ``dtype`` (a view when it already is one)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _per_channel(v, channels: int, fill: float, dtype) -> np.ndarray:
    """``v`` as a contiguous (C,) array of ``dtype``, or ``fill`` repeated when ``v`` is None."""
    if v is None:
        return np.full(channels, fill, dtype=dtype)
    return np.ascontiguousarray(v, dtype=dtype)


def batch_norm_forward(x, weight, bias, mean, var, eps, relu=False):
    """Batch normalisation of ``x: (N, C, *)``; returns ``(y, mean, var, inv_std)``.

    weight, bias: (C,) or None (1 and 0); mean, var: (C,) statistics to normalise
    with (eval mode), or both None to compute the batch's (biased variance).
    Returns ``y`` of x's shape and dtype, the ``mean`` and ``var`` used (x's dtype:
    the batch's when computed here) and ``inv_std = 1/sqrt(var + eps)`` (float64,
    for the backward). ``relu``: return ``relu(y)`` instead, in the same pass (batch
    norm + ReLU, as every conv block of U-Net and SegNet uses them). Formula and loop:
    :func:`_batch_norm_forward_kernel`.
    """
    dtype = x.dtype
    x3 = _channels(x, dtype)
    channels = x3.shape[1]
    batch_stats = mean is None
    if batch_stats:
        mean = np.empty(channels, dtype=dtype)
        var = np.empty(channels, dtype=dtype)
    else:
        mean = np.ascontiguousarray(mean, dtype=dtype)
        var = np.ascontiguousarray(var, dtype=dtype)
    inv_std = np.empty(channels, dtype=np.float64)
    y = _runtime.empty(x3.shape, dtype)
    _batch_norm_forward(x3, _per_channel(weight, channels, 1.0, dtype), _per_channel(bias, channels, 0.0, dtype),
                        float(eps), batch_stats, bool(relu), mean, var, inv_std, y)
    return y.reshape(x.shape), mean, var, inv_std


def batch_norm_backward(grad_out, x, weight, mean, inv_std, batch_stats, out=None):
    """Gradients of :func:`batch_norm_forward`: ``(grad_x, grad_weight, grad_bias)``.

    grad_out, x: (N, C, *); weight: (C,) or None; mean, inv_std: (C,) as returned
    by the forward; ``batch_stats``: whether the forward computed the statistics
    (then they depend on x); ``out``: the forward's output when it ran with
    ``relu=True`` (then ``grad_out`` is the gradient of ``relu(y)`` and passes ReLU's
    backward first, in the same passes), else None. grad_x has x's shape and dtype,
    grad_weight and grad_bias are (C,) in x's dtype. Formula and loop:
    :func:`_batch_norm_backward_kernel`.
    """
    dtype = x.dtype
    x3 = _channels(x, dtype)
    out3 = x3 if out is None else _channels(out, dtype)
    channels = x3.shape[1]
    grad_x = _runtime.empty(x3.shape, dtype)
    grad_weight = np.empty(channels, dtype=dtype)
    grad_bias = np.empty(channels, dtype=dtype)
    _batch_norm_backward(_channels(grad_out, dtype), x3, out3, _per_channel(weight, channels, 1.0, dtype),
                         np.ascontiguousarray(mean, dtype=dtype), np.ascontiguousarray(inv_std, dtype=np.float64),
                         bool(batch_stats), out is not None, grad_x, grad_weight, grad_bias)
    return grad_x.reshape(x.shape), grad_weight, grad_bias
