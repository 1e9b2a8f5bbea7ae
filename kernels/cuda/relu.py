"""ReLU on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.relu`.

Same formulas on the same flat, C-contiguous view::

    relu_forward:   out[i] = 0 if x[i] < 0 else x[i]
    relu_backward:  grad_x[i] = 0 if out[i] <= 0 else grad_out[i]

One thread per element (grid-stride loop over ``n``).
"""

from __future__ import annotations

from numba import cuda

from ._launch import array_module, launch

__all__ = ["relu_forward", "relu_backward"]


def _relu_forward_kernel(x, out):
    """Thread ``t`` writes elements ``t, t + G, ...``: ``out[i] = 0 if x[i] < 0 else x[i]``."""
    zero = out.dtype.type(0)
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        v = x[i]
        out[i] = zero if v < 0 else v


def _relu_backward_kernel(grad_out, out, grad_x):
    """Thread ``t`` writes elements ``t, t + G, ...``: ``grad_x[i] = 0 if out[i] <= 0 else grad_out[i]``."""
    zero = grad_x.dtype.type(0)
    for i in range(cuda.grid(1), grad_out.shape[0], cuda.gridsize(1)):
        grad_x[i] = zero if out[i] <= 0 else grad_out[i]


_relu_forward = cuda.jit(cache=True)(_relu_forward_kernel)
_relu_backward = cuda.jit(cache=True)(_relu_backward_kernel)


def relu_forward(x):
    """``max(x, 0)``; same contract as :func:`kernels.cpu.relu.relu_forward`."""
    xp = array_module()
    x = xp.asarray(x, order="C")
    out = xp.empty_like(x)
    launch(_relu_forward, x.size, x.reshape(-1), out.reshape(-1))
    return out


def relu_backward(grad_out, out):
    """∂L/∂x of ReLU; same contract as :func:`kernels.cpu.relu.relu_backward`."""
    xp = array_module()
    grad_out = xp.asarray(grad_out, order="C")
    out = xp.asarray(out, order="C")
    grad_x = xp.empty_like(grad_out)
    launch(_relu_backward, grad_out.size, grad_out.reshape(-1), out.reshape(-1), grad_x.reshape(-1))
    return grad_x
