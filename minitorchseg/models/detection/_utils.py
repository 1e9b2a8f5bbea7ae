"""Box coding, matching and sampling for the R-CNN family (torchvision's ``models/detection/_utils.py``).

These are bookkeeping steps, not part of a differentiable path: each takes
Tensors or raw arrays (NumPy or CuPy) and answers in kind (Tensor in → Tensor
out without gradient, array in → array out), computing with the backend's
``xp`` in the input's dtype. In torchvision too, the losses ``encode`` matched
ground-truth boxes as regression targets and ``decode`` only detached
predictions (proposals, final detections), so no gradient flows through them.

* :class:`BoxCoder`: boxes ↔ ``(dx, dy, dw, dh)`` offsets relative to reference boxes.
* :class:`Matcher`: each prediction → the index of its best ground-truth box, or
  ``BELOW_LOW_THRESHOLD`` (−1) / ``BETWEEN_THRESHOLDS`` (−2).
* :class:`BalancedPositiveNegativeSampler`: a fixed-size, fixed-fraction random
  subset of positives and negatives, drawn from an injectable generator.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from ...ops._utils import array_backend, unwrap, wrap_like
from ...random import default_generator

__all__ = ["BoxCoder", "Matcher", "BalancedPositiveNegativeSampler", "encode_boxes"]


def _boxes(value, op: str, name: str):
    array, backend, as_tensor = unwrap(value, op, name)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{op}: {name}: expected shape (N, 4) of (x1, y1, x2, y2) rows, got {tuple(array.shape)}")
    if array.dtype.kind != "f":
        raise TypeError(f"{op}: {name}: expected a floating-point dtype, got {array.dtype}")
    return array, backend, as_tensor


def encode_boxes(reference_boxes, proposals, weights):
    """Regression targets of ``reference_boxes`` (N, 4) relative to ``proposals`` (N, 4) → (N, 4).

    With widths ``w = x2 − x1`` (no +1), centres ``cx = x1 + ½w`` (same for y, h),
    ``p`` the proposal and ``g`` the reference (ground-truth) box, and
    ``weights = (wx, wy, ww, wh)``::

        dx = wx·(g_cx − p_cx)/p_w     dy = wy·(g_cy − p_cy)/p_h
        dw = ww·log(g_w / p_w)        dh = wh·log(g_h / p_h)

    Arrays of one backend and dtype; computed in that dtype, torchvision's operation order.
    """
    xp = array_backend(proposals).xp
    wx, wy, ww, wh = (proposals.dtype.type(w) for w in weights)
    ex_w = proposals[:, 2:3] - proposals[:, 0:1]
    ex_h = proposals[:, 3:4] - proposals[:, 1:2]
    ex_cx = proposals[:, 0:1] + 0.5 * ex_w
    ex_cy = proposals[:, 1:2] + 0.5 * ex_h
    gt_w = reference_boxes[:, 2:3] - reference_boxes[:, 0:1]
    gt_h = reference_boxes[:, 3:4] - reference_boxes[:, 1:2]
    gt_cx = reference_boxes[:, 0:1] + 0.5 * gt_w
    gt_cy = reference_boxes[:, 1:2] + 0.5 * gt_h
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = wx * (gt_cx - ex_cx) / ex_w
        dy = wy * (gt_cy - ex_cy) / ex_h
        dw = ww * xp.log(gt_w / ex_w)
        dh = wh * xp.log(gt_h / ex_h)
    return xp.concatenate((dx, dy, dw, dh), axis=1)


class BoxCoder:
    """Encode boxes as offsets from reference boxes and decode them back (Faster R-CNN's parametrisation).

    Args:
        weights ((wx, wy, ww, wh)): multipliers of the four offsets; torchvision uses
            (1, 1, 1, 1) in the RPN and (10, 10, 5, 5) in the RoI heads.
        bbox_xform_clip (float): upper clamp of ``dw``, ``dh`` before ``exp`` in
            :meth:`decode_single` (default ``log(1000/16)`` ≈ 4.135: a box grows at most
            62.5-fold); there is no lower clamp.

    ``encode_single(reference_boxes, proposals)`` is :func:`encode_boxes`;
    ``decode_single(rel_codes, boxes)`` inverts it::

        dx, dy, dw, dh = rel_codes[:, 0::4]/wx, [:, 1::4]/wy, [:, 2::4]/ww, [:, 3::4]/wh
        dw, dh = min(dw, clip), min(dh, clip)
        cx = dx·w + box_cx,  cy = dy·h + box_cy,  pw = exp(dw)·w,  ph = exp(dh)·h
        box = (cx − ½pw, cy − ½ph, cx + ½pw, cy + ½ph)

    ``rel_codes`` may hold several boxes per reference box (``(N, 4·K)``: one per
    class in the RoI heads); the output then is ``(N, 4·K)`` with the same layout.
    """

    def __init__(self, weights, bbox_xform_clip: float = math.log(1000.0 / 16)) -> None:
        weights = tuple(weights)
        if len(weights) != 4 or not all(isinstance(w, Real) and not isinstance(w, bool) and w > 0 for w in weights):
            raise ValueError(f"BoxCoder: weights: expected 4 positive numbers (wx, wy, ww, wh), got {weights!r}")
        if isinstance(bbox_xform_clip, bool) or not isinstance(bbox_xform_clip, Real):
            raise TypeError(f"BoxCoder: bbox_xform_clip: expected a number, got {bbox_xform_clip!r}")
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes, proposals) -> list:
        """Per-image lists of (N_i, 4) boxes → a list of (N_i, 4) targets (one concatenated computation)."""
        op = "BoxCoder.encode"
        if not isinstance(reference_boxes, (list, tuple)) or not isinstance(proposals, (list, tuple)):
            raise TypeError(f"{op}: expected two lists of per-image boxes, got {type(reference_boxes).__name__} "
                            f"and {type(proposals).__name__}")
        if len(reference_boxes) != len(proposals):
            raise ValueError(f"{op}: got {len(reference_boxes)} reference lists and {len(proposals)} proposal lists")
        refs = [_boxes(b, op, f"reference_boxes[{i}]") for i, b in enumerate(reference_boxes)]
        props = [_boxes(b, op, f"proposals[{i}]") for i, b in enumerate(proposals)]
        if not refs:
            return []
        backend, as_tensor = refs[0][1], refs[0][2]
        xp = backend.xp
        counts = [r[0].shape[0] for r in refs]
        targets = self.encode_single(xp.concatenate([r[0] for r in refs]), xp.concatenate([p[0] for p in props]))
        parts = xp.split(targets, np.cumsum(counts)[:-1], axis=0)
        return [wrap_like(p, backend, as_tensor) for p in parts]

    def encode_single(self, reference_boxes, proposals):
        """Targets (N, 4) of ``reference_boxes`` (N, 4) relative to ``proposals`` (N, 4), in the reference dtype."""
        op = "BoxCoder.encode_single"
        ref, backend, as_tensor = _boxes(reference_boxes, op, "reference_boxes")
        prop, _, _ = _boxes(proposals, op, "proposals")
        if prop.shape[0] != ref.shape[0]:
            raise ValueError(f"{op}: expected as many proposals as reference boxes, got {prop.shape[0]} and "
                             f"{ref.shape[0]}")
        prop = backend.asarray(prop).astype(ref.dtype, copy=False)
        return wrap_like(encode_boxes(ref, prop, self.weights), backend, as_tensor)

    def decode(self, rel_codes, boxes):
        """``rel_codes`` (ΣN_i, 4·K) against the per-image list ``boxes`` → (ΣN_i, K, 4) boxes."""
        op = "BoxCoder.decode"
        if not isinstance(boxes, (list, tuple)):
            raise TypeError(f"{op}: boxes: expected a list or tuple of per-image (N_i, 4) boxes, "
                            f"got {type(boxes).__name__}")
        codes, backend, as_tensor = unwrap(rel_codes, op, "rel_codes")
        arrays = [_boxes(b, op, f"boxes[{i}]")[0] for i, b in enumerate(boxes)]
        total = sum(a.shape[0] for a in arrays)
        concat = backend.xp.concatenate([backend.asarray(a) for a in arrays]) if arrays else backend.xp.zeros((0, 4))
        if total > 0:
            codes = codes.reshape(total, -1)
        pred = self._decode(codes, concat, op)
        if total > 0:
            pred = pred.reshape(total, -1, 4)
        return wrap_like(pred, backend, as_tensor)

    def decode_single(self, rel_codes, boxes):
        """Boxes (N, 4·K) from offsets ``rel_codes`` (N, 4·K) relative to ``boxes`` (N, 4); see the class docstring."""
        op = "BoxCoder.decode_single"
        codes, backend, as_tensor = unwrap(rel_codes, op, "rel_codes")
        ref, _, _ = _boxes(boxes, op, "boxes")
        return wrap_like(self._decode(codes, backend.asarray(ref), op), backend, as_tensor)

    def _decode(self, codes, ref, op: str):
        if codes.ndim != 2 or codes.shape[1] % 4 or codes.shape[0] != ref.shape[0]:
            raise ValueError(f"{op}: rel_codes: expected shape ({ref.shape[0]}, 4·K), got {tuple(codes.shape)}")
        if codes.dtype.kind != "f":
            raise TypeError(f"{op}: rel_codes: expected a floating-point dtype, got {codes.dtype}")
        xp = array_backend(codes).xp
        ref = ref.astype(codes.dtype, copy=False)
        widths = ref[:, 2] - ref[:, 0]
        heights = ref[:, 3] - ref[:, 1]
        ctr_x = ref[:, 0] + 0.5 * widths
        ctr_y = ref[:, 1] + 0.5 * heights
        wx, wy, ww, wh = (codes.dtype.type(w) for w in self.weights)
        clip = codes.dtype.type(self.bbox_xform_clip)
        dx = codes[:, 0::4] / wx
        dy = codes[:, 1::4] / wy
        dw = xp.minimum(codes[:, 2::4] / ww, clip)
        dh = xp.minimum(codes[:, 3::4] / wh, clip)
        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = codes.dtype.type(0.5) * (xp.exp(dw) * widths[:, None])
        half_h = codes.dtype.type(0.5) * (xp.exp(dh) * heights[:, None])
        out = xp.stack((pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h), axis=2)
        return out.reshape(codes.shape[0], -1)


class Matcher:
    """Assign every prediction the ground-truth box it overlaps most, torchvision's ``Matcher``.

    ``matcher(match_quality_matrix)`` with an (M, N) matrix of quality values
    (IoU of M ground-truth boxes × N predictions) returns int64 (N,)::

        matches[n] = argmax_m quality[m, n]              (the first m on ties)
        matches[n] = BELOW_LOW_THRESHOLD (−1)  if max_m quality[m, n] <  low_threshold
        matches[n] = BETWEEN_THRESHOLDS  (−2)  if low_threshold ≤ max < high_threshold

    With ``allow_low_quality_matches`` every prediction that attains some ground
    truth's highest quality (ties included) gets its argmax back even if it fell
    below a threshold, so every ground-truth box keeps at least one match. The
    RPN uses ``Matcher(0.7, 0.3, True)``, the RoI heads ``Matcher(0.5, 0.5, False)``.

    Raises ValueError for an empty matrix (no ground truth or no predictions in
    training), as torchvision.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False) -> None:
        for name, value in (("high_threshold", high_threshold), ("low_threshold", low_threshold)):
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"Matcher: {name}: expected a number, got {value!r}")
        if low_threshold > high_threshold:
            raise ValueError(f"Matcher: low_threshold ({low_threshold}) should be <= high_threshold ({high_threshold})")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __call__(self, match_quality_matrix):
        quality, backend, as_tensor = unwrap(match_quality_matrix, "Matcher", "match_quality_matrix")
        if quality.ndim != 2:
            raise ValueError(f"Matcher: match_quality_matrix: expected shape (M, N), got {tuple(quality.shape)}")
        if quality.size == 0:
            if quality.shape[0] == 0:
                raise ValueError("No ground-truth boxes available for one of the images during training")
            raise ValueError("No proposal boxes available for one of the images during training")
        xp = backend.xp
        matches = xp.argmax(quality, axis=0).astype(np.int64)
        matched_vals = quality[matches, xp.arange(quality.shape[1])]
        all_matches = matches.copy()
        below = matched_vals < self.low_threshold
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            highest = quality.max(axis=1)
            predictions = xp.nonzero(quality == highest[:, None])[1]
            matches[predictions] = all_matches[predictions]
        return wrap_like(matches, backend, as_tensor)


