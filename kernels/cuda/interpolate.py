"""Bilinear and nearest-neighbour resizing on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.interpolate`.

Shapes: ``x: (N, C, H, W)`` → ``out: (N, C, Ho, Wo)``, seen as ``P = N·C`` planes.
The source taps and weights along each dimension are the CPU's
(:func:`kernels.shared.interpolate.bilinear_taps`, :func:`kernels.shared.interpolate.nearest_taps`:
plain NumPy on 1-D arrays of length Ho or Wo), computed on the host once per call
and copied to the device, so both devices sample exactly the same coordinates.

Thread mappings. The forwards are gathers, one thread per output element. The
backwards are the adjoint *scatters* (every output adds into 2×2 or 1 input
pixels, and neighbouring outputs share pixels); torch's CUDA kernels run them with
one thread per output and float ``atomicAdd``, which makes each sum's order, and
so its rounding, depend on thread timing. Here they are turned into gathers
instead: the taps are monotone in the output position, so the outputs that read
input row ``h`` form a short range ``[lo[h], hi[h])`` (:func:`_readers`, on the
host), and one thread per *input* element adds its contributions over that range
in increasing output order, which is the order of the CPU's sequential loop. No
atomics; the result is deterministic and equals the CPU's bit for bit.

The bilinear backward keeps the CPU's two separable passes: first along H into
``rows: (P, H, Wo)`` (one thread per element of ``rows``), then along W into
``grad_x`` (one thread per element of ``grad_x``).
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ..shared.interpolate import bilinear_taps_hw, nearest_taps_hw
from ._index import unravel3
from ._launch import array_module, launch

__all__ = [
    "upsample_bilinear2d_forward",
    "upsample_bilinear2d_backward",
    "upsample_nearest2d_forward",
    "upsample_nearest2d_backward",
]


def _bilinear_forward_kernel(x, out, y0, y1, wy0, wy1, x0, x1, wx0, wx1):
    """Bilinear resize; thread ``t`` computes ``out`` element ``t = (p, oh, ow)`` in C-order.

    x: (P, H, W); out: (P, Ho, Wo); taps as in :func:`kernels.shared.interpolate.bilinear_taps`::

        out[p, oh, ow] = wy0[oh]·(wx0[ow]·x[p, y0, x0] + wx1[ow]·x[p, y0, x1])
                       + wy1[oh]·(wx0[ow]·x[p, y1, x0] + wx1[ow]·x[p, y1, x1])

    in this order (the CPU's). Each thread writes only its own output.
    """
    n_planes, out_h, out_w = out.shape
    n = n_planes * out_h * out_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, oh, ow = unravel3(t, out_h, out_w)
        top = wx0[ow] * x[p, y0[oh], x0[ow]] + wx1[ow] * x[p, y0[oh], x1[ow]]
        bottom = wx0[ow] * x[p, y1[oh], x0[ow]] + wx1[ow] * x[p, y1[oh], x1[ow]]
        out[p, oh, ow] = wy0[oh] * top + wy1[oh] * bottom


def _two_tap_adjoint_kernel(g, i, i0, i1, w0, w1, lo, hi, zero):
    """Gradient reaching input position ``i`` along one dimension from the 1-D upstream line ``g: (O,)``.

    ``i0, i1, w0, w1: (O,)`` the two taps and weights of every output position
    (:func:`kernels.shared.interpolate.bilinear_taps`); ``[lo[i], hi[i])`` the outputs
    that read ``i`` (:func:`_readers`)::

        acc = zero
        for o in [lo[i], hi[i]):
            if i0[o] == i:  acc += w0[o]·g[o]
            if i1[o] == i:  acc += w1[o]·g[o]
        return acc

    The adjoint of ``out[o] = w0[o]·f[i0[o]] + w1[o]·f[i1[o]]``, as a gather in
    increasing ``o`` (the CPU's order of additions).
    """
    acc = zero
    for o in range(lo[i], hi[i]):
        if i0[o] == i:
            acc += w0[o] * g[o]
        if i1[o] == i:
            acc += w1[o] * g[o]
    return acc


def _bilinear_backward_rows_kernel(grad_out, rows, y0, y1, wy0, wy1, lo, hi):
    """First backward pass (along H); thread ``t`` computes ``rows`` element ``t = (p, h, ow)``.

    grad_out: (P, Ho, Wo); rows: (P, H, Wo) written in full; ``[lo[h], hi[h])`` the
    output rows that read input row ``h``::

        acc = 0
        for oh in [lo[h], hi[h]):
            if y0[oh] == h:  acc += wy0[oh]·grad_out[p, oh, ow]
            if y1[oh] == h:  acc += wy1[oh]·grad_out[p, oh, ow]
        rows[p, h, ow] = acc

    A gather: no atomics, the CPU's order of additions.
    """
    n_planes, height, out_w = rows.shape
    T = rows.dtype.type
    n = n_planes * height * out_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, h, ow = unravel3(t, height, out_w)
        rows[p, h, ow] = _two_tap_adjoint(grad_out[p, :, ow], h, y0, y1, wy0, wy1, lo, hi, T(0.0))


def _bilinear_backward_cols_kernel(rows, grad_x, x0, x1, wx0, wx1, lo, hi):
    """Second backward pass (along W); thread ``t`` computes ``grad_x`` element ``t = (p, h, w)``.

    rows: (P, H, Wo) from the first pass; grad_x: (P, H, W) written in full;
    ``[lo[w], hi[w])`` the output columns that read input column ``w``::

        acc = 0
        for ow in [lo[w], hi[w]):
            if x0[ow] == w:  acc += wx0[ow]·rows[p, h, ow]
            if x1[ow] == w:  acc += wx1[ow]·rows[p, h, ow]
        grad_x[p, h, w] = acc
    """
    n_planes, height, width = grad_x.shape
    T = grad_x.dtype.type
    n = n_planes * height * width
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, h, w = unravel3(t, height, width)
        grad_x[p, h, w] = _two_tap_adjoint(rows[p, h], w, x0, x1, wx0, wx1, lo, hi, T(0.0))


def _nearest_forward_kernel(x, out, src_h, src_w):
    """``out[p, oh, ow] = x[p, src_h[oh], src_w[ow]]``; thread ``t`` writes ``out`` element ``t = (p, oh, ow)``."""
    n_planes, out_h, out_w = out.shape
    n = n_planes * out_h * out_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, oh, ow = unravel3(t, out_h, out_w)
        out[p, oh, ow] = x[p, src_h[oh], src_w[ow]]


def _nearest_backward_kernel(grad_out, grad_x, src_h, src_w, lo_h, hi_h, lo_w, hi_w):
    """Adjoint of the nearest gather; thread ``t`` computes ``grad_x`` element ``t = (p, h, w)``.

    grad_out: (P, Ho, Wo); grad_x: (P, H, W) written in full::

        grad_x[p, h, w] = Σ_{oh in [lo_h[h], hi_h[h]), src_h[oh] = h} Σ_{ow in [lo_w[w], hi_w[w]), src_w[ow] = w}
                          grad_out[p, oh, ow]           (in C-order over (oh, ow), as the CPU adds)
    """
    n_planes, height, width = grad_x.shape
    T = grad_x.dtype.type
    n = n_planes * height * width
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        p, h, w = unravel3(t, height, width)
        acc = T(0.0)
        for oh in range(lo_h[h], hi_h[h]):
            if src_h[oh] == h:
                for ow in range(lo_w[w], hi_w[w]):
                    if src_w[ow] == w:
                        acc += grad_out[p, oh, ow]
        grad_x[p, h, w] = acc


_two_tap_adjoint = cuda.jit(device=True)(_two_tap_adjoint_kernel)
_bilinear_forward = cuda.jit(cache=True)(_bilinear_forward_kernel)
_bilinear_backward_rows = cuda.jit(cache=True)(_bilinear_backward_rows_kernel)
_bilinear_backward_cols = cuda.jit(cache=True)(_bilinear_backward_cols_kernel)
_nearest_forward = cuda.jit(cache=True)(_nearest_forward_kernel)
_nearest_backward = cuda.jit(cache=True)(_nearest_backward_kernel)


def _readers(in_size: int, *taps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each input index ``i``: the range ``[lo[i], hi[i])`` of output positions whose taps include ``i``.

    taps: one or more int arrays of length ``out`` (``i0`` and ``i1`` for bilinear,
    ``src`` for nearest). Inputs nobody reads get the empty range ``[out, 0)``.
    Host NumPy, O(out).
    """
    out_size = taps[0].shape[0]
    lo = np.full(in_size, out_size, dtype=np.int64)
    hi = np.zeros(in_size, dtype=np.int64)
    positions = np.arange(out_size, dtype=np.int64)
    for tap in taps:
        np.minimum.at(lo, tap, positions)
        np.maximum.at(hi, tap, positions + 1)
    return lo, hi


def _device(*arrays):
    """The host arrays copied to the device (as they are under the simulator)."""
    xp = array_module()
    return tuple(xp.asarray(np.ascontiguousarray(a)) for a in arrays)


def _on_planes(kernel, src, out_hw, *taps):
    """Run ``kernel(src planes, out planes, *taps)`` with one thread per output element.

    src: (N, C, *in) on the device; returns ``out: (N, C, *out_hw)`` in src's dtype.
    The planes are ``src`` as a contiguous ``(N·C, *in)`` array and ``out`` allocated
    as ``(N·C, *out_hw)``; the host arrays ``taps`` are copied to the device first.
    """
    xp = array_module()
    n, c = src.shape[:2]
    planes = xp.ascontiguousarray(src).reshape(n * c, *src.shape[2:])
    out = xp.empty((n * c, *out_hw), dtype=src.dtype)
    launch(kernel, out.size, planes, out, *_device(*taps))
    return out.reshape(n, c, *out_hw)


def upsample_bilinear2d_forward(x, output_hw, align_corners, scales):
    """Bilinear resize ``x: (N, C, H, W)`` → ``(N, C, Ho, Wo)``; same contract as the CPU entry point."""
    taps = bilinear_taps_hw(x.shape[2:], output_hw, align_corners, scales, x.dtype)
    return _on_planes(_bilinear_forward, x, tuple(output_hw), *taps)


def upsample_bilinear2d_backward(grad_out, input_hw, align_corners, scales):
    """Gradient of :func:`upsample_bilinear2d_forward` w.r.t. x: ``(N, C, Ho, Wo)`` → ``(N, C, H, W)``.

    Two gather passes (along H into ``rows: (N, C, H, Wo)``, then along W), no
    atomics; see the module docstring.
    """
    height, width = input_hw
    out_w = grad_out.shape[3]
    y0, y1, wy0, wy1, x0, x1, wx0, wx1 = bilinear_taps_hw(
        input_hw, grad_out.shape[2:], align_corners, scales, grad_out.dtype
    )
    rows = _on_planes(_bilinear_backward_rows, grad_out, (height, out_w), y0, y1, wy0, wy1, *_readers(height, y0, y1))
    return _on_planes(_bilinear_backward_cols, rows, (height, width), x0, x1, wx0, wx1, *_readers(width, x0, x1))


def upsample_nearest2d_forward(x, output_hw, scales):
    """Nearest-neighbour resize ``(N, C, H, W)`` → ``(N, C, Ho, Wo)``; same contract as the CPU entry point."""
    src_h, src_w = nearest_taps_hw(x.shape[2:], output_hw, scales)
    return _on_planes(_nearest_forward, x, tuple(output_hw), src_h, src_w)


def upsample_nearest2d_backward(grad_out, input_hw, scales):
    """Gradient of :func:`upsample_nearest2d_forward`: each input gathers the gradients of its copies."""
    height, width = input_hw
    src_h, src_w = nearest_taps_hw(input_hw, grad_out.shape[2:], scales)
    return _on_planes(
        _nearest_backward, grad_out, (height, width), src_h, src_w, *_readers(height, src_h), *_readers(width, src_w)
    )
