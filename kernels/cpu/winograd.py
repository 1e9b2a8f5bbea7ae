"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution with 16 multiplies per 2x2 output tile instead of 36.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016),
after Winograd's minimal filtering algorithms. In one dimension, two outputs of a
3-tap filter ``g`` over four inputs ``d`` take four multiplies instead of six::

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]          Bᵀ = [[1,  0, −1,  0],     G = [[1,    0,   0],     Aᵀ = [[1, 1,  1,  0],
                                           [0,  1,  1,  0],          [1/2, 1/2, 1/2],           [0, 1, −1, −1]]
                                           [0, −1,  1,  0],          [1/2,−1/2, 1/2],
                                           [0,  1,  0, −1]]          [0,    0,   1]]

(check: ``y0 = d0·g0 + d1·g1 + d2·g2`` and ``y1 = d1·g0 + d2·g1 + d3·g2``). Nested in
two dimensions, a 2x2 output tile comes from a 4x4 input tile ``d`` as
``Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A``: 16 multiplies instead of 2·2·9 = 36. Summed
over input channels, the elementwise products of one tile position ``ξ``
(one of the 16 entries of the 4x4 tile) are a matrix product::

    U[ξ] = (G w[o, c] Gᵀ)[ξ]                      (16, Cout, Cin)    weight transform, once per call
    V[ξ] = (Bᵀ x-tile[c, p] B)[ξ]                 (16, Cin, P)       input transform, P tiles
    M[ξ] = U[ξ] @ V[ξ]                            (16, Cout, P)      16 GEMMs
    out-tile[o, p] = Aᵀ M[:, o, p] A               2x2 per tile       output transform

so the GEMMs do ``16·Cout·Cin·P ≈ 4·Cout·Cin·Ho·Wo`` multiply-adds per image (exact
for even ``Ho``, ``Wo``) against im2col's ``9·Cout·Cin·Ho·Wo``: 2.25x fewer. The
transforms are additions (and the 1/2 of ``G``), a few passes over memory. ``V``
holds 16 values per 4 output pixels, about 4x the input with 'same' padding;
im2col's columns hold 9x.

Accuracy: the transforms add and subtract inputs before the products, so the
rounding error grows a little over the direct sum; larger tiles such as F(4x4, 3x3),
whose matrices hold larger and fractional coefficients, lose more, which is why
this is the only one here. The convolution tests run it against torch at the
float32 and float64 tolerances of every other path.

Tiles: output rows and columns are cut into 2x2 tiles, ``th = ⌈Ho/2⌉`` by
``tw = ⌈Wo/2⌉``; tile ``(ty, tx)`` reads input rows ``2ty − ph .. 2ty − ph + 3`` and
columns ``2tx − pw .. 2tx − pw + 3`` (zero outside the image) and writes the
output pixels of its 2x2 that exist (an odd ``Ho`` or ``Wo`` leaves half a tile).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, uint64

__all__ = [
    "B_T", "G", "A_T", "plane_stride", "weight_transform", "input_transform", "output_transform",
    "output_gradient_transform", "weight_gradient_transform",
]

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


@njit(inline="always")
def _g(g0, g1, g2, half):
    """``G (g0, g1, g2)``: the weight transform of one line of three (``half``: 1/2 in the weights' dtype)."""
    return g0, half * (g0 + g1 + g2), half * (g0 - g1 + g2), g2


# The tile transforms below run on flat planes: V, M and Z are (16, L) C-contiguous arrays, one row per
# tile position ξ, in which the block's tiles sit row by row, each tile row followed by one zero column:
#
#     plane[ξ, ((c·B + i)·T + t)·(tw + 1) + tx] = V[ξ, c, i, t, tx]        tx < tw;  0 at tx = tw
#
# (L may be longer: the rest is not touched.) With that extra column, the four input values a tile reads
# from one row (columns 2tx .. 2tx + 3: even, odd, even, odd) are the even and odd columns at tx and
# tx + 1, and the next tile row's are tw + 1 further on: every step is one loop over a flat range,
# reading two arrays at fixed offsets and writing one, which LLVM vectorises. Written tile by tile
# (16 scattered stores per tile, one per plane), the input transform took 6-7 ns per tile and channel on
# an AVX-512 Xeon; this way 2.5-4 on rows of 30 or more tiles, 4.6-5 at 15 and 7-8 at 8 (against 8-9)
# (single thread, float32, data in cache). The zero column costs the
# GEMMs 1/tw more columns (tw = 120 at U-Net's full resolution, 8 at its deepest); being zero in V and
# Z, it adds nothing to the weight gradient's sums.
#
# Index arithmetic is unsigned (uint64): with signed indices Numba tests each one for a negative value
# (Python's wraparound), and the loops do not vectorise. Each share of the channels allocates its row
# buffers once; the serial bindings run one share.


