"""Shared generators for the RoI kernel tests: feature maps and boxes drawn from a seed.

Boxes follow docs/semantics.md#roi_align's coverage: uniform corners in ``[−0.3·W/scale,
1.3·W/scale]`` (partly outside the map), tiny boxes (sides < 1 map pixel),
zero-size boxes and exact-integer corners, always with ``x2 ≥ x1``, ``y2 ≥ y1``
and batch indices in range.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

__all__ = ["SCALES", "random_rois", "roi_geometries"]

SCALES = [1.0, 0.5, 0.25, 1.0 / 16, 0.3]


def random_rois(seed: int, n_images: int, n_rois: int, height: int, width: int, scale: float,
                dtype, half_integers: bool = False) -> np.ndarray:
    """``(K, 5)`` rows ``[batch_index, x1, y1, x2, y2]`` in image coordinates (map · 1/scale)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_rois):
        kind = rng.integers(0, 4)
        lo = np.array([-0.3 * width, -0.3 * height]) / scale
        hi = np.array([1.3 * width, 1.3 * height]) / scale
        a = rng.uniform(lo, hi)
        if kind == 0:
            b = rng.uniform(lo, hi)
            p1, p2 = np.minimum(a, b), np.maximum(a, b)
        elif kind == 1:
            p1, p2 = a, a + rng.uniform(0, 1, 2) / scale
        elif kind == 2:
            p1, p2 = a, a.copy()
        else:
            a = np.round(a)
            p1, p2 = a, a + rng.integers(0, 4, 2)
        if half_integers:
            p1, p2 = np.round(p1 * scale * 2) / 2 / scale, np.round(p2 * scale * 2) / 2 / scale
        rows.append([rng.integers(0, n_images), p1[0], p1[1], p2[0], p2[1]])
    return np.array(rows, dtype=dtype).reshape(n_rois, 5)


roi_geometries = st.fixed_dictionaries({
    "n": st.integers(1, 2),
    "c": st.integers(1, 3),
    "h": st.integers(1, 12),
    "w": st.integers(1, 12),
    "ph": st.integers(1, 4),
    "pw": st.integers(1, 4),
    "k": st.integers(0, 4),
    "scale": st.sampled_from(SCALES),
})
