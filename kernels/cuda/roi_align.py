"""RoIAlign forward and backward on the GPU (Numba-CUDA); twin of :mod:`kernels.cpu.roi_align`.

Shapes: ``x: (N, C, H, W)``; ``rois: (K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``
in x's dtype; ``out: (K, C, PH, PW)``.

The arithmetic is the CPU's, compiled a second time: the RoI geometry
(:func:`kernels.shared.roi_align.roi_geometry`: start, bin size, sampling
grid), the sample coordinates (:func:`kernels.shared.roi_align.sample_coord`)
and the bilinear taps (:func:`kernels.shared.roi_align.bilinear`: four
flat offsets ``y·W + x``, four weights, a validity flag) are the same Python
functions the CPU compiles with ``njit``, bound here with ``cuda.jit(device=True)``. Only the loop around them
changes, to torchvision's CUDA thread mapping:

* forward: one thread per output element ``(k, c, ph, pw)``; it recomputes the
  geometry of RoI ``k`` (a few flops) and sums the ``gh·gw`` samples of its bin
  in the CPU's order, so under the simulator the result is the CPU's bit for bit
  (on a GPU the compiler may fuse a multiply and an add into one FMA, which
  rounds once instead of twice);
* backward: one thread per upstream element ``(k, c, ph, pw)`` scatters
  ``go·w / count`` to the four taps of each sample. Different bins and different
  RoIs overlap on the map, so several threads add to one input pixel: the adds
  are ``cuda.atomic.add``. Float atomics leave the order of those additions to
  thread timing, so the sums can differ from the CPU's sequential ones in the
  last bits (and between runs), as torchvision's CUDA backward does.

The kernels expect validated arguments (``minitorchseg.ops.roi_align`` checks
shapes, finite boxes and batch indices before anything runs).
"""

from __future__ import annotations

from numba import cuda

from ..shared.roi_align import bilinear, roi_geometry, sample_coord
from ._index import unravel4
from ._launch import array_module, launch

__all__ = ["roi_align_forward", "roi_align_backward"]


def _roi_align_forward_kernel(x, rois, out, height, width, spatial_scale, sampling_ratio, aligned):
    """RoIAlign forward; thread ``t`` computes ``out`` element ``t = (k, c, ph, pw)`` in C-order.

    x: (N, C, H·W); rois: (K, 5); out: (K, C, PH, PW) written in full::

        b = int(rois[k, 0]);  start, bin, (gh, gw) = geometry of RoI k
        acc = 0
        for iy < gh:  y = start_h + ph·bin_h + (iy + 0.5)·bin_h / gh
            for ix < gw:  x = start_w + pw·bin_w + (ix + 0.5)·bin_w / gw
                (p1..p4, w1..w4) = bilinear(y, x)
                acc += w1·x[b, c, p1] + w2·x[b, c, p2] + w3·x[b, c, p3] + w4·x[b, c, p4]
        out[k, c, ph, pw] = acc / max(gh·gw, 1)

    (all in T = x's dtype). Each thread writes only its own output: no atomics.
    """
    T = x.dtype.type
    n_rois, channels, pooled_h, pooled_w = out.shape
    n = n_rois * channels * pooled_h * pooled_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        k, c, ph, pw = unravel4(t, channels, pooled_h, pooled_w)
        b = int(rois[k, 0])
        start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
            rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned
        )
        count = T(max(grid_h * grid_w, 1))
        acc = T(0.0)
        for iy in range(grid_h):
            y = _sample_coord(start_h, ph, bin_h, iy, grid_h)
            for ix in range(grid_w):
                xs = _sample_coord(start_w, pw, bin_w, ix, grid_w)
                p1, p2, p3, p4, w1, w2, w3, w4, ok = _bilinear(y, xs, height, width)
                acc += w1 * x[b, c, p1] + w2 * x[b, c, p2] + w3 * x[b, c, p3] + w4 * x[b, c, p4]
        out[k, c, ph, pw] = acc / count


