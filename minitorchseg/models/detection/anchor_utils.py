"""``AnchorGenerator``: the reference boxes the RPN scores and refines (torchvision's ``anchor_utils.py``).

For feature level ``l`` with sizes ``s_1..s_S`` and aspect ratios (height/width)
``r_1..r_R``, one *cell* holds ``A = R·S`` zero-centred base anchors, ratio-major::

    h_ratio = sqrt(r),  w_ratio = 1 / h_ratio                         (float32)
    w[i·S + j] = w_ratio[i]·s_j,  h[i·S + j] = h_ratio[i]·s_j
    base[a] = round((−w, −h, w, h)[a] / 2)                           (half to even)

e.g. size 32 with ratios (0.5, 1, 2) → (−23, −11, 23, 11), (−16, −16, 16, 16),
(−11, −23, 11, 23). A feature map of ``Hf × Wf`` over a padded image batch of
``H × W`` has integer strides ``sy = H // Hf``, ``sx = W // Wf``; the cell is
copied to every position without a half-stride offset::

    anchors[(y·Wf + x)·A + a] = base[a] + (x·sx, y·sy, x·sx, y·sy)

so the order is (y, x, a), levels concatenated. Every image of the batch gets
the same anchors (those of the padded size).
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from ...nn import Module
from ...tensor import Tensor
from .image_list import ImageList

__all__ = ["AnchorGenerator"]


class AnchorGenerator(Module):
    """Anchors for a set of feature maps, torchvision's ``AnchorGenerator``.

    Args:
        sizes (tuple of tuples of int): anchor sizes per feature map (one tuple per
            level); a flat tuple means one size per level.
        aspect_ratios (tuple of tuples of float): height/width ratios per level; a
            flat tuple is used for every level.

    ``forward(image_list, feature_maps)`` → a list with one Tensor[ΣHf·Wf·A, 4]
    per image, in the feature maps' dtype and device, without gradient.
    FPN Mask R-CNN uses ``sizes=((32,), (64,), (128,), (256,), (512,))`` and
    ``aspect_ratios=((0.5, 1.0, 2.0),) * 5``. No parameters or buffers.
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)):
        super().__init__()
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise TypeError(f"AnchorGenerator: sizes: expected a non-empty tuple of tuples of ints, got {sizes!r}")
        if not isinstance(aspect_ratios, (list, tuple)) or not aspect_ratios:
            raise TypeError(f"AnchorGenerator: aspect_ratios: expected a non-empty tuple, got {aspect_ratios!r}")
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"AnchorGenerator: got {len(sizes)} levels of sizes but {len(aspect_ratios)} of "
                             f"aspect_ratios; expected one of each per feature map")
        for name, levels in (("sizes", sizes), ("aspect_ratios", aspect_ratios)):
            for level in levels:
                if not level or not all(isinstance(v, Real) and not isinstance(v, bool) and v > 0 for v in level):
                    raise ValueError(f"AnchorGenerator: {name}: expected positive numbers per level, got {level!r}")
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [self.generate_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]

    @staticmethod
    def generate_anchors(scales, aspect_ratios, dtype=np.float32) -> np.ndarray:
        """Zero-centred base anchors (R·S, 4) of one level, computed in float32 as torchvision, then cast."""
        scales = np.asarray(scales, dtype=np.float32)
        ratios = np.asarray(aspect_ratios, dtype=np.float32)
        h_ratios = np.sqrt(ratios)
        w_ratios = np.float32(1) / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        base = np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)
        return np.round(base).astype(dtype)

    def num_anchors_per_location(self) -> list[int]:
        """``A = len(sizes[l]) · len(aspect_ratios[l])`` per level."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes, strides, xp=np, dtype=np.float32) -> list:
        """Per level, the cell shifted to every position: (Hf·Wf·A, 4) arrays in (y, x, a) order."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(
                f"AnchorGenerator: got {len(grid_sizes)} feature maps for {len(self.cell_anchors)} levels of "
                f"sizes/aspect_ratios; expected one level per feature map"
            )
        anchors = []
        for (grid_h, grid_w), (stride_h, stride_w), base in zip(grid_sizes, strides, self.cell_anchors):
            shifts_x = xp.arange(grid_w, dtype=np.int64) * stride_w
            shifts_y = xp.arange(grid_h, dtype=np.int64) * stride_h
            shift_y, shift_x = xp.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = xp.stack((shift_x, shift_y, shift_x, shift_y), axis=1).astype(dtype)
            cell = xp.asarray(base.astype(dtype))
            anchors.append((shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4))
        return anchors

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        if not isinstance(image_list, ImageList):
            raise TypeError(f"AnchorGenerator: image_list: expected an ImageList, got {type(image_list).__name__}")
        if not feature_maps or not all(isinstance(f, Tensor) and f.ndim == 4 for f in feature_maps):
            raise TypeError("AnchorGenerator: feature_maps: expected a non-empty list of (N, C, H, W) Tensors")
        image_h, image_w = image_list.tensors.shape[-2:]
        grid_sizes = [tuple(f.shape[-2:]) for f in feature_maps]
        strides = [(image_h // gh, image_w // gw) for gh, gw in grid_sizes]
        first = feature_maps[0]
        levels = self.grid_anchors(grid_sizes, strides, first.backend.xp, first.dtype)
        per_image = first.backend.xp.concatenate(levels, axis=0)
        return [Tensor(per_image.copy(), device=first.device) for _ in image_list.image_sizes]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, aspect_ratios={self.aspect_ratios}"
