"""One Adam (or AdamW) update of one parameter on the CPU (Numba): every array read and written once.

Shapes: ``param``, ``grad``, ``exp_avg``, ``exp_avg_sq`` one shape, the parameter's
float dtype ``T``; ``param`` and the two moments are updated in place. The
per-element formula, in torch's order, and its scalars are
:mod:`kernels.shared.adam`'s (both devices run it)::

    p ← p·(1 − lr·wd) [AdamW];  g ← g + wd·p [Adam];  m ← m + (1 − β1)(g − m);  v ← v·β2 + (1 − β2)·g·g
    p ← p − (lr / (1 − β1ᵗ))·m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)

A NumPy chain makes about ten passes over each parameter-sized array, each
writing a temporary; here the elements are cut into chunks of :data:`CHUNK`
shared out to Numba's threads, and each element is read and written once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shared.adam import adam_element, adam_scalars

__all__ = ["CHUNK", "adam_step"]

# Elements per parallel task.
CHUNK = 1 << 14


def _adam_kernel(param, grad, exp_avg, exp_avg_sq, decay, wd, one_minus_beta1, beta2, one_minus_beta2,
                 bias_correction2_sqrt, eps, step_size):
    """Flat ``(n,)`` arrays, scalars in ``T``::

        for chunk in prange(ceil(n / CHUNK)):
            for i in chunk:
                adam_element(param, grad, exp_avg, exp_avg_sq, i, scalars...)

    Each chunk works on slices indexed from 0, as ReLU's kernels
    (:mod:`kernels.cpu.relu`): Numba vectorises that loop, not one indexed
    ``range(chunk·CHUNK, ...)`` inside the prange.
    """
    n = param.shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        lo = chunk * CHUNK
        hi = min(n, lo + CHUNK)
        p = param[lo:hi]
        g = grad[lo:hi]
        m = exp_avg[lo:hi]
        v = exp_avg_sq[lo:hi]
        for k in range(hi - lo):
            _adam_element(p, g, m, v, k, decay, wd, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt,
                          eps, step_size)


_adam_element = njit(cache=True, inline="always")(adam_element)
_adam = njit(parallel=True, cache=True, nogil=True)(_adam_kernel)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Update ``param``, ``exp_avg``, ``exp_avg_sq`` in place for step ``step`` (the count including this one, ≥ 1).

    ``decoupled``: AdamW's weight decay (``p·(1 − lr·wd)``) instead of Adam's L2
    term added to the gradient. Returns None.
    """
    flat = [np.ascontiguousarray(a).reshape(-1) for a in (param, grad, exp_avg, exp_avg_sq)]
    _adam(*flat, *adam_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled))
    for a, f in zip((param, exp_avg, exp_avg_sq), (flat[0], flat[2], flat[3])):
        if not a.flags.c_contiguous:  # updated in a contiguous copy: write it back
            a[...] = f.reshape(a.shape)