class BalancedPositiveNegativeSampler:
    """Per image, a random subset of positives and negatives with a fixed size and positive fraction.

    Args:
        batch_size_per_image (int): elements chosen per image (RPN 256, RoI heads 512).
        positive_fraction (float): largest share of positives (RPN 0.5, RoI heads 0.25).
        generator: where the random choices come from: None (the library's global
            generator, :func:`minitorchseg.manual_seed`), a ``numpy.random.Generator``
            (its ``permutation(n)``), or a callable ``n → permutation of range(n)``
            (tests pass one that replays torch's ``randperm``).

    ``sampler(matched_idxs)`` takes a list of per-image int arrays (−1 ignore, 0
    negative, ≥ 1 positive) and returns ``(pos_masks, neg_masks)``, two lists of
    uint8 arrays of the same shapes. For each image::

        positive, negative = where(m ≥ 1), where(m == 0)            (increasing order)
        num_pos = min(#positive, int(batch_size_per_image · positive_fraction))
        num_neg = min(#negative, batch_size_per_image − num_pos)
        chosen  = positive[perm(#positive)[:num_pos]], negative[perm(#negative)[:num_neg]]

    with the two permutations drawn in that order (positives, then negatives),
    as torchvision draws its two ``torch.randperm``.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, generator=None) -> None:
        if isinstance(batch_size_per_image, bool) or not isinstance(batch_size_per_image, (int, np.integer)) \
                or batch_size_per_image < 0:
            raise ValueError(f"BalancedPositiveNegativeSampler: batch_size_per_image: expected an int >= 0, "
                             f"got {batch_size_per_image!r}")
        if isinstance(positive_fraction, bool) or not isinstance(positive_fraction, Real) \
                or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"BalancedPositiveNegativeSampler: positive_fraction: expected a number in [0, 1], "
                             f"got {positive_fraction!r}")
        if generator is not None and not (isinstance(generator, np.random.Generator) or callable(generator)):
            raise TypeError(f"BalancedPositiveNegativeSampler: generator: expected None, a numpy.random.Generator "
                            f"or a callable n -> permutation, got {type(generator).__name__}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = positive_fraction
        self.generator = generator

    def _permutation(self, n: int) -> np.ndarray:
        generator = self.generator if self.generator is not None else default_generator()
        perm = generator.permutation(n) if isinstance(generator, np.random.Generator) else generator(n)
        perm = np.asarray(perm.get() if hasattr(perm, "get") else perm, dtype=np.int64)
        if perm.shape != (n,):
            raise ValueError(f"BalancedPositiveNegativeSampler: generator returned shape {perm.shape} for n={n}")
        return perm

    def __call__(self, matched_idxs) -> tuple[list, list]:
        op = "BalancedPositiveNegativeSampler"
        if not isinstance(matched_idxs, (list, tuple)):
            raise TypeError(
                f"{op}: matched_idxs: expected a list of per-image arrays, got {type(matched_idxs).__name__}"
            )
        pos_masks, neg_masks = [], []
        for i, value in enumerate(matched_idxs):
            m, backend, as_tensor = unwrap(value, op, f"matched_idxs[{i}]")
            xp = backend.xp
            positive = xp.nonzero(m >= 1)[0]
            negative = xp.nonzero(m == 0)[0]
            num_pos = min(int(positive.shape[0]), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(int(negative.shape[0]), self.batch_size_per_image - num_pos)
            perm_pos = backend.asarray(self._permutation(int(positive.shape[0]))[:num_pos])
            perm_neg = backend.asarray(self._permutation(int(negative.shape[0]))[:num_neg])
            pos_mask = xp.zeros(m.shape, dtype=np.uint8)
            neg_mask = xp.zeros(m.shape, dtype=np.uint8)
            pos_mask[positive[perm_pos]] = 1
            neg_mask[negative[perm_neg]] = 1
            pos_masks.append(wrap_like(pos_mask, backend, as_tensor))
            neg_masks.append(wrap_like(neg_mask, backend, as_tensor))
        return pos_masks, neg_masks
