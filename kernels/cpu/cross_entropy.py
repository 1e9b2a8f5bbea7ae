"""Cross-entropy (softmax + negative log-likelihood) on the CPU (Numba): one pass forward, one backward.

Shapes: logits ``x: (N, C, *)`` seen as ``(N, C, L)`` (``L`` = pixels per image, 1
for ``(N, C)``), ``target: (N, *)`` integer class indices seen as ``(N, L)``,
``weight: (C,)`` or None (all 1). Per pixel ``(n, i)`` with ``t = target[n, i]``
(:mod:`kernels.shared.cross_entropy`, the per-pixel loops; the GPU runs them as they are,
the CPU with its loops reordered)::

    p[n, :, i] = softmax(x[n, :, i])                           (max-shifted, float64 sums)
    loss[n, i] = −w[t]·log p[n, t, i]                          (0 where t = ignore_index)
    dx[n, c, i] = s[n, i]·(p[n, c, i] − [c = t])               (0 where t = ignore_index)

The NumPy formulation makes about a dozen passes over the ``N·C·L`` logits (a
transpose to rows, max, subtract, exp, sum, log, gather, and as many in the
backward), each writing a temporary as large as the logits. Here each pixel's
``C`` logits are read in one parallel loop that writes the softmax (kept for the
backward, which then needs no exponential) and the pixel's loss and weight; the
backward is one more loop. Both run over blocks of pixels, one class row at a time,
so that every loop vectorises, the exponential included (:func:`_exp_kernel`: Numba
calls libm's scalar ``exp``). Pixels are independent, so results do not depend on
the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..shared.cross_entropy import pixel_loss
from . import _runtime

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


_BLOCK = 1024
"""Pixels per parallel job, forward and backward: one image's block of consecutive pixels."""

_LN2_HI = 0.693359375
_LN2_LO = -2.1219444005469058277e-4
"""ln 2 = _LN2_HI + _LN2_LO (Cephes' ``expf`` split): the high part has 9 significant bits, so
``q·_LN2_HI`` is exact in float32 and float64 for every ``|q| ≤ 1076`` used; the low part is
ln 2 − _LN2_HI to 20 digits."""


_DEGREE = 13
"""Degree of :func:`_exp_kernel`'s Taylor polynomial."""


def _exp_constants(dtype):
    """The constants of :func:`_exp_kernel` for float32 or float64 logits: ``(constants, bits_like)``.

    ``constants`` in that dtype: ``[log2(e), 0.5, ln2_hi, ln2_lo, lowest, e_min, bias,
    2^fraction_bits, 1/13!, 1/12!, ..., 1/1!, 1/0!]``, with float32's (e_min, bias,
    fraction bits) = (−126, 127, 23) and float64's (−1022, 1023, 52); below ``lowest``
    (−104 or −746) exp rounds to 0. Taylor's polynomial to degree 13 leaves
    ``(ln(2)/2)^14/14! ≈ 4e-18`` relative, below float64's half ulp. ``bits_like``: an
    empty int32 or int64 array (the floats' width), the dtype of the ``bits`` scratch.
    """
    single = np.dtype(dtype) == np.float32
    head = [np.log2(np.e), 0.5, _LN2_HI, _LN2_LO] + ([-104.0, -126, 127, 2.0**23] if single else
                                                      [-746.0, -1022, 1023, 2.0**52])
    constants = np.array(head + [1.0 / math.factorial(k) for k in range(_DEGREE, -1, -1)], dtype=dtype)
    return constants, np.zeros(0, dtype=np.int32 if single else np.int64)


def _exp_kernel(v, out, bits, constants):
    """``out[k] = exp(v[k])`` for ``v[k] ≤ 0`` (or NaN), in two loops that Numba vectorises.

    v, out: (n,) float32 or float64, computed in that dtype; bits: (2, n) int32 or
    int64 scratch (the floats' width); constants: :func:`_exp_constants` of the dtype.
    ``math.exp`` is a scalar libm call in Numba (its vector library, SVML, is not
    installed with it), which made the softmax 4x slower than torch's; this is the same
    function written as arithmetic that LLVM runs several lanes at a time::

        v = max(v, lowest)                                   (exp is 0 below; NaN stays NaN)
        q = floor(v·log2(e) + 0.5),  r = (v − q·ln2_hi) − q·ln2_lo      (|r| ≤ ln(2)/2)
        p = Σ_{k=0..13} r^k / k!                                        (Horner)
        exp(v) = p · 2^q1 · 2^q2,  q1 = max(q, e_min), q2 = q − q1      (two normal powers of 2)

    ``2^q`` is built from its bits, the integer ``(q + bias)·2^fraction_bits`` (exact
    in the dtype) stored into ``bits`` and read back as floats (``bits.view``).
    Splitting ``q`` keeps both exponents in the normal range, so a subnormal result is
    rounded once, in the last product. Tested within 2 ulp of the correctly rounded
    exp (``tests/kernels/test_cross_entropy.py``; measured at most 1.0 ulp in float64,
    1.6 in float32).
    """
    log2e, half, ln2_hi, ln2_lo, lowest, e_min, bias, shift = (constants[0], constants[1], constants[2],
                                                               constants[3], constants[4], constants[5],
                                                               constants[6], constants[7])
    b1 = bits[0]
    b2 = bits[1]
    for k in range(v.shape[0]):
        x = v[k]
        x = lowest if x < lowest else x
        q = np.floor(x * log2e + half)
        r = (x - q * ln2_hi) - q * ln2_lo
        p = constants[8]
        for j in range(9, 9 + _DEGREE):  # Horner from 1/13!: a constant trip count, unrolled by LLVM
            p = p * r + constants[j]
        out[k] = p
        q1 = q if q > e_min else e_min
        b1[k] = (q1 + bias) * shift
        b2[k] = (q - q1 + bias) * shift
    s1 = b1.view(v.dtype)
    s2 = b2.view(v.dtype)
    for k in range(v.shape[0]):
        out[k] = out[k] * s1[k] * s2[k]