def _input_transform_kernel(x, v, ph, pw, ty0, T, shares):
    """``V[4a + b, c, i, t, tx] = (Bᵀ d B)[a, b]`` for the 4x4 input tile ``d`` of tile ``(ty0 + t, tx)`` of image i.

    x: (B, C, H, W); v: (16, L) flat planes (above) with ``tw = ⌈(W + 2pw − 2)/2⌉``. Per channel and
    image, the ``2T + 2`` input rows of the block (zero outside the image) are split into even and odd
    rows and columns, ``p_ry_rx[yy·(tw+1) + k] = x_padded[2(ty0 + yy) + ry, 2k + rx]``; then, for the
    flat tile index ``q = t·(tw+1) + tx``::

        d[r, s] = p_{r%2}_{s%2}[q + (r//2)·(tw+1) + s//2]          # r, s < 4
        r0[q], r1[q] = (Bᵀ d)[a, 0], (Bᵀ d)[a, 1]                 # down the columns, a = 0..3
                                                                    # (at q + 1: columns 2 and 3)
        V[4a + b][q] = (Bᵀ (r0[q], r1[q], r0[q+1], r1[q+1]))[b]    # along the rows,   b = 0..3
    """
    B, C, H, W = x.shape
    tw1 = (W + 2 * pw - 1) // 2 + 1               # tw + 1
    n = uint64(T * tw1)                           # entries of one (c, i) in a plane
    row = uint64(tw1)
    one = uint64(1)
    # phase-image columns k whose two input columns 2k − pw and 2k + 1 − pw are both inside the image
    k_lo = min(tw1, (pw + 1) // 2)
    k_hi = max(k_lo, min(tw1, (W - 2 + pw) // 2 + 1))
    size = (T + 1) * tw1 + 1
    for share in prange(shares):
        p00 = np.zeros(size, dtype=x.dtype)
        p01 = np.zeros(size, dtype=x.dtype)
        p10 = np.zeros(size, dtype=x.dtype)
        p11 = np.zeros(size, dtype=x.dtype)
        r0 = np.zeros(n + one, dtype=x.dtype)
        r1 = np.zeros(n + one, dtype=x.dtype)
        for c in range(share * C // shares, (share + 1) * C // shares):
            for i in range(B):
                for yy in range(T + 1):
                    for ry in range(2):
                        iy = 2 * (ty0 + yy) + ry - ph
                        even = p00 if ry == 0 else p10
                        odd = p01 if ry == 0 else p11
                        base = uint64(yy * tw1)
                        if iy < 0 or iy >= H:
                            for k in range(row):
                                even[base + k] = 0.0
                                odd[base + k] = 0.0
                            continue
                        src = x[i, c, iy]
                        for k in range(k_lo):             # left padding (and any column outside)
                            ix = 2 * k - pw
                            even[base + uint64(k)] = src[ix] if 0 <= ix < W else 0.0
                            odd[base + uint64(k)] = src[ix + 1] if 0 <= ix + 1 < W else 0.0
                        ix0 = uint64(2 * k_lo - pw)
                        for k in range(uint64(k_hi - k_lo)):  # inside the image: no tests
                            even[base + uint64(k_lo) + k] = src[ix0 + uint64(2) * k]
                            odd[base + uint64(k_lo) + k] = src[ix0 + uint64(2) * k + one]
                        for k in range(k_hi, tw1):        # right padding
                            ix = 2 * k - pw
                            even[base + uint64(k)] = src[ix] if 0 <= ix < W else 0.0
                            odd[base + uint64(k)] = src[ix + 1] if 0 <= ix + 1 < W else 0.0
                o = uint64(c * B + i) * n
                for a in range(4):
                    # Bᵀ down the columns: input rows 2t .. 2t + 3 are p0x[q], p1x[q], p0x[q + row], p1x[q + row]
                    if a == 0:
                        for q in range(n):
                            r0[q] = p00[q] - p00[q + row]
                        for q in range(n):
                            r1[q] = p01[q] - p01[q + row]
                    elif a == 1:
                        for q in range(n):
                            r0[q] = p10[q] + p00[q + row]
                        for q in range(n):
                            r1[q] = p11[q] + p01[q + row]
                    elif a == 2:
                        for q in range(n):
                            r0[q] = p00[q + row] - p10[q]
                        for q in range(n):
                            r1[q] = p01[q + row] - p11[q]
                    else:
                        for q in range(n):
                            r0[q] = p10[q] - p10[q + row]
                        for q in range(n):
                            r1[q] = p11[q] - p11[q + row]
                    # Bᵀ along the rows: columns 2tx .. 2tx + 3 are r0[q], r1[q], r0[q + 1], r1[q + 1]
                    e0 = v[4 * a]
                    e1 = v[4 * a + 1]
                    e2 = v[4 * a + 2]
                    e3 = v[4 * a + 3]
                    for q in range(n):
                        e0[o + q] = r0[q] - r0[q + one]
                    for q in range(n):
                        e1[o + q] = r1[q] + r0[q + one]
                    for q in range(n):
                        e2[o + q] = r0[q + one] - r1[q]
                    for q in range(n):
                        e3[o + q] = r1[q] - r1[q + one]
                for t in range(T):                    # the zero column after each tile row
                    for xi in range(16):
                        v[xi, o + uint64(t * tw1 + tw1 - 1)] = 0.0


def _output_transform_kernel(m, out, bias, relu, ty0, T, shares):
    """``out[i, o, 2ty + y, 2tx + x] = (Aᵀ M A)[y, x] + bias[o]``, ``M[a, b] = M[4a + b, o, i, t, tx]``, ty = ty0 + t.

    m: (16, L) flat planes (above), ``tw = ⌈Wo/2⌉``; out: (B, O, Ho, Wo), whose rows
    ``2·ty0 .. 2·(ty0 + T) − 1`` are written (those below ``Ho``, and columns below ``Wo``); bias: (O,)
    or empty (no bias); ``relu``: then ``max(·, 0)`` (ReLU's ``0 if v < 0 else v``). Per output channel
    and image, with ``q = t·(tw+1) + tx``::

        s_y_b[q] = (Aᵀ M[:, b])[y]  (+ bias[o] in column b = 1)   # down the columns, y = 0, 1
        y_y_x[q] = (Aᵀ (s_y_0, s_y_1, s_y_2, s_y_3)[q])[x]        # along the rows,   x = 0, 1
        out[i, o, 2ty + y, 2tx + x] = y_y_x[q]

    Both rows of Aᵀ, (1, 1, 1, 0) and (0, 1, −1, −1), take column 1 once with a +1, so a bias added to
    column 1 of the first pass reaches each of the four outputs once, at no extra pass.
    """
    B, O, Ho, Wo = out.shape
    tw = (Wo + 1) // 2
    tw1 = tw + 1
    n = uint64(T * tw1)
    one = uint64(1)
    zero = out.dtype.type(0)
    for share in prange(shares):
        s0 = np.empty((4, n), dtype=out.dtype)
        s1 = np.empty((4, n), dtype=out.dtype)
        y00 = np.empty(n, dtype=out.dtype)
        y01 = np.empty(n, dtype=out.dtype)
        y10 = np.empty(n, dtype=out.dtype)
        y11 = np.empty(n, dtype=out.dtype)
        for oc in range(share * O // shares, (share + 1) * O // shares):
            bias_o = bias[oc] if bias.shape[0] > 0 else zero
            for i in range(B):
                o = uint64(oc * B + i) * n
                for b in range(4):
                    # Aᵀ down the columns: (m0 + m1 + m2, m1 − m2 − m3) of column b, the bias in column 1
                    m0 = m[b]
                    m1 = m[4 + b]
                    m2 = m[8 + b]
                    m3 = m[12 + b]
                    top = s0[b]
                    bottom = s1[b]
                    if b == 1:
                        for q in range(n):
                            top[q] = m0[o + q] + m1[o + q] + m2[o + q] + bias_o
                        for q in range(n):
                            bottom[q] = m1[o + q] - m2[o + q] - m3[o + q] + bias_o
                        continue
                    for q in range(n):
                        top[q] = m0[o + q] + m1[o + q] + m2[o + q]
                    for q in range(n):
                        bottom[q] = m1[o + q] - m2[o + q] - m3[o + q]
                # Aᵀ along the rows
                for q in range(n):
                    y00[q] = s0[0, q] + s0[1, q] + s0[2, q]
                for q in range(n):
                    y01[q] = s0[1, q] - s0[2, q] - s0[3, q]
                for q in range(n):
                    y10[q] = s1[0, q] + s1[1, q] + s1[2, q]
                for q in range(n):
                    y11[q] = s1[1, q] - s1[2, q] - s1[3, q]
                if relu:
                    for q in range(n):
                        y00[q] = zero if y00[q] < 0 else y00[q]
                    for q in range(n):
                        y01[q] = zero if y01[q] < 0 else y01[q]
                    for q in range(n):
                        y10[q] = zero if y10[q] < 0 else y10[q]
                    for q in range(n):
                        y11[q] = zero if y11[q] < 0 else y11[q]
                for t in range(T):
                    base = uint64(t * tw1)
                    for y in range(2):
                        oy = 2 * (ty0 + t) + y
                        if oy >= Ho:
                            continue
                        left = y00 if y == 0 else y10
                        right = y01 if y == 0 else y11
                        dst = out[i, oc, oy]
                        for tx in range(uint64(Wo // 2)):
                            dst[uint64(2) * tx] = left[base + tx]
                            dst[uint64(2) * tx + one] = right[base + tx]
                        if Wo % 2:
                            dst[Wo - 1] = left[base + uint64(tw - 1)]


@njit(inline="always")
def _g_g_gt(w, o, c, half):
    """The four rows of ``G w[o, c] Gᵀ`` (4x4), each a 4-tuple."""
    # G g: each of the three columns of g through G
    c0 = _g(w[o, c, 0, 0], w[o, c, 1, 0], w[o, c, 2, 0], half)
    c1 = _g(w[o, c, 0, 1], w[o, c, 1, 1], w[o, c, 2, 1], half)
    c2 = _g(w[o, c, 0, 2], w[o, c, 1, 2], w[o, c, 2, 2], half)
    # (G g) Gᵀ: each of its four rows through G
    return (_g(c0[0], c1[0], c2[0], half), _g(c0[1], c1[1], c2[1], half), _g(c0[2], c1[2], c2[2], half),
            _g(c0[3], c1[3], c2[3], half))


def _weight_transform_kernel(w, u, half):
    """``u[4a + b, o, c] = (G w[o, c] Gᵀ)[a, b]``: w (O, C, 3, 3), u (16, O, C), ``half`` = 1/2 in w's dtype::

        for o in prange(O):
            for c in range(C):
                u[:, o, c] = (G w[o, c] Gᵀ).ravel()
    """
    O = w.shape[0]
    C = w.shape[1]
    for o in prange(O):
        for c in range(C):
            rows = _g_g_gt(w, o, c, half)
            for a in range(4):
                e = rows[a]
                u[4 * a, o, c] = e[0]
                u[4 * a + 1, o, c] = e[1]
                u[4 * a + 2, o, c] = e[2]
                u[4 * a + 3, o, c] = e[3]


def _rotated_weight_transform_kernel(w, u, half):
    """``u[4a + b, c, o] = (G rot(w[o, c]) Gᵀ)[a, b]``: w (O, C, 3, 3), u (16, C, O); ``rot``: turned by 180°.

    The transform of the stride-1 convolution that is the transpose of ``w``'s (kernel rotated, channels
    swapped: :func:`kernels.cpu.conv._flipped`), read straight from ``w``. Reversing ``g``'s three taps
    permutes the four rows of ``G g``: ``G rev(g) = P G g`` with ``P`` the permutation π = (3, 1, 2, 0)
    (``G``'s first and last rows swap, the middle two are symmetric), so
    ``G rot(g) Gᵀ = P (G g Gᵀ) Pᵀ``::

        for c in prange(C):
            for o in range(O):
                u[4a + b, c, o] = (G w[o, c] Gᵀ)[π(a), π(b)]
    """
    O = w.shape[0]
    C = w.shape[1]
    for c in prange(C):
        for o in range(O):
            rows = _g_g_gt(w, o, c, half)
            for a in range(4):
                e = rows[a]                             # row a of G g Gᵀ: row π(a) of the rotated one
                ra = 3 - a if a == 0 or a == 3 else a
                u[4 * ra + 3, c, o] = e[0]
                u[4 * ra + 1, c, o] = e[1]
                u[4 * ra + 2, c, o] = e[2]
                u[4 * ra, c, o] = e[3]


_weight_transform = njit(parallel=True, cache=True, nogil=True)(_weight_transform_kernel)
_rotated_weight_transform = njit(parallel=True, cache=True, nogil=True)(_rotated_weight_transform_kernel)


def weight_transform(w: np.ndarray, rotated: bool = False) -> np.ndarray:
    """``U[4a + b, o, c] = (G w[o, c] Gᵀ)[a, b]``: w (Cout, Cin, 3, 3) → (16, Cout, Cin), w's dtype.

    ``rotated=True``: the transform of the transposed convolution's equivalent kernel, ``w`` turned by
    180° with its two channel axes swapped → (16, Cin, Cout) (:func:`_rotated_weight_transform_kernel`),
    without copying the turned kernel first.

    A Numba loop rather than one GEMM with ``G ⊗ G``: a BLAS call here, on the
    caller's thread, would wake OpenBLAS's threads just before the convolution's
    workers start (see :class:`kernels.cpu._runtime.Workers`).

    The 16 planes ``U[ξ]`` are :func:`plane_stride` apart, not ``Cout·Cin`` (a power of two in every
    model here): the loop writes one entry to each of the 16 planes per kernel, and 16 write streams
    a power of two apart fall in the same cache sets. For 256x256 channels the transform took 3.6 ms
    that way and 0.38 with the planes spread (one thread, AVX-512 Xeon).
    """
    o, c = w.shape[:2]
    u = np.empty((16, plane_stride(o * c, w.dtype)), dtype=w.dtype)[:, : o * c]
    u = u.reshape((16, c, o) if rotated else (16, o, c))          # each (o, c) matrix C-contiguous
    kernel = _rotated_weight_transform if rotated else _weight_transform
    kernel(np.ascontiguousarray(w), u, w.dtype.type(0.5))
    return u


@njit(inline="always")
def _gt(m0, m1, m2, m3, half):
    """``Gᵀ (m0, m1, m2, m3)``: the adjoint of the weight transform on one line of four."""
    return m0 + half * (m1 + m2), half * (m1 - m2), half * (m1 + m2) + m3


def _output_gradient_transform_kernel(go, z, ty0, T, shares):
    """``Z[4a + b, o, i, t, tx] = (A Y Aᵀ)[a, b]`` for the 2x2 tile ``Y`` of ``go`` at tile ``(ty0 + t, tx)``.

    go: (B, O, Ho, Wo); z: (16, L) flat planes (above), ``tw = ⌈Wo/2⌉``. The adjoint of
    :func:`output_transform`: the upstream gradient of a tile taken back to its 16 products (pixels of
    a half tile beyond ``Ho`` or ``Wo``, and the zero column, count as 0). Per output channel and image,
    the tile's four pixels split into ``g_y_x[q] = go[i, o, 2ty + y, 2tx + x]`` (``q = t·(tw+1) + tx``)::

        h_a_x[q] = (A (g_0_x[q], g_1_x[q]))[a]                     # down the columns, a = 0..3
        Z[4a + b][q] = (A (h_a_0[q], h_a_1[q]))[b]                 # along the rows,   b = 0..3
    """
    B, O, Ho, Wo = go.shape
    tw = (Wo + 1) // 2
    tw1 = tw + 1
    n = uint64(T * tw1)
    one = uint64(1)
    for share in prange(shares):
        # entries no pixel reaches (the zero column, a half tile's right column) are never written: 0 throughout
        g00 = np.zeros(n, dtype=go.dtype)
        g01 = np.zeros(n, dtype=go.dtype)
        g10 = np.zeros(n, dtype=go.dtype)
        g11 = np.zeros(n, dtype=go.dtype)
        h0 = np.empty(n, dtype=go.dtype)
        h1 = np.empty(n, dtype=go.dtype)
        for oc in range(share * O // shares, (share + 1) * O // shares):
            for i in range(B):
                for t in range(T):
                    base = uint64(t * tw1)
                    for y in range(2):
                        oy = 2 * (ty0 + t) + y
                        left = g00 if y == 0 else g10
                        right = g01 if y == 0 else g11
                        if oy >= Ho:
                            for tx in range(uint64(tw1)):
                                left[base + tx] = 0.0
                                right[base + tx] = 0.0
                            continue
                        src = go[i, oc, oy]
                        for tx in range(uint64(Wo // 2)):
                            left[base + tx] = src[uint64(2) * tx]
                            right[base + tx] = src[uint64(2) * tx + one]
                        if Wo % 2:                            # a half tile: its right column stays 0
                            left[base + uint64(tw - 1)] = src[Wo - 1]
                o = uint64(oc * B + i) * n
                for a in range(4):
                    # A down the columns: (y0, y0 + y1, y0 − y1, −y1) for the even (h0) and odd (h1) column
                    if a == 0:
                        for q in range(n):
                            h0[q] = g00[q]
                        for q in range(n):
                            h1[q] = g01[q]
                    elif a == 1:
                        for q in range(n):
                            h0[q] = g00[q] + g10[q]
                        for q in range(n):
                            h1[q] = g01[q] + g11[q]
                    elif a == 2:
                        for q in range(n):
                            h0[q] = g00[q] - g10[q]
                        for q in range(n):
                            h1[q] = g01[q] - g11[q]
                    else:
                        for q in range(n):
                            h0[q] = -g10[q]
                        for q in range(n):
                            h1[q] = -g11[q]
                    # A along the rows
                    e0 = z[4 * a]
                    e1 = z[4 * a + 1]
                    e2 = z[4 * a + 2]
                    e3 = z[4 * a + 3]
                    for q in range(n):
                        e0[o + q] = h0[q]
                    for q in range(n):
                        e1[o + q] = h0[q] + h1[q]
                    for q in range(n):
                        e2[o + q] = h0[q] - h1[q]
                    for q in range(n):
                        e3[o + q] = -h1[q]


def _weight_gradient_transform_kernel(du, grad_w, half):
    """``grad_w[o, c] = Gᵀ dU[:, o, c].reshape(4, 4) G``: du (16, O, C) → grad_w (O, C, 3, 3).

    The adjoint of :func:`_weight_transform_kernel`::

        for o in prange(O):
            for c in range(C):
                grad_w[o, c] = Gᵀ du[:, o, c].reshape(4, 4) G
    """
    O = du.shape[1]
    C = du.shape[2]
    for o in prange(O):
        for c in range(C):
            # Gᵀ dU: each of the four columns of dU through Gᵀ (three values each)
            c0 = _gt(du[0, o, c], du[4, o, c], du[8, o, c], du[12, o, c], half)
            c1 = _gt(du[1, o, c], du[5, o, c], du[9, o, c], du[13, o, c], half)
            c2 = _gt(du[2, o, c], du[6, o, c], du[10, o, c], du[14, o, c], half)
            c3 = _gt(du[3, o, c], du[7, o, c], du[11, o, c], du[15, o, c], half)
            # (Gᵀ dU) G: each of its three rows through Gᵀ
            for a in range(3):
                e = _gt(c0[a], c1[a], c2[a], c3[a], half)
                grad_w[o, c, a, 0] = e[0]
                grad_w[o, c, a, 1] = e[1]
                grad_w[o, c, a, 2] = e[2]


_weight_gradient_transform = njit(parallel=True, cache=True, nogil=True)(_weight_gradient_transform_kernel)


def weight_gradient_transform(du: np.ndarray) -> np.ndarray:
    """``∂L/∂w[o, c] = Gᵀ ∂L/∂U[:, o, c] G``: du (16, Cout, Cin) → (Cout, Cin, 3, 3), du's dtype.

    Since ``U[o, c] = G w[o, c] Gᵀ`` is linear in ``w``, its adjoint takes the gradient
    with respect to ``U`` back to the weights.
    """
    grad_w = np.empty(du.shape[1:] + (3, 3), dtype=du.dtype)
    _weight_gradient_transform(np.ascontiguousarray(du), grad_w, du.dtype.type(0.5))
    return grad_w


# Two bindings of each tile transform: the serial one runs inside the conv workers (one block at a
# time, one share of the channels); the parallel one spreads shares of the channels over Numba's
# threads when a block runs on the caller without threadpoolctl (see kernels.cpu.conv).
_input_transform_serial = njit(cache=True, nogil=True)(_input_transform_kernel)
_input_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_input_transform_kernel)
_output_transform_serial = njit(cache=True, nogil=True)(_output_transform_kernel)
_output_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_output_transform_kernel)
_output_gradient_transform_serial = njit(cache=True, nogil=True)(_output_gradient_transform_kernel)
_output_gradient_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_output_gradient_transform_kernel)


def plane_stride(n: int, dtype) -> int:
    """The smallest ``L ≥ n`` such that ``L`` elements of ``dtype`` are an odd number of 64-byte cache lines.

    The 16 planes of U, V, M and Z are laid ``L`` elements apart. A loop that reads or writes several
    planes at the same offset then touches addresses an odd number of lines apart, which spread over
    the cache's sets; planes a power of two apart share a few sets and evict each other
    (:func:`weight_transform`, :func:`kernels.cpu.conv._winograd_scratch`).
    """
    line = 64 // np.dtype(dtype).itemsize
    return (-(-n // line) | 1) * line


# the empty bias the output transform reads as "no bias", per dtype (one compiled specialisation each)
_NO_BIAS = {np.dtype(t).str: np.empty(0, dtype=t) for t in (np.float32, np.float64)}


def _shares(parallel: bool) -> int:
    return numba.get_num_threads() if parallel else 1


def input_transform(x, v, ph, pw, ty0, T, parallel=False):
    """V of tile rows ``ty0 .. ty0 + T − 1`` of every image of ``x`` (B, C, H, W) into the flat planes ``v``.

    v: (16, L) C-contiguous, ``L ≥ C·B·T·(tw + 1)``, ``tw = ⌈(W + 2pw − 2)/2⌉`` (the output's tile
    columns); ``v[4a + b, ((c·B + i)·T + t)·(tw + 1) + tx] = (Bᵀ d B)[a, b]`` and 0 at ``tx = tw``
    (:func:`_input_transform_kernel`). ``parallel``: spread the channels over Numba's threads.
    """
    kernel = _input_transform_parallel if parallel else _input_transform_serial
    kernel(x, v, ph, pw, ty0, T, _shares(parallel))


def output_transform(m, out, ty0, T, parallel=False, bias=None, relu=False):
    """``out`` (B, O, Ho, Wo) at tile rows ``ty0 .. ty0 + T − 1`` from the flat planes ``m`` (16, L): ``Aᵀ M A``
    per tile, plus ``bias`` (O,) per channel when given, through ReLU when ``relu``
    (:func:`_output_transform_kernel`; ``m`` laid out as ``v`` in :func:`input_transform`, with ``tw = ⌈Wo/2⌉``)."""
    kernel = _output_transform_parallel if parallel else _output_transform_serial
    kernel(m, out, _NO_BIAS[out.dtype.str] if bias is None else bias, bool(relu), ty0, T, _shares(parallel))


def output_gradient_transform(go, z, ty0, T, parallel=False):
    """``Z = A Y Aᵀ`` per 2x2 tile of ``go`` (B, O, Ho, Wo) at tile rows ``ty0 .. ty0 + T − 1`` into the flat
    planes ``z`` (16, L), laid out as in :func:`output_transform`, 0 in the zero column
    (:func:`_output_gradient_transform_kernel`)."""
    kernel = _output_gradient_transform_parallel if parallel else _output_gradient_transform_serial
    kernel(go, z, ty0, T, _shares(parallel))
