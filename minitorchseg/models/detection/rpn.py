"""The Region Proposal Network, Mask R-CNN's first stage (torchvision's ``rpn.py``).

::

    features (one map per level) ── RPNHead ──┬─ objectness (N, A, H, W) per level
                                               └─ deltas (N, 4A, H, W) per level
    anchors (AnchorGenerator) ─────────────────┴─ decode ─ filter_proposals ─→ proposals (≤ post_nms_top_n per image)
                                                  training: match anchors to GT, sample, losses

At each position of each level, ``A`` anchors (sizes × aspect ratios) get an
objectness logit and four box offsets. The proposals are the decoded anchors
that survive a per-level top-n, clipping, a minimum size, a score threshold and
NMS within each level. The proposals carry no gradient (as in torchvision,
Faster R-CNN does not back-propagate through them); the two RPN losses do.
"""

from __future__ import annotations

import numpy as np

from ... import functional as F
from ...nn import Conv2d, Module, ReLU, Sequential, init
from ...ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes
from ...tensor import Tensor
from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from .roi_heads import host, on_device

__all__ = ["RPNHead", "RegionProposalNetwork", "concat_box_prediction_layers", "permute_and_flatten"]


class RPNHead(Module):
    """``conv_depth`` × (3×3 conv + ReLU), then two 1×1 convs: objectness (A channels) and deltas (4A).

    The same head runs on every level. Keys as torchvision 0.29.1: ``conv.{i}.0.weight/bias``,
    ``cls_logits.*``, ``bbox_pred.*``; every conv initialised N(0, 0.01²), biases 0.

    ``forward(x: list of (N, C, H_l, W_l))`` → ``(logits: list of (N, A, H_l, W_l),
    bbox_reg: list of (N, 4A, H_l, W_l))``; channel ``a·4 + k`` of ``bbox_reg`` is offset k of anchor a.
    """

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1):
        super().__init__()
        self.conv = Sequential(*[Sequential(Conv2d(in_channels, in_channels, 3, padding=1), ReLU())
                                 for _ in range(conv_depth)])
        self.cls_logits = Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in self.modules():
            if isinstance(layer, Conv2d):
                init.normal_(layer.weight, std=0.01)
                init.zeros_(layer.bias)

    def forward(self, x):
        logits, bbox_reg = [], []
        for feature in x:
            t = self.conv(feature)
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