_exp = njit(cache=True, inline="always")(_exp_kernel)
_exp_serial = njit(cache=True)(_exp_kernel)


def exp(v: np.ndarray) -> np.ndarray:
    """:func:`_exp_kernel` on a float32 or float64 array of values ≤ 0 (NaN allowed); the tests' handle on it."""
    v = np.ascontiguousarray(v)
    if v.dtype not in (np.float32, np.float64):
        raise TypeError(f"exp: v must be float32 or float64, got {v.dtype}")
    flat = v.ravel()
    out = np.empty_like(flat)
    constants, bits_like = _exp_constants(v.dtype)
    _exp_serial(flat, out, np.empty((2, flat.shape[0]), bits_like.dtype), constants)
    return out.reshape(v.shape)


def _block_of(job, blocks, length):
    """Job ``job`` of a ``prange(N × blocks)`` over blocks of ``_BLOCK`` pixels: ``(image n, first pixel i0, size)``."""
    i0 = (job % blocks) * _BLOCK
    return job // blocks, i0, min(_BLOCK, length - i0)


_block = njit(cache=True, inline="always")(_block_of)


def _cross_entropy_forward_kernel(x, target, weight, ignore_index, log_probs_given, losses, weights, probs,
                                  exp_constants, bits_like):
    """Every pixel's loss, weight and softmax, in blocks of consecutive pixels of one image.

    x, probs (written unless log_probs_given): (N, C, L); target: (N, L) int64;
    weight: (C,); losses, weights (written): (N, L); exp_constants, bits_like:
    :func:`_exp_constants` of x's dtype. The formula of
    :func:`kernels.shared.cross_entropy.pixel_forward` (the GPU's loop, one thread per
    pixel) with the loops turned inside out: the class loop outside, the pixel loop
    inside, so that every pass reads and writes one contiguous class row, and on
    slices indexed from 0, which Numba vectorises::

        for (n, block) in prange(N × blocks of _BLOCK pixels):
            m[i] = max_c x[n, c, i]                                       (in T)
            probs[n, c, i] = e = exp(x[n, c, i] − m[i]);  s[i] += e       (exp in T: _exp_kernel; s float64)
            probs[n, c, i] *= 1 / s[i];   lse[i] = m[i] + log s[i]           (lse = 0 if log_probs_given)
            pixel_loss(x, target, weight, ignore_index, n, i, lse[i], losses, weights)
    """
    n_images, classes, length = x.shape
    blocks = (length + _BLOCK - 1) // _BLOCK
    for job in prange(n_images * blocks):
        n, i0, size = _block(job, blocks, length)
        lse = np.zeros(size, dtype=np.float64)
        if not log_probs_given:
            m = x[n, 0, i0:i0 + size].copy()
            for c in range(1, classes):
                row = x[n, c, i0:i0 + size]
                for k in range(size):
                    v = row[k]
                    m[k] = v if v > m[k] else m[k]
            s = np.zeros(size, dtype=np.float64)
            d = np.empty_like(m)
            bits = np.empty((2, size), bits_like.dtype)
            for c in range(classes):
                row = x[n, c, i0:i0 + size]
                for k in range(size):
                    d[k] = row[k] - m[k]
                dst = probs[n, c, i0:i0 + size]
                _exp(d, dst, bits, exp_constants)
                for k in range(size):
                    s[k] += dst[k]
            for k in range(size):
                lse[k] = m[k] * 1.0 + math.log(s[k])
                s[k] = 1.0 / s[k]
            for c in range(classes):
                dst = probs[n, c, i0:i0 + size]
                for k in range(size):
                    dst[k] = dst[k] * s[k]
        for k in range(size):
            pixel_loss(x, target, weight, ignore_index, n, i0 + k, lse[k], losses, weights)


