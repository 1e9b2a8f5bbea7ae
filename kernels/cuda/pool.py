"""Max-pooling with indices and max-unpooling on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.pool`.

Shapes: ``x: (N, C, H, W)``; pooled ``out, indices: (N, C, Ho, Wo)``. An index is
the flat offset ``ih·W + iw`` of the selected element inside its own ``H×W``
plane (int64), exactly as torch 2.14.1 and the CPU kernels store it.

The CPU kernels give each thread a whole plane; here every thread takes single
elements (grid-stride loops, :mod:`kernels.cuda._launch`), so the work is split
``P·Ho·Wo`` ways instead of ``P = N·C`` ways:

* :func:`_max_pool2d_kernel`  one thread per output element, the same window scan;
* :func:`_scatter_add_kernel` max-pool's backward, one thread per upstream
  gradient element adding it at its index. Overlapping windows can pick the same
  input element, so two threads may add to one address at once: the add is a
  ``cuda.atomic.add``. Float atomics make the *order* of those additions depend on
  thread timing, so a sum of more than two terms may differ from the CPU's in the
  last bits (with non-overlapping windows, stride ≥ kernel, every element gets at
  most one term and the result is exact);
* :func:`_claim_kernel` + :func:`_gather_claimed_kernel` max-unpool's forward.
  The CPU scatter lets the value *last in C-order* win when indices repeat; a
  plain parallel store would leave that to thread timing. Instead each input
  element first claims its target with ``cuda.atomic.max`` of its own position
  (integer atomics are exact, so the largest position wins whatever the order),
  then one thread per output element copies the winner's value (or 0). The
  result equals the CPU's bit for bit;
* :func:`_gather_kernel` max-unpool's backward, one thread per input element.

The kernels expect validated arguments (``minitorchseg.functional`` checks geometry
and index ranges); the scatter, the claim and the gather still ignore an index
outside its plane instead of touching memory they do not own.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..geometry import pool_output_size
from ..shared.pool import invalid_unpool_index, window_max
from ._index import unravel3
from ._launch import array_module, launch

__all__ = [
    "max_pool2d_forward",
    "max_pool2d_backward",
    "max_unpool2d_forward",
    "max_unpool2d_backward",
]


def _max_pool2d_kernel(x, out, indices, kh, kw, sh, sw, ph, pw, dh, dw, neg_inf):
    """Windowed max and argmax; thread ``t`` computes output element ``t`` of ``(P, Ho, Wo)`` in C-order.

    x: (P, H, W); out, indices: (P, Ho, Wo) written in full. For ``t = (p, oh, ow)``,
    torch's ``cpu_max_pool`` scan, :func:`kernels.shared.pool.window_max` (the helper the
    CPU compiles too, compiled here as a device function)::

        ih0 = oh·sh − ph;  ih1 = min(ih0 + (kh−1)·dh + 1, H);  while ih0 < 0: ih0 += dh
        iw0 = ow·sw − pw;  iw1 = min(iw0 + (kw−1)·dw + 1, W);  while iw0 < 0: iw0 += dw
        best, arg = −inf, ih0·W + iw0
        for ih in range(ih0, ih1, dh):  for iw in range(iw0, iw1, dw):
            v = x[p, ih, iw];  if v > best or v is NaN: best, arg = v, ih·W + iw

    Ties keep the first tap, the last NaN wins, a window with no in-bounds tap
    reports −inf and ``ih0·W + iw0`` (which may be ≥ H·W), as on the CPU. Each
    thread writes only its own output: no atomics.
    """
    n_planes = x.shape[0]
    out_h, out_w = out.shape[1], out.shape[2]
    n = n_planes * out_h * out_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, oh, ow = unravel3(t, out_h, out_w)
        best, arg = _window_max(x[p], oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, neg_inf)
        out[p, oh, ow] = best
        indices[p, oh, ow] = arg


def _plane_target_kernel(indices, t, length):
    """Decode flat element ``t`` of ``indices: (P, M)`` into ``(p, i, j)`` with ``j = indices[p, i]``.

    ``p = t // M``, ``i = t % M``; ``j`` is returned as −1 when it lies outside its
    plane's ``[0, L)`` (``L = length``), so callers test ``j >= 0`` only.
    """
    m = indices.shape[1]
    p = t // m
    i = t % m
    j = indices[p, i]
    if j < 0 or j >= length:
        j = -1
    return p, i, j


def _scatter_add_kernel(src, indices, out):
    """``out[p, indices[p, i]] += src[p, i]``; thread ``t`` handles source element ``t = (p, i)``.

    src, indices: (P, M); out: (P, L), zero on entry. Indices outside ``[0, L)``
    (a window with no in-bounds tap) add nothing. Several threads can hit the same
    ``out[p, j]`` (overlapping windows), hence ``cuda.atomic.add``: the sum is
    right, its order of additions is not fixed (float rounding may differ in the
    last bits from the CPU's sequential sum).
    """
    length = out.shape[1]
    for t in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        p, i, j = _plane_target(indices, t, length)
        if j >= 0:
            cuda.atomic.add(out, (p, j), src[p, i])


def _claim_kernel(indices, winner):
    """``winner[p, j] = max{i : indices[p, i] = j}``; thread ``t`` handles input element ``t = (p, i)``.

    indices: (P, M); winner: (P, L) int64, −1 on entry. ``cuda.atomic.max`` on
    integers is exact and order-independent, so the claim is deterministic: the
    element last in C-order wins, as in the CPU's sequential scatter.
    """
    length = winner.shape[1]
    for t in range(cuda.grid(1), indices.size, cuda.gridsize(1)):
        p, i, j = _plane_target(indices, t, length)
        if j >= 0:
            cuda.atomic.max(winner, (p, j), i)


def _gather_claimed_kernel(src, winner, out):
    """``out[p, j] = src[p, winner[p, j]]`` or 0 when unclaimed; thread ``t`` writes ``out`` element ``t = (p, j)``.

    src: (P, M); winner, out: (P, L). Every output element is written exactly once.
    """
    n_planes, length = out.shape
    n = n_planes * length
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p = t // length
        j = t % length
        i = winner[p, j]
        if i >= 0:
            out[p, j] = src[p, i]
        else:
            out[p, j] = 0


def _gather_kernel(src, indices, out):
    """``out[p, i] = src[p, indices[p, i]]`` (0 outside ``[0, L)``); thread ``t`` writes ``out`` element ``t = (p, i)``.

    src: (P, L); indices, out: (P, M). Max-unpool's backward: every duplicate of an
    index receives the full upstream gradient. Reads only: no atomics.
    """
    length = src.shape[1]
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        p, i, j = _plane_target(indices, t, length)
        if j >= 0:
            out[p, i] = src[p, j]
        else:
            out[p, i] = 0


_window_max = cuda.jit(device=True)(window_max)
_plane_target = cuda.jit(device=True)(_plane_target_kernel)
_max_pool2d = cuda.jit(cache=True)(_max_pool2d_kernel)
_scatter_add = cuda.jit(cache=True)(_scatter_add_kernel)
_claim = cuda.jit(cache=True)(_claim_kernel)
_gather_claimed = cuda.jit(cache=True)(_gather_claimed_kernel)
_gather = cuda.jit(cache=True)(_gather_kernel)


def _planes(a, dtype=None):
    """``(N, C, *rest)`` → a C-contiguous ``(N·C, prod(rest))`` device array (copying only if needed)."""
    a = array_module().ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[0] * a.shape[1], int(np.prod(a.shape[2:])))


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max-pool ``x: (N, C, H, W)`` → ``(out, indices)``, both ``(N, C, Ho, Wo)``.

    Same contract as :func:`kernels.cpu.pool.max_pool2d_forward`: ``(h, w)`` pairs,
    sizes from :func:`kernels.geometry.pool_output_size`, ``out`` in x's dtype,
    ``indices`` int64. One thread per output element (:func:`_max_pool2d_kernel`).
    """
    xp = array_module()
    n, c, height, width = x.shape
    out_h = pool_output_size(height, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    out_w = pool_output_size(width, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    xc = xp.ascontiguousarray(x).reshape(n * c, height, width)
    out = xp.empty((n * c, out_h, out_w), dtype=x.dtype)
    indices = xp.empty((n * c, out_h, out_w), dtype=np.int64)
    launch(
        _max_pool2d, out.size, xc, out, indices, kernel_size[0], kernel_size[1], stride[0], stride[1],
        padding[0], padding[1], dilation[0], dilation[1], x.dtype.type(-np.inf),
    )
    return out.reshape(n, c, out_h, out_w), indices.reshape(n, c, out_h, out_w)


def max_pool2d_backward(grad_out, indices, input_hw):
    """Gradient of max-pooling: ``grad_x.plane.flat[indices] += grad_out`` (atomic scatter-add).

    grad_out, indices: (N, C, Ho, Wo); returns grad_x: (N, C, H, W) with
    ``(H, W) = input_hw`` in grad_out's dtype. See :func:`_scatter_add_kernel` for
    why the adds are atomic and what that does to rounding.
    """
    xp = array_module()
    n, c = grad_out.shape[:2]
    height, width = input_hw
    grad_x = xp.zeros((n * c, height * width), dtype=grad_out.dtype)
    src = _planes(grad_out)
    launch(_scatter_add, src.size, src, _planes(indices, np.int64), grad_x)
    return grad_x.reshape(n, c, height, width)


def max_unpool2d_forward(x, indices, output_hw):
    """Max-unpool: zeros of ``(N, C, Ho, Wo)`` with ``out.plane.flat[indices] = x``.

    x, indices: (N, C, H, W); ``(Ho, Wo) = output_hw``; indices decoded with the
    output width; ValueError (as on the CPU) when one lies outside ``[0, Ho·Wo)``, checked first.
    Duplicate indices: the value last in C-order wins, as on the CPU, made deterministic by a claim
    pass (:func:`_claim_kernel`) then a gather (:func:`_gather_claimed_kernel`).
    """
    xp = array_module()
    n, c = x.shape[:2]
    out_h, out_w = output_hw
    if indices.size and int(xp.asarray(indices, dtype=np.int64).view(np.uint64).max()) >= out_h * out_w:
        raise invalid_unpool_index(indices, output_hw)   # a negative int64 is a huge uint64
    src = _planes(x)
    winner = xp.full((n * c, out_h * out_w), -1, dtype=np.int64)
    launch(_claim, src.size, _planes(indices, np.int64), winner)
    out = xp.empty((n * c, out_h * out_w), dtype=x.dtype)
    launch(_gather_claimed, out.size, src, winner, out)
    return out.reshape(n, c, out_h, out_w)


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max-unpool: the gather ``grad_x = grad_out.plane.flat[indices]``.

    grad_out: (N, C, Ho, Wo); indices: (N, C, H, W); returns grad_x of indices'
    shape in grad_out's dtype; one thread per element (:func:`_gather_kernel`).
    """
    xp = array_module()
    n, c, height, width = indices.shape
    grad_x = xp.empty((n * c, height * width), dtype=grad_out.dtype)
    launch(_gather, grad_x.size, _planes(grad_out), _planes(indices, np.int64), grad_x)
    return grad_x.reshape(n, c, height, width)
