"""Box utilities with torchvision's names: NMS, IoU, areas, clipping, filtering.

Boxes are ``(x1, y1, x2, y2)`` rows (torchvision's ``"xyxy"``). Every function
takes Tensors or raw arrays (NumPy or CuPy) and answers in kind: Tensor in →
Tensor out (without gradient: these are selection and bookkeeping steps, not
part of a differentiable path), array in → array out. The arithmetic runs in
the boxes' dtype with ``xp`` operations, so it is the same on every device;
NMS itself is a kernel (``kernels.<device>.nms``).
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from minitorchseg.kernels.shared.nms import descending_order

from ._utils import unwrap, wrap_like

__all__ = ["nms", "batched_nms", "box_area", "box_iou", "clip_boxes_to_image", "remove_small_boxes"]


def _check_boxes(array, op: str, name: str = "boxes", exact_2d: bool = True) -> None:
    if exact_2d and (array.ndim != 2 or array.shape[1] != 4):
        raise ValueError(f"{op}: {name}: expected shape (N, 4) of (x1, y1, x2, y2) rows, got {tuple(array.shape)}")
    if not exact_2d and (array.ndim < 1 or array.shape[-1] != 4):
        raise ValueError(f"{op}: {name}: expected shape (..., 4) of (x1, y1, x2, y2) rows, got {tuple(array.shape)}")


def _check_threshold(iou_threshold, op: str) -> float:
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, Real):
        raise TypeError(f"{op}: iou_threshold: expected a number, got {iou_threshold!r}")
    return float(iou_threshold)


def _nms_arrays(boxes, scores, iou_threshold, op: str):
    """Check ``boxes (N, 4)`` and ``scores (N,)`` of one float dtype; return ``(boxes, scores, backend, tensor?)``."""
    b, backend, as_tensor = unwrap(boxes, op, "boxes")
    s, _, _ = unwrap(scores, op, "scores")
    _check_boxes(b, op)
    if b.dtype.kind != "f":
        raise TypeError(f"{op}: boxes: expected a floating-point dtype, got {b.dtype}")
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
        raise ValueError(
            f"{op}: scores: expected shape ({b.shape[0]},) (one score per box), got {tuple(s.shape)}"
        )
    if s.dtype != b.dtype:
        raise TypeError(f"{op}: scores: expected dtype {b.dtype} (the boxes'), got {s.dtype}")
    return b, backend.asarray(s), backend, as_tensor


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression, torchvision's ``nms``.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` boxes, float.
        scores (Tensor[N]): one score per box, same dtype.
        iou_threshold (float): drop a box whose IoU with a kept, higher-scoring
            box is ``> iou_threshold`` (strictly).

    Returns:
        int64 indices of the kept boxes, in decreasing score order (equal scores:
        lower index first). Zero-area boxes never suppress anything (their IoU is
        NaN). Semantics: ``kernels/cpu/nms.py``.
    """
    op = "nms"
    b, s, backend, as_tensor = _nms_arrays(boxes, scores, iou_threshold, op)
    threshold = _check_threshold(iou_threshold, op)
    keep = backend.kernels.nms(b, s, threshold)
    return wrap_like(keep, backend, as_tensor)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS inside each category only, torchvision's ``batched_nms`` (coordinate trick).

    Every box of category ``i`` is shifted by ``i · span`` (in the boxes' dtype),
    with ``span = max − min(min, 0) + 1`` over all coordinates, and one
    :func:`nms` runs on the shifted boxes. The shifted categories lie in disjoint
    intervals ``[min + i·span, max + i·span]``, so boxes of different categories
    never overlap and never suppress each other.

    Where we differ from torchvision: ``torchvision/ops/boxes.py``
    (``_batched_nms_coordinate_trick``) shifts by ``i · (max + 1)``, which is
    too small when coordinates are negative: two identical boxes
    ``(-20, -20, 0, 0)`` of categories 0 and 1 (scores 0.9, 0.8, threshold
    0.5) land on top of each other there and torchvision keeps only ``[0]``;
    this function keeps ``[0, 1]``. With every coordinate ``≥ 0`` the two
    shifts are the same number and the results identical.

    Args:
        boxes (Tensor[N, 4]), scores (Tensor[N]): as in :func:`nms`.
        idxs (Tensor[N]): integer category of each box.
        iou_threshold (float): as in :func:`nms`.

    Returns:
        int64 indices of the kept boxes in decreasing score order. torchvision
        switches to a per-category loop above 4000 coordinates on the CPU; that
        keeps the same boxes, ordered by a non-stable sort, so only the order of
        equal scores can differ from this function.

    On the CPU above ``PER_CATEGORY_MIN_COORDINATES`` (4000, torchvision's switch) the
    result is computed category by category (:func:`_batched_nms_per_category`), which is
    what torchvision does there too: greedy NMS costs about ``kept · N`` box pairs, so ``L``
    categories of ``N / L`` boxes cost about ``L`` times less. The IoUs are then computed on
    the unshifted coordinates (the shift can round float32 coordinates).
    """
    op = "batched_nms"
    b, s, backend, as_tensor = _nms_arrays(boxes, scores, iou_threshold, op)
    threshold = _check_threshold(iou_threshold, op)
    ids, _, _ = unwrap(idxs, op, "idxs")
    if ids.ndim != 1 or ids.shape[0] != b.shape[0]:
        raise ValueError(f"{op}: idxs: expected shape ({b.shape[0]},) (one category per box), got {tuple(ids.shape)}")
    if ids.dtype.kind not in "iub":
        raise TypeError(f"{op}: idxs: expected an integer dtype, got {ids.dtype}")
    xp = backend.xp
    if b.shape[0] == 0:
        return wrap_like(xp.empty(0, dtype=np.int64), backend, as_tensor)
    ids = backend.asarray(ids)
    if xp is np and b.size > PER_CATEGORY_MIN_COORDINATES:
        return wrap_like(_batched_nms_per_category(b, s, ids, threshold, backend.kernels.nms), backend, as_tensor)
    span = b.max() - xp.minimum(b.min(), b.dtype.type(0)) + b.dtype.type(1)
    offsets = ids.astype(b.dtype) * span
    shifted = b + offsets[:, None]
    keep = backend.kernels.nms(shifted, s, threshold)
    return wrap_like(keep, backend, as_tensor)


PER_CATEGORY_MIN_COORDINATES = 4000


def _batched_nms_per_category(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float,
                              nms_kernel) -> np.ndarray:
    """:func:`batched_nms` as one :func:`nms` per category, on host arrays (the coordinate trick's result).

    The shifted categories of the coordinate trick never suppress each other, so its kept set
    is the union of each category's own NMS, and its order (greedy over the stable descending
    sort of all scores) is the stable descending sort of the kept boxes' scores
    (``kernels.shared.nms.descending_order``: equal scores lower index first, NaN first).
    """
    kept = []
    for category in np.unique(idxs):
        members = np.flatnonzero(idxs == category)
        kept.append(members[nms_kernel(boxes[members], scores[members], iou_threshold)])
    kept = np.concatenate(kept)
    kept.sort()
    return kept[descending_order(scores[kept])]


def box_area(boxes):
    """Areas ``(x2 − x1)·(y2 − y1)`` of boxes ``[..., 4]`` → ``[...]`` (no +1)."""
    b, backend, as_tensor = unwrap(boxes, "box_area", "boxes")
    _check_boxes(b, "box_area", exact_2d=False)
    area = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return wrap_like(area, backend, as_tensor)


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union of ``boxes1 [..., N, 4]`` and ``boxes2 [..., M, 4]`` → ``[..., N, M]``.

    ``inter = max(0, min(x2) − max(x1)) · max(0, min(y2) − max(y1))``,
    ``iou = inter / (area1 + area2 − inter)``; two zero-area boxes give NaN (0/0),
    as in torchvision.
    """
    op = "box_iou"
    a, backend, as_tensor = unwrap(boxes1, op, "boxes1")
    b, _, _ = unwrap(boxes2, op, "boxes2")
    _check_boxes(a, op, "boxes1", exact_2d=False)
    _check_boxes(b, op, "boxes2", exact_2d=False)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"{op}: expected boxes of shape [..., N, 4] and [..., M, 4], got {a.shape} and {b.shape}")
    xp = backend.xp
    b = backend.asarray(b)
    area1 = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area2 = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = xp.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = xp.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = xp.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return wrap_like(iou, backend, as_tensor)


def clip_boxes_to_image(boxes, size):
    """Clamp ``x`` coordinates to ``[0, W]`` and ``y`` to ``[0, H]``; ``size = (H, W)``; shape ``[..., 4]`` kept."""
    op = "clip_boxes_to_image"
    b, backend, as_tensor = unwrap(boxes, op, "boxes")
    _check_boxes(b, op, exact_2d=False)
    try:
        height, width = size
    except (TypeError, ValueError):
        raise TypeError(f"{op}: size: expected (height, width), got {size!r}") from None
    xp = backend.xp
    out = xp.empty_like(b)
    out[..., 0::2] = xp.clip(b[..., 0::2], 0, width)
    out[..., 1::2] = xp.clip(b[..., 1::2], 0, height)
    return wrap_like(out, backend, as_tensor)


def remove_small_boxes(boxes, min_size):
    """int64 indices of the boxes ``[N, 4]`` whose width and height are both ``≥ min_size``."""
    op = "remove_small_boxes"
    b, backend, as_tensor = unwrap(boxes, op, "boxes")
    _check_boxes(b, op)
    if isinstance(min_size, bool) or not isinstance(min_size, Real):
        raise TypeError(f"{op}: min_size: expected a number, got {min_size!r}")
    xp = backend.xp
    ws = b[:, 2] - b[:, 0]
    hs = b[:, 3] - b[:, 1]
    keep = xp.nonzero((ws >= min_size) & (hs >= min_size))[0].astype(np.int64)
    return wrap_like(keep, backend, as_tensor)
