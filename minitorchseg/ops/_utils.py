"""Argument checks and box-format conversion shared by ``roi_align``, ``roi_pool`` and the box functions.

Everything here runs *before* a kernel is called: the Numba kernels do not
bounds-check, so every index they will read (the batch index of each RoI) and
every number that sizes a loop (box corners, output size) is checked first,
with ``xp`` operations so that the same checks run on NumPy and CuPy arrays.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from minitorchseg.kernels.geometry import pair

from ..backend import Backend, get_backend
from ..tensor import Tensor

__all__ = [
    "array_backend",
    "unwrap",
    "wrap_like",
    "convert_boxes_to_roi_format",
    "check_roi_input",
    "check_rois",
    "check_output_size",
    "check_spatial_scale",
    "check_int",
]


def array_backend(array) -> Backend:
    """The backend whose ``xp`` owns ``array`` (NumPy → cpu, CuPy → cuda)."""
    if isinstance(array, np.ndarray) or not hasattr(array, "__cuda_array_interface__"):
        return get_backend("cpu")
    return get_backend("cuda")


def unwrap(value, op: str, name: str):
    """``(array, backend, is_tensor)`` for a Tensor or an array argument; TypeError otherwise."""
    if isinstance(value, Tensor):
        return value.data, value.backend, True
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return value, array_backend(value), False
    raise TypeError(f"{op}: {name}: expected a Tensor or an array, got {type(value).__name__}")


def wrap_like(array, backend: Backend, as_tensor: bool):
    """``array`` as a Tensor (without gradient) on ``backend`` if ``as_tensor``, else unchanged."""
    return Tensor(array, device=backend.name) if as_tensor else array


def convert_boxes_to_roi_format(boxes, backend: Backend, op: str = "roi_align"):
    """A list of per-image boxes ``[Tensor[L_i, 4], ...]`` → one ``(ΣL_i, 5)`` array of RoIs.

    Row ``[i, x1, y1, x2, y2]`` for every box of image ``i`` (the list position is
    the batch index), in list order, as torchvision's ``convert_boxes_to_roi_format``.
    """
    xp = backend.xp
    parts = []
    for i, b in enumerate(boxes):
        array, _, _ = unwrap(b, op, f"boxes[{i}]")
        if array.ndim != 2 or array.shape[1] != 4:
            raise ValueError(
                f"{op}: boxes[{i}]: expected a Tensor[L, 4] of (x1, y1, x2, y2) rows, got shape {tuple(array.shape)}"
            )
        ids = xp.full((array.shape[0], 1), i, dtype=array.dtype)
        parts.append(xp.concatenate([ids, array], axis=1))
    return xp.concatenate(parts, axis=0)


def check_roi_input(input, op: str):
    """``input`` must be a float32/float64 Tensor ``(N, C, H, W)`` with ``H, W ≥ 1``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input: expected a Tensor, got {type(input).__name__}")
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: input: expected a float32 or float64 tensor, got dtype {input.dtype}")
    if input.ndim != 4:
        raise ValueError(f"{op}: input: expected a 4-D tensor (N, C, H, W), got shape {input.shape}")
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"{op}: input: expected a non-empty feature map (H, W ≥ 1), got shape {input.shape}")


def check_rois(input: Tensor, boxes, op: str):
    """Validate ``boxes`` against ``input`` and return the ``(K, 5)`` RoI array on input's device.

    ``boxes`` is a Tensor/array ``[K, 5]`` of ``(batch_index, x1, y1, x2, y2)`` rows
    or a list/tuple of per-image Tensors/arrays ``[L, 4]``. Checks, in order: the
    format and shape, the dtype (must equal the input's), finite coordinates,
    integral batch indices in ``[0, N)``, and ``x2 ≥ x1``, ``y2 ≥ y1``.
    """
    backend = input.backend
    xp = backend.xp
    n_images = input.shape[0]
    if isinstance(boxes, (list, tuple)):
        if len(boxes) > n_images:
            raise ValueError(
                f"{op}: boxes: got a list of {len(boxes)} per-image box tensors for a batch of "
                f"{n_images} images (the list position is the batch index)"
            )
        for i, b in enumerate(boxes):
            array, _, _ = unwrap(b, op, f"boxes[{i}]")
            if array.dtype != input.dtype:
                raise TypeError(f"{op}: boxes[{i}]: expected dtype {input.dtype} (the input's), got {array.dtype}")
        if len(boxes) == 0:
            rois = xp.zeros((0, 5), dtype=input.dtype)
        else:
            rois = backend.asarray(convert_boxes_to_roi_format(boxes, backend, op))
    else:
        rois, _, _ = unwrap(boxes, op, "boxes")
        if rois.ndim != 2 or rois.shape[1] != 5:
            raise ValueError(
                f"{op}: boxes: expected a Tensor[K, 5] of (batch_index, x1, y1, x2, y2) rows or a list of "
                f"Tensor[L, 4], got shape {tuple(rois.shape)}"
            )
        if rois.dtype != input.dtype:
            raise TypeError(f"{op}: boxes: expected dtype {input.dtype} (the input's), got {rois.dtype}")
        rois = backend.asarray(rois)
    if rois.shape[0] == 0:
        return rois
    if not bool(xp.isfinite(rois).all()):
        bad = int(xp.argmax(~xp.isfinite(rois).all(axis=1)))
        raise ValueError(f"{op}: boxes: row {bad} has a NaN or infinite value: {rois[bad].tolist()}")
    batch = rois[:, 0]
    not_integral = batch != xp.floor(batch)
    if bool(not_integral.any()):
        bad = int(xp.argmax(not_integral))
        raise ValueError(f"{op}: boxes: row {bad} has batch index {float(batch[bad])!r}, expected an integer")
    out_of_range = (batch < 0) | (batch >= n_images)
    if bool(out_of_range.any()):
        bad = int(xp.argmax(out_of_range))
        raise ValueError(
            f"{op}: boxes: row {bad} has batch index {int(batch[bad])}, out of range [0, {n_images}) "
            f"for input of shape {input.shape}; allowed 0..{n_images - 1} (inclusive)"
        )
    inverted = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
    if bool(inverted.any()):
        bad = int(xp.argmax(inverted))
        raise ValueError(
            f"{op}: boxes: row {bad} = {rois[bad].tolist()} has x2 < x1 or y2 < y1; "
            "expected (batch_index, x1, y1, x2, y2) with x1 ≤ x2 and y1 ≤ y2"
        )
    return xp.ascontiguousarray(rois)


def check_output_size(output_size, op: str) -> tuple[int, int]:
    """An int or a pair of ints, all ≥ 1 → ``(PH, PW)``."""
    try:
        size = pair(output_size, "output_size")
    except TypeError as exc:
        raise TypeError(f"{op}: {exc}") from None
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{op}: output_size: expected positive values, got {output_size!r}")
    return size


def check_spatial_scale(spatial_scale, op: str) -> float:
    """A finite positive real number."""
    if isinstance(spatial_scale, bool) or not isinstance(spatial_scale, Real):
        raise TypeError(f"{op}: spatial_scale: expected a positive number, got {spatial_scale!r}")
    if not (math.isfinite(float(spatial_scale)) and spatial_scale > 0):
        raise ValueError(f"{op}: spatial_scale: expected a finite positive number, got {spatial_scale!r}")
    return float(spatial_scale)


def check_int(value, op: str, name: str) -> int:
    """A Python or NumPy integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{op}: {name}: expected an int, got {value!r}")
    return int(value)
