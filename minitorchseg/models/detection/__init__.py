"""Mask R-CNN's building blocks with torchvision's names (``torchvision.models.detection``).

Each module mirrors the torchvision file of the same name; class names,
constructor keywords, defaults and ``state_dict`` keys are torchvision's, so
weights copy across both ways.
"""

from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from .anchor_utils import AnchorGenerator
from .backbone_utils import BackboneWithFPN, group_norm_layer, resnet_fpn_backbone
from .faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead
from .generalized_rcnn import GeneralizedRCNN
from .image_list import ImageList
from .mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor, maskrcnn_resnet_fpn
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .transform import GeneralizedRCNNTransform

__all__ = [
    "BoxCoder",
    "Matcher",
    "BalancedPositiveNegativeSampler",
    "AnchorGenerator",
    "ImageList",
    "GeneralizedRCNNTransform",
    "BackboneWithFPN",
    "resnet_fpn_backbone",
    "group_norm_layer",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "GeneralizedRCNN",
    "FasterRCNN",
    "TwoMLPHead",
    "FastRCNNPredictor",
    "MaskRCNN",
    "MaskRCNNHeads",
    "MaskRCNNPredictor",
    "maskrcnn_resnet_fpn",
]