def permute_and_flatten(layer: Tensor, N: int, A: int, C: int, H: int, W: int) -> Tensor:
    """(N, A·C, H, W) → (N, H·W·A, C): rows ordered (y, x, anchor), the anchors' order."""
    return layer.reshape(N, A, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def concat_box_prediction_layers(box_cls, box_regression) -> tuple[Tensor, Tensor]:
    """Per-level head outputs → ``(objectness (N·ΣH·W·A, 1), deltas (N·ΣH·W·A, 4))``, image-major then level."""
    flat_cls, flat_reg = [], []
    for cls, reg in zip(box_cls, box_regression):
        N, AxC, H, W = cls.shape
        A = reg.shape[1] // 4
        flat_cls.append(permute_and_flatten(cls, N, A, AxC // A, H, W))
        flat_reg.append(permute_and_flatten(reg, N, A, 4, H, W))
    cls = F.cat(flat_cls, 1) if len(flat_cls) > 1 else flat_cls[0]
    reg = F.cat(flat_reg, 1) if len(flat_reg) > 1 else flat_reg[0]
    return cls.reshape(-1, cls.shape[-1]), reg.reshape(-1, 4)


class RegionProposalNetwork(Module):
    """Proposals from anchors and the head's predictions, and the RPN losses (torchvision's constructor).

    Args:
        anchor_generator: ``AnchorGenerator``; head: ``RPNHead``.
        fg_iou_thresh, bg_iou_thresh: anchors with IoU ≥ fg (or the best anchor of a GT box) are
            positive, < bg negative, in between ignored (torchvision: 0.7, 0.3).
        batch_size_per_image, positive_fraction: anchors sampled per image for the losses (256, 0.5).
        pre_nms_top_n, post_nms_top_n: ``{"training": n, "testing": n}``: top anchors kept per level
            before NMS, and proposals kept per image after it.
        nms_thresh: IoU threshold of the per-level NMS (0.7).
        score_thresh: proposals need ``sigmoid(objectness) ≥ score_thresh``.

    ``forward(images: ImageList, features: {name: (N, C, H_l, W_l)}, targets=None)`` →
    ``(boxes: per image (P_i, 4) Tensors without gradient, losses)``; in training ``losses`` holds
    ``loss_objectness`` (mean BCE with logits over the sampled anchors) and ``loss_rpn_box_reg``
    (``Σ_{sampled positives} smooth_l1(deltas, targets; β = 1/9) / #sampled``), else ``{}``.
    """

    def __init__(self, anchor_generator, head, fg_iou_thresh, bg_iou_thresh, batch_size_per_image,
                 positive_fraction, pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh=0.0):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.box_similarity = box_iou
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self._pre_nms_top_n = pre_nms_top_n
        self._post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.min_size = 1e-3

    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n["training" if self.training else "testing"]

    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n["training" if self.training else "testing"]

    def assign_targets_to_anchors(self, anchors, targets):
        """Per image: (labels (A_tot,) float 1 / 0 / −1 ignored, matched GT box of each anchor (A_tot, 4))."""
        labels, matched_gt_boxes = [], []
        for anchors_per_image, target in zip(anchors, targets):
            gt_boxes = host(target["boxes"]).astype(anchors_per_image.dtype)
            if gt_boxes.shape[0] == 0:
                matched = np.zeros(anchors_per_image.shape, np.float32)
                labels_per_image = np.zeros(anchors_per_image.shape[0], np.float32)
            else:
                matched_idxs = host(self.proposal_matcher(box_iou(gt_boxes, anchors_per_image)))
                matched = gt_boxes[np.clip(matched_idxs, 0, None)]
                labels_per_image = (matched_idxs >= 0).astype(np.float32)
                labels_per_image[matched_idxs == Matcher.BELOW_LOW_THRESHOLD] = 0.0
                labels_per_image[matched_idxs == Matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(labels_per_image)
            matched_gt_boxes.append(matched)
        return labels, matched_gt_boxes

    def _get_top_n_idx(self, objectness: np.ndarray, num_anchors_per_level) -> np.ndarray:
        """(N, k) indices of the top ``pre_nms_top_n`` scores of every level, level by level, descending.

        Equal scores come lowest index first (a stable sort); ``torch.topk`` leaves their order unspecified.
        """
        chosen, offset = [], 0
        for count in num_anchors_per_level:
            level = objectness[:, offset:offset + count]
            k = min(self.pre_nms_top_n(), count)
            chosen.append(np.argsort(-level, axis=1, kind="stable")[:, :k] + offset)
            offset += count
        return np.concatenate(chosen, axis=1)

    def filter_proposals(self, proposals, objectness, image_shapes, num_anchors_per_level):
        """Per image: top-n per level → sigmoid → clip → sides ≥ 1e-3 → score ≥ thresh → NMS per level → top-n.

        ``proposals`` (N, ΣA_l, 4) and ``objectness`` (N·ΣA_l, 1) are host arrays; returns per
        image ``(boxes (P_i, 4), scores (P_i,))`` in descending score order.
        """
        num_images = proposals.shape[0]
        objectness = objectness.reshape(num_images, -1)
        levels = np.concatenate([np.full(n, i, np.int64) for i, n in enumerate(num_anchors_per_level)])
        top_n_idx = self._get_top_n_idx(objectness, num_anchors_per_level)
        rows = np.arange(num_images)[:, None]
        objectness = objectness[rows, top_n_idx]
        levels = levels[top_n_idx]
        proposals = proposals[rows, top_n_idx]
        probabilities = F.sigmoid(Tensor(objectness)).numpy()
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, image_shape in zip(proposals, probabilities, levels, image_shapes):
            boxes = clip_boxes_to_image(boxes, image_shape)
            keep = remove_small_boxes(boxes, self.min_size)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = np.nonzero(scores >= self.score_thresh)[0]
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = batched_nms(boxes, scores, lvl, self.nms_thresh)[: self.post_nms_top_n()]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels, regression_targets):
        """``(objectness_loss, box_loss)`` over the anchors the sampler picks (see the class docstring)."""
        sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
        pos = np.nonzero(np.concatenate([host(p) for p in sampled_pos]))[0]
        neg = np.nonzero(np.concatenate([host(n) for n in sampled_neg]))[0]
        sampled = np.concatenate([pos, neg])
        labels = np.concatenate(labels).astype(objectness.dtype)
        targets = np.concatenate([host(r) for r in regression_targets]).astype(pred_bbox_deltas.dtype)
        box_loss = F.smooth_l1_loss(pred_bbox_deltas[on_device(pos, pred_bbox_deltas)],
                                    on_device(targets[pos], pred_bbox_deltas), reduction="sum", beta=1 / 9)
        picked = objectness.reshape(-1)[on_device(sampled, objectness)]
        objectness_loss = F.binary_cross_entropy_with_logits(picked, on_device(labels[sampled], objectness))
        return objectness_loss, box_loss / sampled.size

    def forward(self, images, features, targets=None):
        features = list(features.values())
        objectness, pred_bbox_deltas = self.head(features)
        anchors = [host(a) for a in self.anchor_generator(images, features)]
        num_anchors_per_level = [o.shape[1] * o.shape[2] * o.shape[3] for o in objectness]
        objectness, pred_bbox_deltas = concat_box_prediction_layers(objectness, pred_bbox_deltas)
        proposals = host(self.box_coder.decode(host(pred_bbox_deltas), anchors)).reshape(len(anchors), -1, 4)
        boxes, _ = self.filter_proposals(proposals, host(objectness), images.image_sizes, num_anchors_per_level)
        boxes = [on_device(b, features[0]) for b in boxes]

        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("RegionProposalNetwork: targets should not be None in training mode")
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(
                objectness, pred_bbox_deltas, labels, regression_targets)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, losses
