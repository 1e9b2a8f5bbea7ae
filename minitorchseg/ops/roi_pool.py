"""RoIPool (Fast R-CNN): the differentiable op, the torchvision-named function and module.

Each box is snapped to whole map pixels (C's round, halves away from zero, and
the end pixel included), cut into ``PH × PW`` bins of whole pixels
(``floor``/``ceil``, so neighbouring bins may share a row), and each bin keeps
the maximum of each channel and where it was (``argmax``, the flat offset
``h·W + w`` in the image's plane, int32, −1 for an empty bin). Those two
roundings are what RoIAlign removes. The backward routes each bin's upstream
gradient to its argmax pixel; bins that chose the same pixel add up.

Example: on ``arange(16).view(4, 4)``, box ``[0, 0, 0, 2.5, 2.5]`` rounds to
pixels 0..3 (2.5 → 3), so a 1×1 output is 15 at argmax 15.
"""

from __future__ import annotations

from ..autograd import Function
from ..nn import Module
from ._utils import check_output_size, check_roi_input, check_rois, check_spatial_scale

__all__ = ["RoIPoolFn", "roi_pool", "RoIPool"]


class RoIPoolFn(Function):
    """``(out, argmax) = roi_pool(input (N, C, H, W), rois (K, 5))``; only ``out`` is differentiable."""

    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale):
        out, argmax = ctx.kernels.roi_pool_forward(input, rois, output_size, spatial_scale)
        ctx.save_for_backward(argmax, rois)
        ctx.input_shape = tuple(input.shape)
        return out, argmax

    @staticmethod
    def backward(ctx, grad_out):
        argmax, rois = ctx.saved_arrays
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.roi_pool_backward(grad_out, argmax, rois, ctx.input_shape)
        return grad_x, None, None, None


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling, torchvision's ``roi_pool``.

    Args:
        input (Tensor[N, C, H, W]): float32 or float64 feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): as in :func:`roi_align`.
        output_size (int or (PH, PW)): bins per box.
        spatial_scale (float): box coordinates × spatial_scale = map coordinates.

    Returns:
        Tensor[K, C, PH, PW] (differentiable with respect to ``input``). The argmax
        is kept for the backward; use :class:`RoIPoolFn` directly to see it.
    """
    op = "roi_pool"
    check_roi_input(input, op)
    rois = check_rois(input, boxes, op)
    output_size = check_output_size(output_size, op)
    spatial_scale = check_spatial_scale(spatial_scale, op)
    out, _ = RoIPoolFn.apply(input, rois, output_size, spatial_scale)
    return out


class RoIPool(Module):
    """:func:`roi_pool` as a layer: ``RoIPool(output_size, spatial_scale)``."""

    def __init__(self, output_size, spatial_scale: float):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, input, rois):
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
