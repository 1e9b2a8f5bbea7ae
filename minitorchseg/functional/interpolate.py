"""interpolate (modes 'nearest' and 'bilinear'): the differentiable ops and the torch-named function.

Both ops are separable resamplings whose taps depend only on the output row and
column (``minitorchseg.kernels.shared.interpolate.bilinear_taps`` / ``nearest_taps``); their
backward passes scatter the upstream gradient back through the same taps and
weights (the adjoint of the forward gather). Input ``(N, C, H, W)``, float32 or
float64. Arguments are checked here, before any work.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import Function
from ..tensor import Tensor

__all__ = ["UpsampleBilinear2dFn", "UpsampleNearest2dFn", "interpolate"]


class UpsampleBilinear2dFn(Function):
    """Bilinear resize of x (N, C, H, W) to ``output_hw``; ``scales`` = (scale_h, scale_w), floats or None.

    out = (1−λy)((1−λx)a + λx b) + λy((1−λx)c + λx d) over the four neighbours
    a, b, c, d of each output's source point; backward scatters ``λ·grad`` to them.
    """

    @staticmethod
    def forward(ctx, x, output_hw, align_corners, scales):
        ctx.geometry = tuple(x.shape[2:]), align_corners, scales
        return ctx.kernels.upsample_bilinear2d_forward(x, output_hw, align_corners, scales)

    @staticmethod
    def backward(ctx, grad_out):
        input_hw, align_corners, scales = ctx.geometry
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.upsample_bilinear2d_backward(grad_out, input_hw, align_corners, scales)
        return grad_x, None, None, None


class UpsampleNearest2dFn(Function):
    """Nearest-neighbour resize of x (N, C, H, W) to ``output_hw`` (torch's mode 'nearest').

    out[n, c, oh, ow] = x[n, c, src_h[oh], src_w[ow]]; backward adds each output's
    gradient to its source element.
    """

    @staticmethod
    def forward(ctx, x, output_hw, scales):
        ctx.geometry = tuple(x.shape[2:]), scales
        return ctx.kernels.upsample_nearest2d_forward(x, output_hw, scales)

    @staticmethod
    def backward(ctx, grad_out):
        input_hw, scales = ctx.geometry
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.kernels.upsample_nearest2d_backward(grad_out, input_hw, scales)
        return grad_x, None, None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_MODES = ("nearest", "bilinear")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_positive_number(value) -> bool:
    return (
        isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value) and value > 0
    )


def _two(op: str, name: str, value, check, expected: str) -> tuple:
    """A scalar repeated for both spatial dims, or a sequence of exactly two; each passing ``check``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(
            f"{op}: {name}: expected {expected} or a sequence of 2 (one per spatial dimension of a 4-D input), "
            f"got {value!r}"
        )
    if not all(check(v) for v in items):
        raise ValueError(f"{op}: {name}: expected {expected} or a sequence of 2, got {value!r}")
    return items


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None) -> Tensor:
    """Resize (N, C, H, W) images as ``torch.nn.functional.interpolate`` (modes 'nearest', 'bilinear').

    Exactly one of ``size`` (int or (Ho, Wo)) and ``scale_factor`` (number or
    pair) is given. With ``scale_factor``, ``Ho = floor(H·scale_h)`` and the
    coordinates are mapped with ``1/scale_h``; with ``size`` (or
    ``recompute_scale_factor=True``, which turns the scale into a size) they are
    mapped with ``H/Ho``. So ``scale_factor=1.5`` and ``size=7`` on H = 5 give
    different results, as in torch. A dimension whose size does not change is
    copied unchanged.

    'bilinear' (``align_corners`` None means False): source point
    ``src = (Ho−1 > 0 ? (H−1)/(Ho−1) : 0)·o`` with align_corners, else
    ``max(r·(o + ½) − ½, 0)``; output = (1−λy)((1−λx)a + λx b) + λy((1−λx)c + λx d)
    with a, b, c, d the four neighbours (edges clamped) and λ the fractional
    parts. 'nearest': ``src = min(floor(o·r), H−1)`` in float32 (torch's
    OpenCV-like rule); ``align_corners`` must stay None.
    """
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input: expected a Tensor, got {type(input).__name__}")
    if input.dtype not in _FLOATS:
        raise TypeError(f"{op}: input: expected a float32 or float64 tensor, got dtype {input.dtype}")
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{op}: mode: expected one of {_MODES}, got {mode!r}")
    if input.ndim != 4:
        raise ValueError(
            f"{op}: input: expected a 4-D (N, C, H, W) tensor for mode {mode!r}, got shape {input.shape}"
        )
    if min(input.shape[1:]) < 1:
        raise ValueError(f"{op}: input: expected non-empty channel and spatial dimensions, got shape {input.shape}")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(
                f"{op}: align_corners: can only be set with mode='bilinear' (an interpolating mode), "
                f"got align_corners={align_corners!r} with mode='nearest'"
            )
    else:
        if align_corners is None:
            align_corners = False
        if not isinstance(align_corners, (bool, np.bool_)):
            raise TypeError(f"{op}: align_corners: expected a bool or None, got {align_corners!r}")
        align_corners = bool(align_corners)

    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: only one of size or scale_factor should be defined, got both")
    if size is None and scale_factor is None:
        raise ValueError(f"{op}: either size or scale_factor should be defined, got neither")
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size.")

    in_hw = input.shape[2:]
    if size is not None:
        out_hw = tuple(int(v) for v in _two(op, "size", size, _is_int, "a positive int"))
        scales = (None, None)
    else:
        factors = _two(op, "scale_factor", scale_factor, _is_positive_number, "a positive finite number")
        factors = tuple(float(v) for v in factors)
        out_hw = tuple(int(math.floor(n * f)) for n, f in zip(in_hw, factors))
        scales = (None, None) if recompute_scale_factor else factors
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: input and output sizes should be greater than 0, but got input (H: {in_hw[0]}, W: {in_hw[1]}) "
            f"output (H: {out_hw[0]}, W: {out_hw[1]})"
        )
    if mode == "bilinear":
        return UpsampleBilinear2dFn.apply(input, out_hw, align_corners, scales)
    return UpsampleNearest2dFn.apply(input, out_hw, scales)