def _roi_align_backward_kernel(grad_out, rois, grad_x, height, width, spatial_scale, sampling_ratio, aligned):
    """RoIAlign backward; thread ``t`` scatters ``grad_out`` element ``t = (k, c, ph, pw)``.

    grad_out: (K, C, PH, PW); rois: (K, 5); grad_x: (N, C, H·W), zero on entry::

        count = gh·gw  (nothing to do when 0)
        for each sample (iy, ix) of bin (ph, pw), if it lies on the map:
            for tap q = 1..4:  atomic grad_x[b, c, pq] += go·wq / count

    The same samples and weights as the forward (the same helpers). Taps of
    different threads coincide, hence the atomics (order of float additions not
    fixed; see the module docstring).
    """
    T = grad_x.dtype.type
    n_rois, channels, pooled_h, pooled_w = grad_out.shape
    n = n_rois * channels * pooled_h * pooled_w
    for t in range(cuda.grid(1), n, cuda.gridsize(1)):
        k, c, ph, pw = unravel4(t, channels, pooled_h, pooled_w)
        b = int(rois[k, 0])
        start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
            rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned
        )
        if grid_h * grid_w <= 0:
            continue
        count = T(grid_h * grid_w)
        g = grad_out[k, c, ph, pw]
        for iy in range(grid_h):
            y = _sample_coord(start_h, ph, bin_h, iy, grid_h)
            for ix in range(grid_w):
                xs = _sample_coord(start_w, pw, bin_w, ix, grid_w)
                p1, p2, p3, p4, w1, w2, w3, w4, ok = _bilinear(y, xs, height, width)
                if ok:
                    cuda.atomic.add(grad_x, (b, c, p1), g * w1 / count)
                    cuda.atomic.add(grad_x, (b, c, p2), g * w2 / count)
                    cuda.atomic.add(grad_x, (b, c, p3), g * w3 / count)
                    cuda.atomic.add(grad_x, (b, c, p4), g * w4 / count)


_roi_geometry = cuda.jit(device=True)(roi_geometry)
_bilinear = cuda.jit(device=True)(bilinear)
_sample_coord = cuda.jit(device=True)(sample_coord)
_roi_align_forward = cuda.jit(cache=True)(_roi_align_forward_kernel)
_roi_align_backward = cuda.jit(cache=True)(_roi_align_backward_kernel)


def roi_align_forward(x, rois, output_hw, spatial_scale, sampling_ratio, aligned):
    """RoIAlign of ``x: (N, C, H, W)`` over ``rois: (K, 5)`` → ``(K, C, PH, PW)``.

    Same contract as :func:`kernels.cpu.roi_align.roi_align_forward`
    (``spatial_scale`` cast to x's dtype first; ``sampling_ratio ≤ 0`` adaptive;
    ``aligned`` the half-pixel shift). One thread per output element.
    """
    xp = array_module()
    n, c, height, width = x.shape
    pooled_h, pooled_w = int(output_hw[0]), int(output_hw[1])
    k = rois.shape[0]
    out = xp.zeros((k, c, pooled_h, pooled_w), dtype=x.dtype)
    if out.size == 0:
        return out
    launch(
        _roi_align_forward, out.size, xp.ascontiguousarray(x).reshape(n, c, height * width),
        xp.ascontiguousarray(rois, dtype=x.dtype), out, height, width, x.dtype.type(spatial_scale),
        int(sampling_ratio), bool(aligned),
    )
    return out


def roi_align_backward(grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """Gradient of RoIAlign with respect to x: ``(N, C, H, W) = input_shape``, grad_out's dtype.

    grad_out: (K, C, PH, PW), any strides; the forward's four bilinear weights
    scattered back with float atomics (see the module docstring).
    """
    xp = array_module()
    n, c, height, width = (int(v) for v in input_shape)
    grad_x = xp.zeros((n, c, height * width), dtype=grad_out.dtype)
    if grad_out.size == 0 or grad_x.size == 0:
        return grad_x.reshape(n, c, height, width)
    launch(
        _roi_align_backward, grad_out.size, xp.ascontiguousarray(grad_out),
        xp.ascontiguousarray(rois, dtype=grad_out.dtype), grad_x, height, width, grad_out.dtype.type(spatial_scale),
        int(sampling_ratio), bool(aligned),
    )
    return grad_x.reshape(n, c, height, width)
