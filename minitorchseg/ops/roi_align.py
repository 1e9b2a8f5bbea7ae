"""RoIAlign (Mask R-CNN): the differentiable op, the torchvision-named function and module.

For each box ``k`` (a region of image ``b = boxes[k, 0]``), RoIAlign cuts the box
into ``PH × PW`` bins and averages, in every bin, a ``gh × gw`` grid of bilinear
samples of each channel: no coordinate is ever rounded, which is what keeps
masks aligned with the pixels they came from (RoIPool rounds twice).

Worked example of ``spatial_scale``: boxes given in the coordinates of a
224×224 image, features from a 112×112 map (stride 2) → ``spatial_scale=0.5``;
the box ``(10, 20, 50, 60)`` then covers map coordinates ``(5, 10, 25, 30)``.

Worked example of ``aligned`` (docs/semantics.md#roi_align): on ``arange(16).view(4, 4)``,
the box ``[0, 1, 1, 2, 2]`` with a 1×1 output and one sample:

* ``aligned=False`` (legacy, torchvision's default and what its Mask R-CNN uses)
  samples the box centre ``(1.5, 1.5)``: pixels 5, 6, 9, 10 at weight 1/4 → 7.5.
  Pixel ``i`` is treated as the point ``i``, not the square ``[i, i+1)``; boxes
  smaller than one pixel are also stretched to 1×1.
* ``aligned=True`` (Detectron2's ROIAlignV2) shifts the box by −0.5 so that pixel
  ``i`` covers ``[i, i+1)`` with its centre at ``i + 0.5``: the sample lands on
  the centre of pixel (1, 1) → 5.0.

The backward scatters each sample's upstream gradient ``go / count`` back to the
same four pixels with the same four bilinear weights: forward and backward
share one sample-table helper in the kernels (``kernels/cpu/roi_align.py``).
"""

from __future__ import annotations

from ..autograd import Function
from ..nn import Module
from ._utils import check_int, check_output_size, check_roi_input, check_rois, check_spatial_scale

__all__ = ["RoIAlignFn", "roi_align", "RoIAlign"]


class RoIAlignFn(Function):
    """``out (K, C, PH, PW) = roi_align(input (N, C, H, W), rois (K, 5))``; arguments already checked."""

    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.input_shape = tuple(input.shape)
        ctx.params = (spatial_scale, sampling_ratio, aligned)
        return ctx.kernels.roi_align_forward(input, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def backward(ctx, grad_out):
        (rois,) = ctx.saved_arrays
        spatial_scale, sampling_ratio, aligned = ctx.params
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.roi_align_backward(
                grad_out, rois, ctx.input_shape, spatial_scale, sampling_ratio, aligned
            )
        return grad_x, None, None, None, None, None


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign pooling, torchvision's ``roi_align``.

    Args:
        input (Tensor[N, C, H, W]): float32 or float64 feature maps.
        boxes (Tensor[K, 5] or list of Tensor[L, 4]): ``(batch_index, x1, y1, x2, y2)``
            rows in input's dtype, or one ``(x1, y1, x2, y2)`` tensor per image (its
            list position is the batch index). Corners must be finite with
            ``x1 ≤ x2``, ``y1 ≤ y2``; batch indices integers in ``[0, N)``. Boxes may
            extend past the map (samples further than one pixel outside count as 0).
        output_size (int or (PH, PW)): bins per box.
        spatial_scale (float): box coordinates × spatial_scale = map coordinates.
        sampling_ratio (int): samples per bin and dimension; ``≤ 0``: adaptive,
            ``ceil(box side / bins)`` per dimension.
        aligned (bool): shift boxes by −0.5 pixel (see the module docstring).

    Returns:
        Tensor[K, C, PH, PW], differentiable with respect to ``input`` (not boxes).
    """
    op = "roi_align"
    check_roi_input(input, op)
    rois = check_rois(input, boxes, op)
    output_size = check_output_size(output_size, op)
    spatial_scale = check_spatial_scale(spatial_scale, op)
    sampling_ratio = check_int(sampling_ratio, op, "sampling_ratio")
    if not isinstance(aligned, bool):
        raise TypeError(f"{op}: aligned: expected a bool, got {aligned!r}")
    return RoIAlignFn.apply(input, rois, output_size, spatial_scale, sampling_ratio, aligned)


class RoIAlign(Module):
    """:func:`roi_align` as a layer: ``RoIAlign(output_size, spatial_scale, sampling_ratio, aligned=False)``."""

    def __init__(self, output_size, spatial_scale: float, sampling_ratio: int, aligned: bool = False):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input, rois):
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