def _cross_entropy_backward_kernel(scale, probs, target, ignore_index, log_probs_given, grad_x):
    """Every pixel's logit gradients, in blocks of consecutive pixels of one image.

    scale: (N, L); probs, grad_x (written): (N, C, L); target: (N, L) int64. The
    formula of :func:`kernels.shared.cross_entropy.pixel_backward` (the GPU's loop, one
    thread per pixel, with the same float64 arithmetic) with the class loop outside,
    on contiguous class rows, the ``if`` written as selects so that the pixel loop
    vectorises::

        for (n, block) in prange(N × blocks of _BLOCK pixels):
            for c in range(C):
                for i in block:
                    s = scale[n, i];  t = target[n, i]
                    g = probs[n, c, i]·s  (0 if log_probs_given);  g −= s if c = t
                    grad_x[n, c, i] = 0 if t = ignore_index else g
    """
    n_images, classes, length = grad_x.shape
    blocks = (length + _BLOCK - 1) // _BLOCK
    for job in prange(n_images * blocks):
        n, i0, size = _block(job, blocks, length)
        sc = scale[n, i0:i0 + size]
        t = target[n, i0:i0 + size]
        for c in range(classes):
            dst = grad_x[n, c, i0:i0 + size]
            if log_probs_given:
                for k in range(size):
                    s = sc[k] * 1.0
                    g = -s if t[k] == c else 0.0
                    dst[k] = 0.0 if t[k] == ignore_index else g
            else:
                src = probs[n, c, i0:i0 + size]
                for k in range(size):
                    s = sc[k] * 1.0
                    g = src[k] * s
                    g = g - s if t[k] == c else g
                    dst[k] = 0.0 if t[k] == ignore_index else g


_cross_entropy_forward = njit(parallel=True, cache=True)(_cross_entropy_forward_kernel)
_cross_entropy_backward = njit(parallel=True, cache=True)(_cross_entropy_backward_kernel)


def _as_pixels(a, dims: int, dtype=None) -> np.ndarray:
    """``a: (N, [C,] *)`` as a C-contiguous ``(N, [C,] L)`` array (a view when it already is one)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[:dims - 1] + (math.prod(a.shape[dims - 1:]),))


def cross_entropy_forward(x, target, weight, ignore_index, log_probs_given):
    """Per-pixel softmax cross-entropy of logits ``x: (N, C, *)``; returns ``(losses, weights, probs)``.

    target: (N, *) integer class indices in ``[0, C)`` or ``ignore_index`` (not
    checked here: ``minitorchseg.functional.cross_entropy`` checks before calling);
    weight: (C,) or None (all 1). ``losses``, ``weights`` (``w[target]``, 0 where
    ignored): ``(N, L)`` in x's dtype; ``probs``: the softmax over classes in x's
    shape and dtype, or None with ``log_probs_given`` (``x`` holds log-probabilities:
    ``loss = −w·x[t]``). Loop: :func:`_cross_entropy_forward_kernel`.
    """
    x3 = _as_pixels(x, 3)
    dtype = x3.dtype
    t2 = _as_pixels(target, 2, np.int64)
    w = np.ones(x3.shape[1], dtype=dtype) if weight is None else np.ascontiguousarray(weight, dtype=dtype)
    losses = np.empty(t2.shape, dtype=dtype)
    weights = np.empty(t2.shape, dtype=dtype)
    probs = _runtime.empty((1, 1, 1) if log_probs_given else x3.shape, dtype)
    _cross_entropy_forward(x3, t2, w, int(ignore_index), bool(log_probs_given), losses, weights, probs,
                           *_exp_constants(dtype))
    return losses, weights, None if log_probs_given else probs.reshape(np.shape(x))


def cross_entropy_backward(scale, probs, target, ignore_index, log_probs_given):
    """``grad_x = scale·(probs − onehot(target))`` per pixel, 0 where ``target = ignore_index``.

    scale: (N, L) — dℓ/dloss[n, i]·w[target[n, i]], the reduction's factor included;
    probs: (N, C, *) the forward's softmax; target: (N, *). With ``log_probs_given``
    (``nll_loss``) ``grad_x = −scale·onehot(target)`` and only probs' shape and dtype
    are read (pass the input).
    Returns grad_x in probs' shape and dtype. Loop: :func:`_cross_entropy_backward_kernel`.
    """
    p3 = _as_pixels(probs, 3)
    t2 = _as_pixels(target, 2, np.int64)
    grad_x = _runtime.empty(p3.shape, p3.dtype)
    _cross_entropy_backward(np.ascontiguousarray(scale, dtype=p3.dtype).reshape(t2.shape), p3, t2,
                            int(ignore_index), bool(log_probs_given), grad_x)
    return grad_x.reshape(np.shape(probs))
