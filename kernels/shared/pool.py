"""Max-pooling's per-window rule, shared by both devices (see :mod:`kernels.shared`).

Shapes: ``plane: (H, W)``; the index of a tap is its flat offset ``ih·W + iw`` inside
the plane (int64), as torch stores max-pooling indices.
"""

from __future__ import annotations

__all__ = ["window_max", "invalid_unpool_index"]


def invalid_unpool_index(indices, out_hw) -> ValueError:
    """The error for max-unpool indices of which some lie outside ``[0, Ho·Wo)``: torch's message for the first
    such index in C-order, and the range allowed. Host-side; ``indices`` a NumPy or CuPy integer array."""
    length = out_hw[0] * out_hw[1]
    flat = indices.reshape(-1)
    bad = int(flat[(flat < 0) | (flat >= length)][0])
    return ValueError(
        f"max_unpool2d: Found an invalid max index: {bad} (output volumes are of size {out_hw[0]}x{out_hw[1]}); "
        f"allowed 0..{length - 1} (inclusive), the flat positions of one output plane"
    )


def window_max(plane, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, neg_inf):
    """Max and flat argmax of one pooling window of ``plane: (H, W)``: torch's ``cpu_max_pool`` scan.

    ::

        ih0 = oh·sh − ph;  ih1 = min(ih0 + (kh−1)·dh + 1, H);  while ih0 < 0: ih0 += dh
        iw0 = ow·sw − pw;  iw1 = min(iw0 + (kw−1)·dw + 1, W);  while iw0 < 0: iw0 += dw
        best, arg = −inf, ih0·W + iw0
        for ih in range(ih0, ih1, dh):            # row-major scan of the in-bounds taps
            for iw in range(iw0, iw1, dw):
                v = plane[ih, iw]
                if v > best or v is NaN: best, arg = v, ih·W + iw

    Padding is never read (as if it were −inf and never selected). Ties keep the
    first tap in scan order; a NaN always wins, so the *last* NaN is reported; an
    all −inf window reports its first in-bounds tap. A window with no in-bounds
    tap at all (possible with dilation and padding) gives −inf and the index
    ``ih0·W + iw0``, which can lie outside the plane (≥ H·W), as in torch.
    ``neg_inf`` is −inf in the plane's dtype. Compiled by ``njit`` in
    :mod:`kernels.cpu.pool` (the 2×2 kernel's border windows) and as a CUDA device
    function in :mod:`kernels.cuda.pool` (every window).
    """
    height, width = plane.shape
    ih0 = oh * sh - ph
    ih1 = min(ih0 + (kh - 1) * dh + 1, height)
    while ih0 < 0:
        ih0 += dh
    iw0 = ow * sw - pw
    iw1 = min(iw0 + (kw - 1) * dw + 1, width)
    while iw0 < 0:
        iw0 += dw
    best = neg_inf
    arg = ih0 * width + iw0
    for ih in range(ih0, ih1, dh):
        for iw in range(iw0, iw1, dw):
            v = plane[ih, iw]
            if v > best or v != v:
                best = v
                arg = ih * width + iw
    return best, arg
