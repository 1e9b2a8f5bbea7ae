"""NMS's processing order, shared by both devices (host NumPy).

Both devices run the greedy loop over the same order: the CPU kernel
(:mod:`kernels.cpu.nms`) directly, the GPU's host scan (:mod:`kernels.cuda.nms`) on a host
copy of the scores.
"""

from __future__ import annotations

import numpy as np

__all__ = ["descending_order"]


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Stable descending order of ``scores`` (torch's ``sort(descending=True, stable=True)``).

    Equal scores keep increasing index order (``-0.0 == 0.0``); NaN scores come
    first, in index order.
    """
    is_nan = np.isnan(scores)
    return np.lexsort((-scores, ~is_nan)).astype(np.int64)
