"""Mask R-CNN (torchvision's ``mask_rcnn.py``): Faster R-CNN plus a small FCN that predicts a mask in each box.

::

    detections / positive proposals ─ mask_roi_pool ─ MaskRCNNHeads ──── MaskRCNNPredictor ──→ mask logits
                                      (K, C, 14, 14)  4 × (3×3 conv, ReLU)  2×2 stride-2 transposed conv, ReLU,
                                                      (K, 256, 14, 14)      1×1 conv → (K, num_classes, 28, 28)

One 28×28 mask per class; the loss and the inference read only the mask of the
box's class, so classes do not compete for pixels (the paper's decoupling).
"""

from __future__ import annotations

from ...nn import Conv2d, ConvTranspose2d, ReLU, Sequential, init
from ...ops.misc import FrozenBatchNorm2d
from ...ops.poolers import MultiScaleRoIAlign
from .anchor_utils import AnchorGenerator
from .backbone_utils import group_norm_layer, resnet_fpn_backbone
from .faster_rcnn import FasterRCNN, FastRCNNPredictor, TwoMLPHead

__all__ = ["MaskRCNN", "MaskRCNNHeads", "MaskRCNNPredictor", "maskrcnn_resnet_fpn"]


class MaskRCNNHeads(Sequential):
    """``len(layers)`` blocks of [3×3 conv (padding = dilation), optional norm, ReLU] (torchvision's keys).

    Block ``i`` is ``Sequential(conv, [norm_layer(channels),] ReLU)``, so its keys are
    ``{i}.0.weight``, ``{i}.0.bias`` (bias only without a norm layer) and ``{i}.1.*`` for the
    norm. Convolutions initialised He-normal (fan_out, ReLU gain), biases 0.
    (K, in_channels, 14, 14) → (K, layers[-1], 14, 14).
    """

    def __init__(self, in_channels: int, layers, dilation: int = 1, norm_layer=None):
        blocks = []
        previous = in_channels
        for channels in layers:
            conv = Conv2d(previous, channels, 3, stride=1, padding=dilation, dilation=dilation,
                          bias=norm_layer is None)
            parts = [conv] + ([norm_layer(channels)] if norm_layer is not None else []) + [ReLU()]
            blocks.append(Sequential(*parts))
            previous = channels
        super().__init__(*blocks)
        for layer in self.modules():
            if isinstance(layer, Conv2d):
                init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                if layer.bias is not None:
                    init.zeros_(layer.bias)


