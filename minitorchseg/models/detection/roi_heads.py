"""The second stage of Mask R-CNN: box and mask heads on the RPN's proposals (torchvision's ``roi_heads.py``).

::

    proposals per image (training: + the GT boxes, matched to the GT, then sampled)
      │
      box_roi_pool ──→ box_head ──→ box_predictor ──┬─ training: fastrcnn_loss (classes, boxes)
      (K, C, 7, 7)     (K, 1024)    (K, classes),   └─ eval: postprocess_detections → boxes, labels, scores
                                    (K, 4·classes)
      │
    positive proposals (training) or detections (eval)
      │
      mask_roi_pool ──→ mask_head ──→ mask_predictor ──┬─ training: maskrcnn_loss
      (K, C, 14, 14)    (K, 256,       (K, classes,    └─ eval: maskrcnn_inference
                         14, 14)        28, 28)

Differentiable quantities (pooled features, logits, box deltas, losses) are
:class:`~minitorchseg.Tensor` s; the integer bookkeeping (matching, sampling,
class selection, NMS, pasting geometry) runs on host NumPy arrays, which makes
the GPU path and the CPU path take the same decisions.
"""

from __future__ import annotations

import numpy as np

from ... import functional as F
from ...autograd import no_grad
from ...kernels.shared.interpolate import bilinear_taps_hw
from ...nn import Module
from ...ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes, roi_align
from ...tensor import Tensor
from ._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher

__all__ = [
    "RoIHeads", "fastrcnn_loss", "maskrcnn_loss", "maskrcnn_inference", "project_masks_on_boxes",
    "expand_boxes", "expand_masks", "paste_mask_in_image", "paste_masks_in_image", "resize_bilinear_host",
]


def host(value) -> np.ndarray:
    """A Tensor or array (NumPy or CuPy) as a NumPy array on the host, without copying host data."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "get") and not isinstance(value, np.ndarray):
        return value.get()
    return np.asarray(value)


def on_device(array, like: Tensor) -> Tensor:
    """A Tensor without gradient holding ``array`` on ``like``'s device."""
    return Tensor(array, device=like.device)


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels, regression_targets):
    """Classification and box-regression losses of the box head (torchvision's ``fastrcnn_loss``).

    Args:
        class_logits: (K, num_classes) for the K sampled proposals of all images.
        box_regression: (K, num_classes·4) class-specific deltas ``(dx, dy, dw, dh)``.
        labels: per image, int (K_i,) sampled labels (0 = background), ΣK_i = K.
        regression_targets: per image, (K_i, 4) encoded targets (meaningful where label > 0).

    Returns:
        ``(classification_loss, box_loss)``: ``cross_entropy(class_logits, labels)``
        (mean over K) and ``Σ_{k: label_k > 0} smooth_l1(box_regression[k, label_k], target_k;
        β = 1/9) / K`` (divided by all K, not by the positives).
    """
    labels = np.concatenate([host(x) for x in labels]).astype(np.int64)
    targets = np.concatenate([host(x) for x in regression_targets]).astype(box_regression.dtype)
    classification_loss = F.cross_entropy(class_logits, on_device(labels, class_logits))
    positive = np.nonzero(labels > 0)[0]
    deltas = box_regression.reshape(class_logits.shape[0], -1, 4)
    index = (on_device(positive, deltas), on_device(labels[positive], deltas))
    box_loss = F.smooth_l1_loss(deltas[index], on_device(targets[positive], deltas), reduction="sum", beta=1 / 9)
    return classification_loss, box_loss / labels.size


def maskrcnn_inference(x: Tensor, labels) -> list[Tensor]:
    """Mask probabilities of each detection's own class (torchvision's ``maskrcnn_inference``).

    Args:
        x: mask logits (K, num_classes, M, M) of the K detections of all images.
        labels: per image, int (K_i,) predicted classes, ΣK_i = K.

    Returns:
        per image, ``sigmoid(x)[k, labels_k][:, None]``: (K_i, 1, M, M) probabilities (no threshold).
    """
    counts = [len(host(label)) for label in labels]
    classes = np.concatenate([host(label) for label in labels]).astype(np.int64) if counts else np.zeros(0, np.int64)
    rows = np.arange(x.shape[0])
    probabilities = F.sigmoid(x)[on_device(rows, x), on_device(classes, x)][:, None]
    starts = np.cumsum([0] + counts)
    return [probabilities[int(a):int(b)] for a, b in zip(starts[:-1], starts[1:])]


