"""Multi-scale RoI pooling over a feature pyramid (torchvision's ``ops/poolers.py``).

Each box is pooled from the one pyramid level that suits its size: the FPN
paper's eq. 1 (Lin et al., 2017) with ``k0 = canonical_level`` and
``224 = canonical_scale``::

    k = floor(k0 + log2(sqrt(w·h) / canonical_scale) + 1e−6),  clamped to [k_min, k_max]

so a 224×224 box is pooled from level 4 (stride 16), a 112×112 box from level
3, anything of side ≥ 448 from level 5. Level ``k`` has stride ``2**k``;
``k_min``/``k_max`` come from the first/last feature map's scale, inferred
from the sizes (see :func:`infer_scale`). Boxes are in image coordinates
(those of ``image_shapes``); each level pools with ``spatial_scale = 2**−k``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..nn import Module
from ..tensor import Tensor
from ._utils import unwrap, wrap_like
from .roi_align import roi_align
from .roi_pool import roi_pool

__all__ = ["MultiScaleRoIAlign", "LevelMapper", "infer_scale"]


class LevelMapper:
    """The pyramid level of each box (the module docstring's eq. 1), 0-based from ``k_min``.

    ``mapper(boxlists)`` takes a list of per-image (N_i, 4) boxes (Tensors or
    arrays) and returns int64 (ΣN_i,) levels in ``[0, k_max − k_min]``, computed
    in the boxes' dtype as torchvision (``sqrt``, ``log2``, ``+ eps``, ``floor``).
    A zero-area box gets ``k_min`` (log2(0) = −inf, then clamped). Tensor in → Tensor out, array in → array out.
    """

    def __init__(self, k_min: int, k_max: int, canonical_scale: int = 224, canonical_level: int = 4,
                 eps: float = 1e-6):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists):
        arrays = [unwrap(b, "LevelMapper", f"boxlists[{i}]")[0] for i, b in enumerate(boxlists)]
        _, backend, as_tensor = unwrap(boxlists[0], "LevelMapper", "boxlists[0]")
        xp = backend.xp
        boxes = xp.concatenate(arrays, axis=0)
        dtype = boxes.dtype.type
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            levels = xp.floor(dtype(self.lvl0) + xp.log2(xp.sqrt(area) / dtype(self.s0)) + dtype(self.eps))
        levels = xp.clip(levels, self.k_min, self.k_max)
        return wrap_like(levels.astype(np.int64) - self.k_min, backend, as_tensor)


def infer_scale(feature_size, original_size) -> float:
    """The feature map's scale: ``2 ** round(log2(feature_H / image_H))`` (in float32, half to even).

    Only the height is used, as torchvision (its ``_infer_scale`` computes both and
    returns the first). E.g. a 25-row map of a 800-row image → 2**round(−5) = 1/32.
    """
    approx = np.float32(float(feature_size[0]) / float(original_size[0]))
    return 2.0 ** float(np.round(np.log2(approx)))


class MultiScaleRoIAlign(Module):
    """RoIAlign (or RoIPool) of boxes on the pyramid level that fits each, torchvision's ``MultiScaleRoIAlign``.

    Args:
        featmap_names (list of str): which entries of the feature dict to pool from,
            finest first (e.g. ``["0", "1", "2", "3"]``; the FPN's ``"pool"`` level is
            usually left out).
        output_size (int or (PH, PW)): bins per box (7 for the box head, 14 for masks).
        sampling_ratio (int): RoIAlign samples per bin and dimension (≤ 0: adaptive).
        canonical_scale (int), canonical_level (int): the eq. 1 constants (224, 4).
        roi_op ("align" or "pool"): ``"align"`` is torchvision's
            ``roi_align(..., aligned=False)``; ``"pool"`` uses :func:`roi_pool` (two
            roundings, no sampling) so that the two can be compared in one network.

    ``forward(x, boxes, image_shapes)``:
        x (dict str → Tensor[N, C, H_l, W_l]): the feature maps (same C).
        boxes (list of Tensor[L_i, 4]): per-image (x1, y1, x2, y2) in image coordinates,
            the feature maps' dtype.
        image_shapes (list of (h, w)): the images' sizes before the backbone; the
            scales are inferred from the largest height/width on the first call
            and then kept (as torchvision caches them).

    Returns Tensor[ΣL_i, C, PH, PW], rows in box order, differentiable with respect to
    the feature maps. With one feature map every box is pooled from it.
    """

    def __init__(self, featmap_names, output_size, sampling_ratio: int, *, canonical_scale: int = 224,
                 canonical_level: int = 4, roi_op: str = "align"):
        super().__init__()
        if isinstance(featmap_names, str) or not all(isinstance(n, str) for n in featmap_names) \
                or not featmap_names:
            raise TypeError(f"MultiScaleRoIAlign: featmap_names: expected a non-empty list of str, "
                            f"got {featmap_names!r}")
        if roi_op not in ("align", "pool"):
            raise ValueError(f"MultiScaleRoIAlign: roi_op: expected 'align' or 'pool', got {roi_op!r}")
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = list(featmap_names)
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales = None
        self.map_levels = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.roi_op = roi_op

    def _setup_scales(self, features, image_shapes) -> None:
        if not image_shapes:
            raise ValueError("MultiScaleRoIAlign: image_shapes: expected a non-empty list of (h, w), got []")
        original = (max(int(s[0]) for s in image_shapes), max(int(s[1]) for s in image_shapes))
        self.scales = [infer_scale(f.shape[-2:], original) for f in features]
        k_min = int(-math.log2(self.scales[0]))
        k_max = int(-math.log2(self.scales[-1]))
        self.map_levels = LevelMapper(k_min, k_max, self.canonical_scale, self.canonical_level)

    def _pool(self, feature: Tensor, rois: Tensor, scale: float) -> Tensor:
        if self.roi_op == "pool":
            return roi_pool(feature, rois, self.output_size, scale)
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio)

    def forward(self, x: dict, boxes: list, image_shapes: list) -> Tensor:
        missing = [n for n in self.featmap_names if n not in x]
        if missing:
            raise KeyError(f"MultiScaleRoIAlign: feature maps {missing} not found; got keys {list(x)}")
        features = [v for k, v in x.items() if k in self.featmap_names]
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"MultiScaleRoIAlign: boxes: expected a list of per-image Tensor[L, 4], "
                            f"got {type(boxes).__name__}")
        if self.scales is None or self.map_levels is None:
            self._setup_scales(features, image_shapes)
        first = features[0]
        xp = first.backend.xp
        parts = []
        for i, b in enumerate(boxes):
            array, _, _ = unwrap(b, "MultiScaleRoIAlign", f"boxes[{i}]")
            if array.ndim != 2 or array.shape[1] != 4:
                raise ValueError(f"MultiScaleRoIAlign: boxes[{i}]: expected shape (L, 4), got {tuple(array.shape)}")
            array = first.backend.asarray(array)
            parts.append(xp.concatenate([xp.full((array.shape[0], 1), i, dtype=array.dtype), array], axis=1))
        rois = xp.concatenate(parts, axis=0) if parts else xp.zeros((0, 5), dtype=first.dtype)
        if len(features) == 1:
            return self._pool(first, Tensor(rois, device=first.device), self.scales[0])
        levels = self.map_levels([unwrap(b, "MultiScaleRoIAlign", "boxes")[0] for b in boxes])
        pooled, order = [], []
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            # every level is pooled, even with no RoI (0 rows), so its gradient is zeros, not None (torchvision)
            idx = xp.nonzero(levels == level)[0]
            pooled.append(self._pool(feature, Tensor(rois[idx], device=first.device), scale))
            order.append(idx)
        stacked = F.cat(pooled, 0)
        order = xp.concatenate(order)
        inverse = xp.empty_like(order)
        inverse[order] = xp.arange(order.shape[0])
        return F.index(stacked, inverse)

    def extra_repr(self) -> str:
        return (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}, roi_op={self.roi_op!r}")