class MaskRCNNPredictor(Sequential):
    """``conv5_mask`` (2×2 transposed conv, stride 2) → ``relu`` → ``mask_fcn_logits`` (1×1 conv to num_classes).

    (K, in_channels, 14, 14) → (K, num_classes, 28, 28) logits. Weights He-normal (fan_out),
    biases left at the layers' default initialisation, as in torchvision.
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int):
        super().__init__()
        self.add_module("conv5_mask", ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0))
        self.add_module("relu", ReLU())
        self.add_module("mask_fcn_logits", Conv2d(dim_reduced, num_classes, 1, 1, 0))
        for name, param in self.named_parameters():
            if "weight" in name:
                init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")


class MaskRCNN(FasterRCNN):
    """Mask R-CNN with torchvision's constructor: :class:`~.faster_rcnn.FasterRCNN`'s keywords plus the mask branch.

    Defaults as torchvision: ``mask_roi_pool`` = ``MultiScaleRoIAlign(["0", "1", "2", "3"], 14,
    sampling_ratio=2)`` (``roi_op`` chooses RoIAlign or RoIPool for both poolers),
    ``mask_head`` = ``MaskRCNNHeads(out_channels, (256,) * 4, 1)``, ``mask_predictor`` =
    ``MaskRCNNPredictor(256, 256, num_classes)``. Training returns five losses
    (``loss_classifier``, ``loss_box_reg``, ``loss_mask``, ``loss_objectness``,
    ``loss_rpn_box_reg``); eval returns per image ``boxes``, ``labels``, ``scores`` and
    ``masks`` (D, 1, H, W) probabilities at the image's original size.
    """

    def __init__(self, backbone, num_classes=None, min_size=800, max_size=1333, image_mean=None, image_std=None,
                 rpn_anchor_generator=None, rpn_head=None, rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000,
                 rpn_post_nms_top_n_train=2000, rpn_post_nms_top_n_test=1000, rpn_nms_thresh=0.7,
                 rpn_fg_iou_thresh=0.7, rpn_bg_iou_thresh=0.3, rpn_batch_size_per_image=256,
                 rpn_positive_fraction=0.5, rpn_score_thresh=0.0, box_roi_pool=None, box_head=None,
                 box_predictor=None, box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=100,
                 box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_batch_size_per_image=512,
                 box_positive_fraction=0.25, bbox_reg_weights=None, mask_roi_pool=None, mask_head=None,
                 mask_predictor=None, roi_op="align", **kwargs):
        if not isinstance(mask_roi_pool, (MultiScaleRoIAlign, type(None))):
            raise TypeError(f"MaskRCNN: mask_roi_pool should be a MultiScaleRoIAlign or None, "
                            f"got {type(mask_roi_pool).__name__}")
        if num_classes is not None and mask_predictor is not None:
            raise ValueError("MaskRCNN: num_classes should be None when mask_predictor is specified")
        if roi_op not in ("align", "pool"):
            raise ValueError(f"MaskRCNN: roi_op must be 'align' or 'pool', got {roi_op!r}")
        out_channels = getattr(backbone, "out_channels", None)
        if mask_roi_pool is None:
            mask_roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=14, sampling_ratio=2, roi_op=roi_op)
        if mask_head is None and out_channels is not None:
            mask_head = MaskRCNNHeads(out_channels, (256, 256, 256, 256), 1)
        if mask_predictor is None and num_classes is not None:
            mask_predictor = MaskRCNNPredictor(256, 256, num_classes)
        super().__init__(
            backbone, num_classes, min_size, max_size, image_mean, image_std, rpn_anchor_generator, rpn_head,
            rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test, rpn_post_nms_top_n_train, rpn_post_nms_top_n_test,
            rpn_nms_thresh, rpn_fg_iou_thresh, rpn_bg_iou_thresh, rpn_batch_size_per_image, rpn_positive_fraction,
            rpn_score_thresh, box_roi_pool, box_head, box_predictor, box_score_thresh, box_nms_thresh,
            box_detections_per_img, box_fg_iou_thresh, box_bg_iou_thresh, box_batch_size_per_image,
            box_positive_fraction, bbox_reg_weights, roi_op=roi_op, **kwargs)
        self.roi_heads.mask_roi_pool = mask_roi_pool
        self.roi_heads.mask_head = mask_head
        self.roi_heads.mask_predictor = mask_predictor


def maskrcnn_resnet_fpn(num_classes: int = 2, backbone_name: str = "resnet18", base_channels: int = 16,
                        fpn_channels: int = 64, representation_size: int = 256, mask_channels: int = 64,
                        norm: str = "group", anchor_sizes=(8, 16, 32, 64, 128), min_size: int = 256,
                        max_size: int = 384, roi_op: str = "align", rpn_pre_nms_top_n_train: int = 1000,
                        rpn_post_nms_top_n_train: int = 500, rpn_pre_nms_top_n_test: int = 500,
                        rpn_post_nms_top_n_test: int = 300, rpn_batch_size_per_image: int = 256,
                        box_batch_size_per_image: int = 128, box_detections_per_img: int = 100,
                        **kwargs) -> MaskRCNN:
    """A Mask R-CNN on a ResNet-FPN backbone; the defaults are a compact network that trains on two CPU cores.

    Compact defaults (1.9 M parameters with resnet18 and 3 classes, against 30.9 M at torchvision's widths):

    * backbone ``resnet_fpn_backbone(backbone_name, base_channels=16, out_channels=64)``: ResNet
      widths 16, 32, 64, 128; all layers trainable; ``norm="group"`` puts GroupNorm (32 groups,
      fewer where a stage is narrower) in the ResNet and the mask head, because batches of one or
      two images give BatchNorm no statistics (``"frozen_bn"``: torchvision's FrozenBatchNorm2d,
      for copied pre-trained weights, 3 trainable layers);
    * anchors of 8, 16, 32, 64, 128 pixels on levels "0" … "pool" (strides 4 … 64), aspect
      ratios 0.5, 1, 2: objects of roughly 6–180 pixels, small ones as in cell or shape data;
    * images resized to a short side of 256, long side ≤ 384 (torchvision: 800 / 1333);
    * box head ``TwoMLPHead(64·7·7, 256)``, mask head 4 × 64 channels, predictor 64 channels
      (torchvision: 1024 and 256);
    * RPN: 1000 anchors per level before NMS and 500 proposals per image after it in training,
      500 and 300 in evaluation (torchvision: 2000/2000 and 1000/1000; a 256×256 image has
      about 16 000 anchors, and a few hundred proposals cover the ≤ 100 objects of a cell image);
    * RoI heads: 128 proposals sampled per image, at most a quarter positive (torchvision: 512).
      The mask head runs on every positive (4 convolutions 64 → 64 at 14×14: about 29 M
      multiply-adds forward per positive; 128 positives cost several times the backbone, FPN
      and RPN head on a 256×256 image), so at most 32 positives instead of 128 cut the largest
      part of a training step about four times; the ground-truth boxes are always among the
      proposals.
      ``rpn_batch_size_per_image`` 256 and ``box_detections_per_img`` 100 as torchvision.

    ``base_channels=64, fpn_channels=256, representation_size=1024, mask_channels=256,
    norm="frozen_bn", anchor_sizes=(32, 64, 128, 256, 512), min_size=800, max_size=1333,
    rpn_pre_nms_top_n_train=2000, rpn_post_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000,
    rpn_post_nms_top_n_test=1000, box_batch_size_per_image=512`` is torchvision's
    ``MaskRCNN(resnet_fpn_backbone(backbone_name=...), num_classes)`` (same keys).
    ``num_classes`` counts the background. Other keywords go to :class:`MaskRCNN`.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"maskrcnn_resnet_fpn: num_classes must be an int >= 2 (background included), "
                         f"got {num_classes!r}")
    if norm not in ("group", "frozen_bn"):
        raise ValueError(f"maskrcnn_resnet_fpn: norm must be 'group' or 'frozen_bn', got {norm!r}")
    if roi_op not in ("align", "pool"):
        raise ValueError(f"maskrcnn_resnet_fpn: roi_op must be 'align' or 'pool', got {roi_op!r}")
    anchor_sizes = tuple(anchor_sizes)
    if len(anchor_sizes) != 5:
        raise ValueError(f"maskrcnn_resnet_fpn: anchor_sizes: expected 5 sizes (levels '0'..'3' and 'pool'), "
                         f"got {anchor_sizes!r}")
    group = norm == "group"
    backbone = resnet_fpn_backbone(backbone_name=backbone_name, weights=None,
                                   norm_layer=group_norm_layer() if group else FrozenBatchNorm2d,
                                   trainable_layers=5 if group else 3, base_channels=base_channels,
                                   out_channels=fpn_channels)
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    return MaskRCNN(
        backbone, num_classes=None, min_size=min_size, max_size=max_size, rpn_anchor_generator=anchors,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, representation_size),
        box_predictor=FastRCNNPredictor(representation_size, num_classes),
        mask_head=MaskRCNNHeads(fpn_channels, (mask_channels,) * 4, 1,
                                norm_layer=group_norm_layer() if group else None),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes), roi_op=roi_op,
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=rpn_batch_size_per_image, box_batch_size_per_image=box_batch_size_per_image,
        box_detections_per_img=box_detections_per_img, **kwargs)