def project_masks_on_boxes(gt_masks: Tensor, boxes, matched_idxs, M: int) -> Tensor:
    """Crop each proposal's ground-truth mask and resample it to M×M (the mask head's targets).

    ``roi_align(gt_masks[:, None], rows (matched_idxs[k], *boxes[k]), (M, M), spatial_scale=1,
    sampling_ratio=-1, aligned=False)[:, 0]``: bilinear samples of the binary mask, so the
    targets are soft at the mask's border (an exact box gives 0.625 at its edge).

    Args:
        gt_masks: (G, H, W) masks of one image (any dtype; cast to the boxes' float dtype).
        boxes: (K, 4) proposals in image coordinates (Tensor or array).
        matched_idxs: int (K,) index of each proposal's ground-truth mask in ``gt_masks``.
        M: output side (28 in Mask R-CNN).

    Returns:
        (K, M, M), differentiable with respect to ``gt_masks`` when it is a float Tensor.
    """
    boxes = host(boxes)
    rois = np.concatenate([host(matched_idxs).astype(boxes.dtype)[:, None], boxes], axis=1)
    masks = gt_masks.to(boxes.dtype)[:, None]
    return roi_align(masks, on_device(rois, masks), (M, M), 1.0)[:, 0]


def maskrcnn_loss(mask_logits: Tensor, proposals, gt_masks, gt_labels, mask_matched_idxs) -> Tensor:
    """Per-pixel binary cross-entropy of the mask of each positive proposal's class (torchvision's ``maskrcnn_loss``).

    Args:
        mask_logits: (K, num_classes, M, M) for the K positive proposals of all images.
        proposals: per image, (K_i, 4) positive proposals.
        gt_masks: per image, (G_i, H, W) ground-truth masks.
        gt_labels: per image, int (G_i,) ground-truth classes.
        mask_matched_idxs: per image, int (K_i,) index of each proposal's ground-truth object.

    Returns:
        ``mean_{k, i, j} BCE_with_logits(mask_logits[k, label_k, i, j], target_k[i, j])`` with targets
        from :func:`project_masks_on_boxes`; ``mask_logits.sum() · 0`` when K = 0 (so the graph, and
        zero gradients, still reach the mask head).
    """
    size = mask_logits.shape[-1]
    labels = [host(lab)[host(idx).astype(np.int64)] for lab, idx in zip(gt_labels, mask_matched_idxs)]
    labels = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
    if labels.size == 0:
        return mask_logits.sum() * 0
    targets = [project_masks_on_boxes(m, p, i, size) for m, p, i in zip(gt_masks, proposals, mask_matched_idxs)
               if len(host(i)) > 0]
    targets = F.cat(targets, 0) if len(targets) > 1 else targets[0]
    rows = np.arange(labels.size)
    picked = mask_logits[on_device(rows, mask_logits), on_device(labels, mask_logits)]
    return F.binary_cross_entropy_with_logits(picked, targets.to(picked.dtype))


