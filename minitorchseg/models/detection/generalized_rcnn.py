"""``GeneralizedRCNN``: the two-stage detector as the paper draws it (torchvision's ``generalized_rcnn.py``).

::

    images ─ transform ─ backbone ─ rpn ─ roi_heads ─ transform.postprocess ─→ detections (eval)
             (normalise,  (FPN maps)  (proposals)  (boxes, classes, masks)    (back to each image's size)
              resize, pad)                 └── training: the five losses ──→ {loss_*}
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ...nn import Module
from ...tensor import Tensor
from .roi_heads import host

__all__ = ["GeneralizedRCNN", "check_detection_inputs"]


def check_detection_inputs(images, targets, training: bool, in_channels: int, num_classes: int | None,
                           with_masks: bool) -> None:
    """Raise before any work on inputs the detector cannot use; messages name the image index and the value.

    * ``images``: a non-empty list of float Tensors ``(in_channels, H, W)``, H, W ≥ 1.
    * ``targets``: required in training; one dict per image with ``boxes`` float (G, 4),
      finite, ``x2 > x1`` and ``y2 > y1``; ``labels`` int (G,) in ``[1, num_classes − 1]``
      (0 is the background); with masks, ``masks`` (G, H, W) of the image's size. G = 0 is valid.
    """
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise TypeError(f"GeneralizedRCNN: images: expected a non-empty list of (C, H, W) Tensors, got {images!r:.80}")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor):
            raise TypeError(f"GeneralizedRCNN: images[{i}]: expected a Tensor, got {type(image).__name__}")
        if image.ndim != 3 or image.shape[0] != in_channels or min(image.shape[1:]) < 1:
            raise ValueError(f"GeneralizedRCNN: images[{i}]: expected shape ({in_channels}, H, W), "
                             f"got {image.shape}")
        if image.dtype.kind != "f":
            raise TypeError(f"GeneralizedRCNN: images[{i}]: expected a floating-point image, got {image.dtype}")
    if targets is None:
        if training:
            raise ValueError("GeneralizedRCNN: targets should not be None in training mode "
                             "(one dict with 'boxes', 'labels'" + (", 'masks'" if with_masks else "") + " per image)")
        return
    if not isinstance(targets, (list, tuple)) or len(targets) != len(images):
        length = len(targets) if hasattr(targets, "__len__") else "?"
        raise ValueError(f"GeneralizedRCNN: targets: expected a list of {len(images)} dicts (one per image), "
                         f"got {type(targets).__name__} of length {length}")
    for i, (image, target) in enumerate(zip(images, targets)):
        keys = ("boxes", "labels") + (("masks",) if with_masks else ())
        if not isinstance(target, dict) or any(k not in target for k in keys):
            raise ValueError(f"GeneralizedRCNN: targets[{i}]: expected a dict with keys {keys}, "
                             f"got {sorted(target) if isinstance(target, dict) else type(target).__name__}")
        boxes, labels = host(target["boxes"]), host(target["labels"])
        if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.dtype.kind != "f":
            raise ValueError(f"GeneralizedRCNN: targets[{i}]['boxes']: expected a float (G, 4) tensor, "
                             f"got shape {boxes.shape} dtype {boxes.dtype}")
        if labels.shape != (boxes.shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError(f"GeneralizedRCNN: targets[{i}]['labels']: expected int ({boxes.shape[0]},) "
                             f"(one per box), got shape {labels.shape} dtype {labels.dtype}")
        finite = np.isfinite(boxes).all(axis=1)
        if not finite.all():
            k = int(np.argmin(finite))
            raise ValueError(f"GeneralizedRCNN: targets[{i}]['boxes'][{k}] = {boxes[k].tolist()} is not finite")
        degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if degenerate.any():
            k = int(np.argmax(degenerate))
            raise ValueError(f"GeneralizedRCNN: targets[{i}]['boxes'][{k}] = {boxes[k].tolist()}: all boxes "
                             "should have positive height and width (x2 > x1 and y2 > y1)")
        if num_classes is not None:
            bad = (labels < 1) | (labels >= num_classes)
            if bad.any():
                k = int(np.argmax(bad))
                raise ValueError(f"GeneralizedRCNN: targets[{i}]['labels'][{k}] = {int(labels[k])}: expected a "
                                 f"class in 1..{num_classes - 1} (0 is the background)")
        if with_masks:
            masks = host(target["masks"])
            expected = (boxes.shape[0],) + tuple(image.shape[1:])
            if masks.shape != expected:
                raise ValueError(f"GeneralizedRCNN: targets[{i}]['masks']: expected shape {expected} (one mask per "
                                 f"box, of the image's size), got {masks.shape}")


class GeneralizedRCNN(Module):
    """transform → backbone → rpn → roi_heads → postprocess, with torchvision's train/eval contract.

    Args:
        backbone: images (N, C, H, W) → a Tensor or ``{name: feature map}``.
        rpn: ``RegionProposalNetwork``; roi_heads: ``RoIHeads``; transform: ``GeneralizedRCNNTransform``.

    ``forward(images, targets=None)``: ``images`` a list of (C, H, W) float Tensors of any sizes (or one
    (N, C, H, W) Tensor: N images of one size);
    training → ``{"loss_classifier", "loss_box_reg"[, "loss_mask"], "loss_objectness",
    "loss_rpn_box_reg"}`` (targets required: per image ``boxes`` (G, 4) ``(x1, y1, x2, y2)`` pixels,
    ``labels`` (G,) int64 in 1..num_classes−1, ``masks`` (G, H, W) for Mask R-CNN; G = 0 allowed);
    eval → per image ``{"boxes" (D, 4), "labels" (D,), "scores" (D,)[, "masks" (D, 1, H, W)
    probabilities]}`` in the image's original coordinates. Bad input raises (see
    :func:`check_detection_inputs`) before any work.
    """

    def __init__(self, backbone, rpn, roi_heads, transform):
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    def _num_classes(self) -> int | None:
        predictor = self.roi_heads.box_predictor
        cls_score = getattr(predictor, "cls_score", None)
        return getattr(cls_score, "out_features", None)

    def forward(self, images, targets=None):
        if isinstance(images, Tensor) and images.ndim == 4:  # a batch (N, C, H, W): N images, as torchvision
            images = [images[i] for i in range(images.shape[0])]
        check_detection_inputs(images, targets, self.training, len(self.transform.image_mean), self._num_classes(),
                               self.roi_heads.has_mask())
        original_image_sizes = [tuple(image.shape[-2:]) for image in images]
        images, targets = self.transform(images, targets)
        features = self.backbone(images.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, proposal_losses = self.rpn(images, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, images.image_sizes, targets)
        detections = self.transform.postprocess(detections, images.image_sizes, original_image_sizes)
        if self.training:
            return {**detector_losses, **proposal_losses}
        return detections
