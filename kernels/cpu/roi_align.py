"""RoIAlign forward and backward on the CPU (Numba), torchvision 0.29.1's arithmetic.

Shapes: ``x: (N, C, H, W)``; ``rois: (K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``
in x's dtype (float32 or float64); ``out: (K, C, PH, PW)``.

RoIAlign averages, over each of the ``PH×PW`` bins of a box, ``gh×gw`` bilinear
samples of the feature map. Where a sample falls and which four pixels it reads
does not depend on the channel, so per RoI the sample table (four flat pixel
offsets ``y·W + x`` and four bilinear weights per sample) is computed once and
shared by all ``C`` channels (torchvision's ``pre_calc``). The table is built by
*one* helper, :func:`_roi_sample_table_kernel`, compiled once and called by both
raw kernels: the forward gathers ``Σ w·x[pos]`` with it and the backward
scatters ``go·w / count`` to the same four pixels with the same weights — the
backward is the adjoint of the forward, sample by sample.

Every number is computed in the input dtype ``T`` in torchvision's order (see
:func:`kernels.shared.roi_align.roi_geometry` and :func:`kernels.shared.roi_align.bilinear`), so float32 and float64
outputs equal torchvision's bit for bit (and so does the backward, whose
additions come in torchvision's order). Both kernels work channels-last: the
forward reads a ``(N, H, W, C)`` copy of the map, the backward accumulates into a
``(N, H, W, C)`` gradient transposed back at the end, so that the innermost loop
runs over channels: contiguous, vectorised, and still the same operations in the
same order for every element.

Parallelism and determinism: the forward runs RoIs in parallel (each writes only
its own ``out[k]``). The backward runs disjoint *channel blocks* in parallel,
every block visiting all RoIs in order ``k = 0..K−1``: no two threads ever add
to the same element, and every element receives its additions in torchvision's
sequential order (RoI, bin row, bin column, sample row, sample column, tap), so
the result does not depend on the thread count.

The kernels expect validated arguments (``minitorchseg.ops.roi_align`` checks
shapes, dtypes, finite boxes with ``x2 ≥ x1``, ``y2 ≥ y1`` and integral batch
indices in ``[0, N)`` before anything runs).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ..shared.roi_align import bilinear, roi_geometry, sample_coord

__all__ = ["roi_align_forward", "roi_align_backward"]


def _row_kernel(flat, pixel, channels):
    """The ``channels`` values of pixel ``pixel`` of a flattened channels-last map (a view).

    Slicing (rather than indexing ``flat[pixel·C + c]``) lets LLVM vectorise the
    channel loops: a slice's elements are known to lie at non-negative offsets.
    """
    start = pixel * channels
    return flat[start:start + channels]


def _roi_sample_table_kernel(start_h, start_w, bin_h, bin_w, grid_h, grid_w, height, width,
                             pooled_h, pooled_w, pos, wts, valid):
    """Fill the sample table of one RoI (shared by forward and backward).

    pos: (S, 4) int64, wts: (S, 4) T, valid: (S,) bool with
    ``S = PH·PW·gh·gw``, row ``s`` = sample ``(ph, pw, iy, ix)`` in C-order at::

        y = start_h + ph·bin_h + (iy + 0.5)·bin_h / gh
        x = start_w + pw·bin_w + (ix + 0.5)·bin_w / gw

    (left to right, in T; :func:`kernels.shared.roi_align.sample_coord`), with offsets and
    weights from :func:`kernels.shared.roi_align.bilinear`.
    """
    s = 0
    for ph in range(pooled_h):
        for pw in range(pooled_w):
            for iy in range(grid_h):
                y = _sample_coord(start_h, ph, bin_h, iy, grid_h)
                for ix in range(grid_w):
                    x = _sample_coord(start_w, pw, bin_w, ix, grid_w)
                    p1, p2, p3, p4, w1, w2, w3, w4, ok = _bilinear(y, x, height, width)
                    pos[s, 0] = p1
                    pos[s, 1] = p2
                    pos[s, 2] = p3
                    pos[s, 3] = p4
                    wts[s, 0] = w1
                    wts[s, 1] = w2
                    wts[s, 2] = w3
                    wts[s, 3] = w4
                    valid[s] = ok
                    s += 1


def _roi_align_forward_kernel(x, rois, out, height, width, spatial_scale, sampling_ratio, aligned):
    """RoIAlign forward.

    x: the channels-last map ``(N, H, W, C)`` flattened to 1-D (element
    ``(b, p, c)`` at ``(b·H·W + p)·C + c``); rois: (K, 5); out: (K, C, PH, PW)
    written in full. Loop nest (``k`` parallel)::

        for k:                                            b = int(rois[k, 0])
            table = samples of RoI k                      (shared by all channels)
            count = max(gh·gw, 1)
            for ph, pw:
                acc[:] = 0
                for each of the gh·gw samples (p1..p4, w1..w4) of the bin:
                    for c:  acc[c] += w1·x[b,p1,c] + w2·x[b,p2,c] + w3·x[b,p3,c] + w4·x[b,p4,c]
                out[k, :, ph, pw] = acc / count

    Samples outside the map have weights 0 at offset 0 and are added like the
    others, as torchvision does (they change nothing unless ``x[b, 0]`` is not
    finite). A zero-size grid (aligned, empty box) gives 0.
    """
    T = x.dtype.type
    n_rois = rois.shape[0]
    channels = out.shape[1]
    pooled_h, pooled_w = out.shape[2], out.shape[3]
    for k in prange(n_rois):
        b = int(rois[k, 0])
        start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
            rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned
        )
        per_bin = grid_h * grid_w
        n_samples = pooled_h * pooled_w * per_bin
        pos = np.empty((n_samples, 4), np.int64)
        wts = np.empty((n_samples, 4), x.dtype)
        valid = np.empty(n_samples, np.bool_)
        _roi_sample_table(start_h, start_w, bin_h, bin_w, grid_h, grid_w, height, width,
                          pooled_h, pooled_w, pos, wts, valid)
        count = T(max(per_bin, 1))
        base = b * height * width
        acc = np.empty(channels, x.dtype)
        s = 0
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                for c in range(channels):
                    acc[c] = 0
                for _ in range(per_bin):
                    r1 = _row(x, base + pos[s, 0], channels)
                    r2 = _row(x, base + pos[s, 1], channels)
                    r3 = _row(x, base + pos[s, 2], channels)
                    r4 = _row(x, base + pos[s, 3], channels)
                    w1, w2, w3, w4 = wts[s, 0], wts[s, 1], wts[s, 2], wts[s, 3]
                    for c in range(channels):
                        acc[c] += w1 * r1[c] + w2 * r2[c] + w3 * r3[c] + w4 * r4[c]
                    s += 1
                for c in range(channels):
                    out[k, c, ph, pw] = acc[c] / count


def _roi_align_backward_kernel(grad_out, rois, grad_x, channels, height, width, spatial_scale,
                               sampling_ratio, aligned, block):
    """RoIAlign backward: scatter ``go·w/count`` to the forward's four pixels per sample.

    grad_out: (K, C, PH, PW); rois: (K, 5); grad_x: the channels-last
    ``(N, H, W, C)`` gradient flattened to 1-D, zero on entry; ``channels = C``.
    Channel blocks ``[c0, c0 + block)`` run in parallel; inside a block, in
    torchvision's order::

        for k in 0..K−1:                                  b = int(rois[k, 0])
            table = samples of RoI k                      (the forward's table)
            count = gh·gw
            for ph, pw:  g[c] = grad_out[k, c, ph, pw]   (c in the block)
                for each valid sample (p1..p4, w1..w4) of the bin, for tap t = 1..4:
                    for c in block:  grad_x[b, pt, c] += g[c]·wt / count

    Invalid (outside) samples are skipped. Each block recomputes the tables of
    all RoIs (cheap next to the scatter).
    """
    T = grad_x.dtype.type
    n_rois = rois.shape[0]
    pooled_h, pooled_w = grad_out.shape[2], grad_out.shape[3]
    n_bins = pooled_h * pooled_w
    n_blocks = (channels + block - 1) // block
    for blk in prange(n_blocks):
        c0 = blk * block
        c1 = min(c0 + block, channels)
        width_c = c1 - c0
        gbuf = np.empty((n_bins, width_c), grad_x.dtype)
        for k in range(n_rois):
            b = int(rois[k, 0])
            start_h, start_w, bin_h, bin_w, grid_h, grid_w = _roi_geometry(
                rois, k, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned
            )
            per_bin = grid_h * grid_w
            if per_bin <= 0:
                continue
            n_samples = n_bins * per_bin
            pos = np.empty((n_samples, 4), np.int64)
            wts = np.empty((n_samples, 4), grad_x.dtype)
            valid = np.empty(n_samples, np.bool_)
            _roi_sample_table(start_h, start_w, bin_h, bin_w, grid_h, grid_w, height, width,
                              pooled_h, pooled_w, pos, wts, valid)
            count = T(per_bin)
            for c in range(width_c):
                for ph in range(pooled_h):
                    for pw in range(pooled_w):
                        gbuf[ph * pooled_w + pw, c] = grad_out[k, c0 + c, ph, pw]
            base = b * height * width
            s = 0
            for i in range(n_bins):
                g = gbuf[i]
                for _ in range(per_bin):
                    if valid[s]:
                        for t in range(4):
                            row = _row(grad_x, base + pos[s, t], channels)[c0:c1]
                            w = wts[s, t]
                            for c in range(width_c):
                                row[c] += g[c] * w / count
                    s += 1


_row = njit(cache=True, inline="always")(_row_kernel)
_roi_geometry = njit(cache=True, inline="always", error_model="numpy")(roi_geometry)
_bilinear = njit(cache=True, inline="always", error_model="numpy")(bilinear)
_sample_coord = njit(cache=True, inline="always", error_model="numpy")(sample_coord)
_roi_sample_table = njit(cache=True, error_model="numpy")(_roi_sample_table_kernel)
_roi_align_forward = njit(parallel=True, cache=True, error_model="numpy")(_roi_align_forward_kernel)
_roi_align_backward = njit(parallel=True, cache=True, error_model="numpy")(_roi_align_backward_kernel)


def _channels_last(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` → its channels-last ``(N, H, W, C)`` copy, flattened to 1-D."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(-1)


def _channel_block(channels: int) -> int:
    """Channels per parallel backward block: about one block per thread, a multiple of 16."""
    per_thread = -(-channels // max(numba.get_num_threads(), 1))
    return max(16, -(-per_thread // 16) * 16)


def roi_align_forward(x, rois, output_hw, spatial_scale, sampling_ratio, aligned):
    """RoIAlign of ``x: (N, C, H, W)`` over ``rois: (K, 5)`` → ``(K, C, PH, PW)``.

    ``output_hw = (PH, PW)``; ``spatial_scale`` maps box coordinates to map
    coordinates (cast to x's dtype first, as torchvision does); ``sampling_ratio``
    ``> 0`` fixes ``gh = gw = sampling_ratio`` samples per bin, ``≤ 0`` picks
    ``ceil(roi_size / P)`` per dimension; ``aligned=True`` shifts boxes by −0.5
    pixel (pixel centres at integer + 0.5), ``False`` is the legacy
    half-pixel-off sampling with boxes forced to at least 1×1.
    Semantics: :func:`_roi_align_forward_kernel`.
    """
    n, c, height, width = x.shape
    pooled_h, pooled_w = int(output_hw[0]), int(output_hw[1])
    k = rois.shape[0]
    if k * c * pooled_h * pooled_w == 0:
        return np.zeros((k, c, pooled_h, pooled_w), dtype=x.dtype)
    out = np.empty((k, c, pooled_h, pooled_w), dtype=x.dtype)
    _roi_align_forward(
        _channels_last(x), np.ascontiguousarray(rois, dtype=x.dtype), out, height, width,
        x.dtype.type(spatial_scale), int(sampling_ratio), bool(aligned),
    )
    return out


def roi_align_backward(grad_out, rois, input_shape, spatial_scale, sampling_ratio, aligned):
    """Gradient of RoIAlign with respect to x: ``(N, C, H, W) = input_shape``, grad_out's dtype.

    grad_out: (K, C, PH, PW), any strides; the same four bilinear weights as the
    forward scattered back (shared :func:`_roi_sample_table_kernel`),
    deterministic. Semantics: :func:`_roi_align_backward_kernel`.
    """
    n, c, height, width = (int(v) for v in input_shape)
    if grad_out.size == 0 or n * c * height * width == 0:
        return np.zeros((n, c, height, width), dtype=grad_out.dtype)
    grad_x = np.zeros(n * height * width * c, dtype=grad_out.dtype)
    _roi_align_backward(
        grad_out, np.ascontiguousarray(rois, dtype=grad_out.dtype), grad_x, c, height, width,
        grad_out.dtype.type(spatial_scale), int(sampling_ratio), bool(aligned), _channel_block(c),
    )
    return np.ascontiguousarray(grad_x.reshape(n, height, width, c).transpose(0, 3, 1, 2))