def expand_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """Boxes (K, 4) scaled by ``scale`` about their centres, in their own dtype (torchvision's ``expand_boxes``)."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    w_half = w_half * scale
    h_half = h_half * scale
    return np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1).astype(boxes.dtype)


def expand_masks(mask: Tensor, padding: int) -> tuple[Tensor, float]:
    """``mask`` (K, 1, M, M) zero-padded by ``padding`` on every side, and the scale ``(M + 2·padding) / M``."""
    M = mask.shape[-1]
    return F.pad(mask, (padding,) * 4), float(M + 2 * padding) / M


def resize_bilinear_host(plane: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``F.interpolate(plane[None, None], size=(out_h, out_w), mode="bilinear", align_corners=False)[0, 0]`` in NumPy.

    The same taps (``kernels.shared.interpolate.bilinear_taps``) and the same arithmetic in the
    same order as the CPU kernel (``kernels/cpu/interpolate.py``), so the result is bit for bit
    the same::

        rows[h, ow] = wx0[ow]·plane[h, x0[ow]] + wx1[ow]·plane[h, x1[ow]]
        out[oh, ow] = wy0[oh]·rows[y0[oh], ow] + wy1[oh]·rows[y1[oh], ow]

    Pasting resizes each small mask on its own; here that costs a few vectorised NumPy
    operations instead of a parallel kernel launch per mask.
    """
    y0, y1, wy0, wy1, x0, x1, wx0, wx1 = bilinear_taps_hw(plane.shape, (out_h, out_w), False, (None, None),
                                                          plane.dtype)
    rows = wx0 * plane[:, x0] + wx1 * plane[:, x1]
    return wy0[:, None] * rows[y0] + wy1[:, None] * rows[y1]


