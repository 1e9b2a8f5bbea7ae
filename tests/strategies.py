"""Hypothesis strategies and array makers shared by every test module.

Hypothesis draws the *geometry* (shapes, strides, flags) and a seed; the numbers
themselves come from NumPy's generator seeded by it, which is much faster than
drawing every element and still reproducible from the failing example.

Inputs are kept away from ties and kinks, so that argmax, max-pool and ReLU are
differentiable at the drawn point and finite differences agree with the
analytic gradient: :func:`distinct` returns a random permutation of values at
least ``gap`` apart.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

__all__ = ["seeds", "dtypes", "randn", "distinct", "away_from_zero", "strided", "TOL", "settings_fast"]

seeds = st.integers(min_value=0, max_value=2**32 - 1)
dtypes = st.sampled_from([np.float64, np.float32])

# Named tolerances (rtol, atol) per dtype for float results that are not exact.
# float64: the ~1e-10 relative agreement of two correct implementations that add
# in a different order; float32: ~1e-5.
TOL = {
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-10),
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5),
}

settings_fast = settings(max_examples=30, deadline=None)


def randn(seed: int, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    """Standard-normal values of ``shape`` (times ``scale``) from ``seed``."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def distinct(seed: int, shape, dtype=np.float64, gap: float = 0.01) -> np.ndarray:
    """A random permutation of ``{-n/2, ..., n/2}·gap`` (every value unique, ``gap`` apart).

    Max-pool, RoIPool and max reductions then have a unique argmax, with a margin
    larger than any finite-difference step.
    """
    n = int(np.prod(shape))
    values = (np.arange(n) - n // 2) * gap
    return np.random.default_rng(seed).permutation(values).reshape(shape).astype(dtype)


def away_from_zero(seed: int, shape, dtype=np.float64, margin: float = 0.05) -> np.ndarray:
    """Normal values with |x| ≥ ``margin`` (off ReLU's kink and sign changes)."""
    x = randn(seed, shape, np.float64)
    x = np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin + x, x)
    return x.astype(dtype)


def strided(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view with the values of ``a`` (every other element of a wider last axis)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or view.size <= 1
    return view
