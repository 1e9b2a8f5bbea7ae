"""Detection operators with torchvision.ops' names and argument orders.

``roi_align`` / ``RoIAlign`` and ``roi_pool`` / ``RoIPool`` are differentiable with
respect to their feature-map input; the box functions (``nms``, ``batched_nms``,
``box_iou``, ``box_area``, ``clip_boxes_to_image``, ``remove_small_boxes``) take
Tensors or arrays and return the same kind, without gradient.
"""

from .boxes import batched_nms, box_area, box_iou, clip_boxes_to_image, nms, remove_small_boxes
from .feature_pyramid_network import FeaturePyramidNetwork
from .misc import FrozenBatchNorm2d
from .poolers import MultiScaleRoIAlign
from .roi_align import RoIAlign, roi_align
from .roi_pool import RoIPool, roi_pool

__all__ = [
    "roi_align", "RoIAlign", "roi_pool", "RoIPool",
    "nms", "batched_nms", "box_iou", "box_area", "clip_boxes_to_image", "remove_small_boxes",
    "MultiScaleRoIAlign", "FrozenBatchNorm2d", "FeaturePyramidNetwork",
]