def paste_mask_in_image(mask: Tensor, box, im_h: int, im_w: int) -> np.ndarray:
    """One (M, M) mask resized onto its integer box ``(x1, y1, x2, y2)``, inside an (im_h, im_w) zero image.

    The box covers pixels ``x1..x2`` and ``y1..y2`` inclusive: the mask is resized with
    bilinear interpolation (``align_corners=False``) to ``h = max(y2 − y1 + 1, 1)`` by
    ``w = max(x2 − x1 + 1, 1)`` and the part inside the image is copied to
    ``[max(y1, 0) : min(y2 + 1, im_h), max(x1, 0) : min(x2 + 1, im_w)]``.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    w = max(x2 - x1 + 1, 1)
    h = max(y2 - y1 + 1, 1)
    if mask.device == "cpu":
        resized = resize_bilinear_host(mask.numpy().reshape(mask.shape[-2:]), h, w)
    else:
        resized = F.interpolate(mask.reshape(1, 1, *mask.shape[-2:]), size=(h, w), mode="bilinear",
                                align_corners=False).numpy()[0, 0]
    image = np.zeros((im_h, im_w), dtype=resized.dtype)
    x_0, x_1 = max(x1, 0), min(x2 + 1, im_w)
    y_0, y_1 = max(y1, 0), min(y2 + 1, im_h)
    image[y_0:y_1, x_0:x_1] = resized[(y_0 - y1):(y_1 - y1), (x_0 - x1):(x_1 - x1)]
    return image


def paste_masks_in_image(masks: Tensor, boxes, img_shape, padding: int = 1) -> Tensor:
    """Paste M×M mask probabilities back into the image (torchvision's ``paste_masks_in_image``).

    Each mask is padded by ``padding`` pixels (M → M + 2·padding) and its box expanded about
    the centre by the same factor ``(M + 2·padding) / M``, so that the mask's border
    interpolates towards 0; the expanded box is truncated to int64 (towards zero) and
    :func:`paste_mask_in_image` does the rest.

    Args:
        masks: (K, 1, M, M) probabilities.
        boxes: (K, 4) boxes ``(x1, y1, x2, y2)`` in the coordinates of the image.
        img_shape: ``(H, W)`` of the image.

    Returns:
        (K, 1, H, W) Tensor of the masks' dtype, on their device, without gradient.
    """
    im_h, im_w = (int(v) for v in img_shape)
    with no_grad():
        padded, scale = expand_masks(masks, padding)
        boxes = expand_boxes(host(boxes), scale).astype(np.int64)
        out = np.zeros((masks.shape[0], 1, im_h, im_w), dtype=masks.dtype)
        for k in range(masks.shape[0]):
            out[k, 0] = paste_mask_in_image(padded[k, 0], boxes[k], im_h, im_w)
    return on_device(out, masks)


class RoIHeads(Module):
    """Box head, box predictor and (optionally) the mask branch, with torchvision's constructor and state-dict keys.

    Args:
        box_roi_pool: ``MultiScaleRoIAlign`` (features, proposals, image_shapes) → (K, C, 7, 7).
        box_head: e.g. ``TwoMLPHead``; box_predictor: e.g. ``FastRCNNPredictor`` → (class_logits, box_regression).
        fg_iou_thresh, bg_iou_thresh: a proposal with IoU ≥ fg is matched to its best ground-truth box,
            below bg it is background (label 0), in between ignored (torchvision: 0.5, 0.5).
        batch_size_per_image, positive_fraction: proposals sampled per image, at most this fraction positive.
        bbox_reg_weights: ``BoxCoder`` weights, ``None`` → (10, 10, 5, 5).
        score_thresh: detections need softmax score ``> score_thresh`` (strict);
        nms_thresh: per-class NMS IoU threshold; detections_per_img: at most this many per image.
        mask_roi_pool, mask_head, mask_predictor: the mask branch (all three, or none).

    ``forward(features, proposals, image_shapes, targets=None)`` returns ``(result, losses)``:
    training → ``([], {"loss_classifier", "loss_box_reg"[, "loss_mask"]})``; eval → per image
    ``{"boxes", "labels", "scores"[, "masks" (K, 1, 28, 28) probabilities]}`` and ``{}``.
    """

    def __init__(self, box_roi_pool, box_head, box_predictor, fg_iou_thresh, bg_iou_thresh, batch_size_per_image,
                 positive_fraction, bbox_reg_weights, score_thresh, nms_thresh, detections_per_img,
                 mask_roi_pool=None, mask_head=None, mask_predictor=None):
        super().__init__()
        self.box_similarity = box_iou
        self.proposal_matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.fg_bg_sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0) if bbox_reg_weights is None else bbox_reg_weights)
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.mask_roi_pool = mask_roi_pool
        self.mask_head = mask_head
        self.mask_predictor = mask_predictor

    def has_mask(self) -> bool:
        return self.mask_roi_pool is not None and self.mask_head is not None and self.mask_predictor is not None

    # ---------------------------------------------------------------- training: which proposals teach what
    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        """Per image: (matched gt index clamped to ≥ 0, label: gt class, 0 background, −1 ignored)."""
        matched_idxs, labels = [], []
        for boxes, gt, gt_lab in zip(proposals, gt_boxes, gt_labels):
            if gt.shape[0] == 0:
                matched = np.zeros(boxes.shape[0], np.int64)
                lab = np.zeros(boxes.shape[0], np.int64)
            else:
                raw = host(self.proposal_matcher(box_iou(gt, boxes))).astype(np.int64)
                matched = np.clip(raw, 0, None)
                lab = gt_lab[matched].astype(np.int64)
                lab[raw == Matcher.BELOW_LOW_THRESHOLD] = 0
                lab[raw == Matcher.BETWEEN_THRESHOLDS] = -1
            matched_idxs.append(matched)
            labels.append(lab)
        return matched_idxs, labels

    def subsample(self, labels):
        """Per image, the sorted indices of the proposals the sampler chose (positives and negatives)."""
        positive, negative = self.fg_bg_sampler(labels)
        return [np.nonzero(host(p).astype(bool) | host(n).astype(bool))[0] for p, n in zip(positive, negative)]

    def add_gt_proposals(self, proposals, gt_boxes):
        """Each image's ground-truth boxes appended to its proposals (so every object has a perfect proposal)."""
        return [np.concatenate([p, g.astype(p.dtype)]) for p, g in zip(proposals, gt_boxes)]

    def check_targets(self, targets) -> None:
        if targets is None:
            raise ValueError("RoIHeads: targets should not be None in training mode")
        for key in ("boxes", "labels") + (("masks",) if self.has_mask() else ()):
            for i, t in enumerate(targets):
                if key not in t:
                    raise ValueError(f"RoIHeads: targets[{i}] has no {key!r} key (keys: {sorted(t)})")

    def select_training_samples(self, proposals, targets):
        """Add GT boxes, match, sample; return (proposals, matched_idxs, labels, regression_targets) per image."""
        self.check_targets(targets)
        dtype = proposals[0].dtype
        gt_boxes = [host(t["boxes"]).astype(dtype) for t in targets]
        gt_labels = [host(t["labels"]) for t in targets]
        proposals = self.add_gt_proposals(proposals, gt_boxes)
        matched_idxs, labels = self.assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        sampled = self.subsample(labels)
        matched_gt_boxes = []
        for i, keep in enumerate(sampled):
            proposals[i], labels[i], matched_idxs[i] = proposals[i][keep], labels[i][keep], matched_idxs[i][keep]
            gt = gt_boxes[i] if gt_boxes[i].shape[0] else np.zeros((1, 4), dtype)
            matched_gt_boxes.append(gt[matched_idxs[i]])
        regression_targets = [host(r) for r in self.box_coder.encode(matched_gt_boxes, proposals)]
        return proposals, matched_idxs, labels, regression_targets

    # ---------------------------------------------------------------- eval: from scores to detections
    def postprocess_detections(self, class_logits: Tensor, box_regression: Tensor, proposals, image_shapes):
        """Per image: boxes (D, 4), scores (D,), labels (D,) after decode, clip, threshold, per-class NMS, top-D.

        Every proposal gives one candidate per foreground class (its class-specific box, its
        softmax score); candidates with score ``> score_thresh`` and sides ``≥ 0.01`` enter
        ``batched_nms(…, labels, nms_thresh)``, whose first ``detections_per_img`` are kept
        (descending score). Host NumPy arrays.
        """
        num_classes = class_logits.shape[-1]
        counts = [p.shape[0] for p in proposals]
        pred_boxes = host(self.box_coder.decode(host(box_regression), proposals)).reshape(sum(counts), -1, 4)
        pred_scores = F.softmax(class_logits.detach(), -1).numpy()
        all_boxes, all_scores, all_labels = [], [], []
        start = 0
        for count, image_shape in zip(counts, image_shapes):
            boxes = clip_boxes_to_image(pred_boxes[start:start + count], image_shape)
            scores = pred_scores[start:start + count]
            start += count
            labels = np.broadcast_to(np.arange(num_classes), scores.shape)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
            keep = np.nonzero(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, min_size=1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            all_boxes.append(boxes[keep])
            all_scores.append(scores[keep])
            all_labels.append(labels[keep].astype(np.int64))
        return all_boxes, all_scores, all_labels

    # ---------------------------------------------------------------- the figure
    def forward(self, features, proposals, image_shapes, targets=None):
        """See the class docstring; ``proposals`` per image (L_i, 4) (Tensors or arrays)."""
        if targets is not None:
            for i, t in enumerate(targets):
                if host(t["boxes"]).dtype.kind != "f":
                    raise TypeError(f"RoIHeads: targets[{i}]['boxes'] must be floating point, got {t['boxes'].dtype}")
                if host(t["labels"]).dtype != np.int64:
                    raise TypeError(f"RoIHeads: targets[{i}]['labels'] must be int64, got {t['labels'].dtype}")
        like = next(iter(features.values()))
        proposals = [host(p) for p in proposals]
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)

        box_features = self.box_roi_pool(features, [on_device(p, like) for p in proposals], image_shapes)
        box_features = self.box_head(box_features)
        class_logits, box_regression = self.box_predictor(box_features)

        result, losses = [], {}
        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        else:
            boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
            result = [{"boxes": on_device(b, like), "labels": on_device(lab, like), "scores": on_device(s, like)}
                      for b, s, lab in zip(boxes, scores, labels)]

        if self.has_mask():
            if self.training:
                positive = [np.nonzero(lab > 0)[0] for lab in labels]
                mask_proposals = [p[pos] for p, pos in zip(proposals, positive)]
                pos_matched_idxs = [m[pos] for m, pos in zip(matched_idxs, positive)]
            else:
                mask_proposals = boxes
            mask_features = self.mask_roi_pool(features, [on_device(p, like) for p in mask_proposals], image_shapes)
            mask_logits = self.mask_predictor(self.mask_head(mask_features))
            if self.training:
                gt_masks = [t["masks"] for t in targets]
                gt_labels = [t["labels"] for t in targets]
                losses["loss_mask"] = maskrcnn_loss(mask_logits, mask_proposals, gt_masks, gt_labels, pos_matched_idxs)
            else:
                for probabilities, r in zip(maskrcnn_inference(mask_logits, labels), result):
                    r["masks"] = probabilities
        return result, losses
