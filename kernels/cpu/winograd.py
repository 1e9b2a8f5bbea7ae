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

import numpy as np
from numba import njit, prange

__all__ = [
    "B_T", "G", "A_T", "weight_transform", "input_transform", "output_transform", "output_gradient_transform",
    "weight_gradient_transform",
]

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


@njit(inline="always")
def _g(g0, g1, g2, half):
    """``G (g0, g1, g2)``: the weight transform of one line of three (``half``: 1/2 in the weights' dtype)."""
    return g0, half * (g0 + g1 + g2), half * (g0 - g1 + g2), g2


@njit(inline="always")
def _bt(d0, d1, d2, d3):
    """``Bᵀ (d0, d1, d2, d3)``: the input transform of one line of four."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(inline="always")
def _at(m0, m1, m2, m3):
    """``Aᵀ (m0, m1, m2, m3)``: the output transform of one line of four."""
    return m0 + m1 + m2, m1 - m2 - m3


def _input_transform_kernel(x, v, ph, pw, ty0):
    """``v[4a + b, c, i, t, tx] = (Bᵀ d B)[a, b]`` for the 4x4 input tile ``d`` of tile ``(ty0 + t, tx)`` of image i.

    x: (B, C, H, W); v: (16, C, B, T, tw). For each (channel, image, tile row) the
    four input rows the tile row reads are copied into ``rows`` (4, 2·tw + 2) with
    the padding as zeros, so the loop over tiles has no bounds tests::

        for c in prange(C):
            for i, t in B × T:
                rows[r, s] = x[i, c, 2(ty0 + t) − ph + r, s − pw]     (0 outside the image)
                for tx in range(tw):
                    d = rows[:, 2tx : 2tx + 4]
                    v[:, c, i, t, tx] = (Bᵀ d B).ravel()
    """
    B, C, H, W = x.shape
    T = v.shape[3]
    tw = v.shape[4]
    for c in prange(C):
        buf = np.empty((4, 2 * tw + 2), dtype=x.dtype)  # "rows" above; one per channel, so per thread
        for i in range(B):
            for t in range(T):
                y0 = 2 * (ty0 + t) - ph
                for r in range(4):
                    iy = y0 + r
                    for s in range(2 * tw + 2):
                        ix = s - pw
                        if 0 <= iy < H and 0 <= ix < W:
                            buf[r, s] = x[i, c, iy, ix]
                        else:
                            buf[r, s] = 0.0
                for tx in range(tw):
                    s = 2 * tx
                    # Bᵀ d: each of the four columns of d through Bᵀ
                    c0 = _bt(buf[0, s], buf[1, s], buf[2, s], buf[3, s])
                    c1 = _bt(buf[0, s + 1], buf[1, s + 1], buf[2, s + 1], buf[3, s + 1])
                    c2 = _bt(buf[0, s + 2], buf[1, s + 2], buf[2, s + 2], buf[3, s + 2])
                    c3 = _bt(buf[0, s + 3], buf[1, s + 3], buf[2, s + 3], buf[3, s + 3])
                    # (Bᵀ d) B: each of its four rows through Bᵀ
                    for a in range(4):
                        e = _bt(c0[a], c1[a], c2[a], c3[a])
                        v[4 * a, c, i, t, tx] = e[0]
                        v[4 * a + 1, c, i, t, tx] = e[1]
                        v[4 * a + 2, c, i, t, tx] = e[2]
                        v[4 * a + 3, c, i, t, tx] = e[3]


def _output_transform_kernel(m, out, ty0):
    """``out[i, o, 2ty + y, 2tx + x] = (Aᵀ M A)[y, x]`` with ``M[a, b] = m[4a + b, o, i, t, tx]``, ``ty = ty0 + t``.

    m: (16, O, B, T, tw); out: (B, O, Ho, Wo), whose rows ``2·ty0 .. 2·(ty0 + T) − 1``
    are written (those below ``Ho``, and columns below ``Wo``)::

        for o in prange(O):
            for i, t, tx in B × T × tw:
                Y = Aᵀ m[:, o, i, t, tx].reshape(4, 4) A           (2x2)
                out[i, o, 2ty : 2ty + 2, 2tx : 2tx + 2] = Y         (the part inside the output)
    """
    O, B, T, tw = m.shape[1:]
    Ho, Wo = out.shape[2:]
    for o in prange(O):
        for i in range(B):
            for t in range(T):
                y = 2 * (ty0 + t)
                for tx in range(tw):
                    # Aᵀ M: each of the four columns of M through Aᵀ
                    c0 = _at(m[0, o, i, t, tx], m[4, o, i, t, tx], m[8, o, i, t, tx], m[12, o, i, t, tx])
                    c1 = _at(m[1, o, i, t, tx], m[5, o, i, t, tx], m[9, o, i, t, tx], m[13, o, i, t, tx])
                    c2 = _at(m[2, o, i, t, tx], m[6, o, i, t, tx], m[10, o, i, t, tx], m[14, o, i, t, tx])
                    c3 = _at(m[3, o, i, t, tx], m[7, o, i, t, tx], m[11, o, i, t, tx], m[15, o, i, t, tx])
                    # (Aᵀ M) A: each of its two rows through Aᵀ
                    top = _at(c0[0], c1[0], c2[0], c3[0])
                    bottom = _at(c0[1], c1[1], c2[1], c3[1])
                    x = 2 * tx
                    if y < Ho:
                        out[i, o, y, x] = top[0]
                        if x + 1 < Wo:
                            out[i, o, y, x + 1] = top[1]
                    if y + 1 < Ho:
                        out[i, o, y + 1, x] = bottom[0]
                        if x + 1 < Wo:
                            out[i, o, y + 1, x + 1] = bottom[1]


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
            # G g: each of the three columns of g through G
            c0 = _g(w[o, c, 0, 0], w[o, c, 1, 0], w[o, c, 2, 0], half)
            c1 = _g(w[o, c, 0, 1], w[o, c, 1, 1], w[o, c, 2, 1], half)
            c2 = _g(w[o, c, 0, 2], w[o, c, 1, 2], w[o, c, 2, 2], half)
            # (G g) Gᵀ: each of its four rows through G
            for a in range(4):
                e = _g(c0[a], c1[a], c2[a], half)
                u[4 * a, o, c] = e[0]
                u[4 * a + 1, o, c] = e[1]
                u[4 * a + 2, o, c] = e[2]
                u[4 * a + 3, o, c] = e[3]


_weight_transform = njit(parallel=True, cache=True, nogil=True)(_weight_transform_kernel)


def weight_transform(w: np.ndarray) -> np.ndarray:
    """``U[4a + b, o, c] = (G w[o, c] Gᵀ)[a, b]``: w (Cout, Cin, 3, 3) → (16, Cout, Cin), w's dtype.

    A Numba loop rather than one GEMM with ``G ⊗ G``: a BLAS call here, on the
    caller's thread, would wake OpenBLAS's threads just before the convolution's
    workers start (see :class:`kernels.cpu._runtime.Workers`).
    """
    u = np.empty((16,) + w.shape[:2], dtype=w.dtype)
    _weight_transform(np.ascontiguousarray(w), u, w.dtype.type(0.5))
    return u


@njit(inline="always")
def _a(y0, y1):
    """``A (y0, y1)``: the adjoint of the output transform on one line of two (A = (Aᵀ)ᵀ, 4x2)."""
    return y0, y0 + y1, y0 - y1, -y1


@njit(inline="always")
def _gt(m0, m1, m2, m3, half):
    """``Gᵀ (m0, m1, m2, m3)``: the adjoint of the weight transform on one line of four."""
    return m0 + half * (m1 + m2), half * (m1 - m2), half * (m1 + m2) + m3


def _output_gradient_transform_kernel(go, z, ty0):
    """``z[4a + b, o, i, t, tx] = (A Y Aᵀ)[a, b]`` for the 2x2 tile ``Y`` of ``go`` at tile ``(ty0 + t, tx)``.

    go: (B, O, Ho, Wo); z: (16, O, B, T, tw). The adjoint of :func:`output_transform`:
    the upstream gradient of a tile taken back to its 16 products (pixels of
    a half tile beyond ``Ho`` or ``Wo`` count as 0)::

        for o in prange(O):
            for i, t, tx in B × T × tw:
                z[:, o, i, t, tx] = (A go[i, o, 2ty : 2ty + 2, 2tx : 2tx + 2] Aᵀ).ravel()
    """
    O, B, T, tw = z.shape[1:]
    Ho, Wo = go.shape[2:]
    zero = go.dtype.type(0)
    for o in prange(O):
        for i in range(B):
            for t in range(T):
                y = 2 * (ty0 + t)
                for tx in range(tw):
                    x = 2 * tx
                    y00 = go[i, o, y, x] if y < Ho else zero
                    y01 = go[i, o, y, x + 1] if y < Ho and x + 1 < Wo else zero
                    y10 = go[i, o, y + 1, x] if y + 1 < Ho else zero
                    y11 = go[i, o, y + 1, x + 1] if y + 1 < Ho and x + 1 < Wo else zero
                    # A Y: each of the two columns of Y through A; then (A Y) Aᵀ: each of its four rows
                    c0 = _a(y00, y10)
                    c1 = _a(y01, y11)
                    for a in range(4):
                        e = _a(c0[a], c1[a])
                        z[4 * a, o, i, t, tx] = e[0]
                        z[4 * a + 1, o, i, t, tx] = e[1]
                        z[4 * a + 2, o, i, t, tx] = e[2]
                        z[4 * a + 3, o, i, t, tx] = e[3]


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


# Serial bindings run inside the conv workers (one block at a time); the parallel ones
# spread channels over Numba's threads when a block runs on the caller without
# threadpoolctl (see kernels.cpu.conv).
input_transform = njit(cache=True, nogil=True)(_input_transform_kernel)
output_transform = njit(cache=True, nogil=True)(_output_transform_kernel)
input_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_input_transform_kernel)
output_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_output_transform_kernel)
output_gradient_transform = njit(cache=True, nogil=True)(_output_gradient_transform_kernel)
output_gradient_transform_parallel = njit(parallel=True, cache=True, nogil=True)(_output_gradient_transform_kernel)
