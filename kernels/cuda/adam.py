"""One Adam (or AdamW) update of one parameter on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.adam`.

The per-element formula and its scalars are :mod:`kernels.shared.adam`'s, as on
the CPU; one thread per element (grid-stride loop).
"""

from __future__ import annotations

from numba import cuda

from ..shared.adam import adam_element, adam_scalars
from ._launch import array_module, launch

__all__ = ["adam_step"]


def _adam_kernel(param, grad, exp_avg, exp_avg_sq, decay, wd, one_minus_beta1, beta2, one_minus_beta2,
                 bias_correction2_sqrt, eps, step_size):
    """Thread ``t`` updates elements ``t, t + G, ...`` with :func:`kernels.shared.adam.adam_element`."""
    for i in range(cuda.grid(1), param.shape[0], cuda.gridsize(1)):
        _adam_element(param, grad, exp_avg, exp_avg_sq, i, decay, wd, one_minus_beta1, beta2, one_minus_beta2,
                      bias_correction2_sqrt, eps, step_size)


_adam_element = cuda.jit(device=True)(adam_element)
_adam = cuda.jit(cache=True)(_adam_kernel)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    """Same contract as :func:`kernels.cpu.adam.adam_step`, on device arrays."""
    xp = array_module()
    flat = [xp.ascontiguousarray(a).reshape(-1) for a in (param, grad, exp_avg, exp_avg_sq)]
    launch(_adam, param.size, *flat, *adam_scalars(param.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled))
    for a, f in zip((param, exp_avg, exp_avg_sq), (flat[0], flat[2], flat[3])):
        if not a.flags.c_contiguous:  # updated in a contiguous copy: write it back
            a[...] = f.reshape(a.shape)
