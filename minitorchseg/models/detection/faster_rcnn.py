"""Faster R-CNN (torchvision's ``faster_rcnn.py``): the box branch's layers and the assembled detector.

:class:`FasterRCNN` wires ``GeneralizedRCNNTransform``, a backbone, a
:class:`~.rpn.RegionProposalNetwork` and :class:`~.roi_heads.RoIHeads` with
torchvision's defaults; Mask R-CNN (``mask_rcnn.py``) adds the mask branch.
"""

from __future__ import annotations

from ... import functional as F
from ...nn import Linear, Module
from ...ops.poolers import MultiScaleRoIAlign
from .anchor_utils import AnchorGenerator
from .generalized_rcnn import GeneralizedRCNN
from .roi_heads import RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .transform import GeneralizedRCNNTransform

__all__ = ["FasterRCNN", "TwoMLPHead", "FastRCNNPredictor"]


def _default_anchorgen() -> AnchorGenerator:
    """torchvision's anchors: one size per FPN level, 32 … 512 pixels, aspect ratios 0.5, 1, 2."""
    anchor_sizes = ((32,), (64,), (128,), (256,), (512,))
    return AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes))


class TwoMLPHead(Module):
    """(K, C, 7, 7) pooled features → flatten → fc6 → ReLU → fc7 → ReLU → (K, representation_size)."""

    def __init__(self, in_channels: int, representation_size: int):
        super().__init__()
        self.fc6 = Linear(in_channels, representation_size)
        self.fc7 = Linear(representation_size, representation_size)

    def forward(self, x):
        x = x.flatten(1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


class FastRCNNPredictor(Module):
    """(K, in_channels) → ``cls_score`` (K, num_classes) logits, ``bbox_pred`` (K, 4·num_classes) class-specific deltas.

    ``num_classes`` counts the background (class 0).
    """

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.cls_score = Linear(in_channels, num_classes)
        self.bbox_pred = Linear(in_channels, num_classes * 4)

    def forward(self, x):
        if x.ndim == 4 and tuple(x.shape[2:]) != (1, 1):
            raise ValueError(f"FastRCNNPredictor: expected (K, C) or (K, C, 1, 1) features, got {x.shape}")
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class FasterRCNN(GeneralizedRCNN):
    """Faster R-CNN with torchvision's constructor: every keyword, default and submodule name.

    ``backbone`` must have ``out_channels`` (the same for every level it returns). Either
    ``num_classes`` (background included) or a ``box_predictor`` is given, not both.
    ``roi_op`` (``"align"`` or ``"pool"``) chooses the sampling of the default box pooler
    (:class:`~minitorchseg.ops.poolers.MultiScaleRoIAlign`); torchvision has only RoIAlign.
    Remaining keywords go to ``GeneralizedRCNNTransform``. Train/eval contract: see
    :class:`~.generalized_rcnn.GeneralizedRCNN`.
    """

    def __init__(self, backbone, num_classes=None, min_size=800, max_size=1333, image_mean=None, image_std=None,
                 rpn_anchor_generator=None, rpn_head=None, rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000,
                 rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000, rpn_nms_thresh=0.7,
                 rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3, rpn_batch_size_per_image=256,
                 rpn_positive_fraction=0.5, rpn_score_thresh=0.0, box_roi_pool=None, box_head=None,
                 box_predictor=None, box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=100,
                 box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_batch_size_per_image=512,
                 box_positive_fraction=0.25, bbox_reg_weights=None, roi_op="align", **kwargs):
        if not hasattr(backbone, "out_channels"):
            raise ValueError("FasterRCNN: backbone should have an attribute out_channels (the number of channels "
                             "of every feature map it returns)")
        if not isinstance(rpn_anchor_generator, (AnchorGenerator, type(None))):
            raise TypeError(f"FasterRCNN: rpn_anchor_generator should be an AnchorGenerator or None, "
                            f"got {type(rpn_anchor_generator).__name__}")
        if not isinstance(box_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(f"FasterRCNN: box_roi_pool should be a MultiScaleRoIAlign or None, "
                            f"got {type(box_roi_pool).__name__}")
        if (num_classes is None) == (box_predictor is None):
            raise ValueError("FasterRCNN: give exactly one of num_classes and box_predictor, got "
                             f"num_classes={num_classes!r} and box_predictor={type(box_predictor).__name__}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 2):
            raise ValueError(f"FasterRCNN: num_classes must be an int >= 2 (background included), got {num_classes!r}")
        if roi_op not in ("align", "pool"):
            raise ValueError(f"FasterRCNN: roi_op must be 'align' or 'pool', got {roi_op!r}")
        out_channels = backbone.out_channels

        if rpn_anchor_generator is None:
            rpn_anchor_generator = _default_anchorgen()
        if rpn_head is None:
            rpn_head = RPNHead(out_channels, rpn_anchor_generator.num_anchors_per_location()[0])
        rpn = RegionProposalNetwork(
            rpn_anchor_generator, rpn_head, rpn_fg_iou_thresh, rpn_bg_iou_thresh, rpn_batch_size_per_image,
            rpn_positive_fraction, dict(training=rpn_pre_nms_top_n_train, testing=rpn_pre_nms_top_n_test),
            dict(training=rpn_post_nms_top_n_train, testing=rpn_post_nms_top_n_test), rpn_nms_thresh,
            score_thresh=rpn_score_thresh)

        if box_roi_pool is None:
            box_roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2, roi_op=roi_op)
        if box_head is None:
            resolution = box_roi_pool.output_size[0]
            box_head = TwoMLPHead(out_channels * resolution ** 2, 1024)
        if box_predictor is None:
            box_predictor = FastRCNNPredictor(1024, num_classes)
        roi_heads = RoIHeads(
            box_roi_pool, box_head, box_predictor, box_fg_iou_thresh, box_bg_iou_thresh, box_batch_size_per_image,
            box_positive_fraction, bbox_reg_weights, box_score_thresh, box_nms_thresh, box_detections_per_img)

        image_mean = [0.485, 0.456, 0.406] if image_mean is None else image_mean
        image_std = [0.229, 0.224, 0.225] if image_std is None else image_std
        transform = GeneralizedRCNNTransform(min_size, max_size, image_mean, image_std, **kwargs)
        super().__init__(backbone, rpn, roi_heads, transform)
