"""Shared cases for the pooling / unpooling / interpolation tests: geometries, inputs, torch references."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

from minitorchseg.kernels.geometry import pool_output_size
from tests.strategies import strided

__all__ = [
    "PoolGeometry",
    "pool_geometries",
    "pool_input",
    "strided",
    "torch_max_pool2d",
    "SCALE_FACTORS",
]

TF = torch.nn.functional

# docs/semantics.md#interpolate: scale factors to draw from (integer, fractional, < 1, = 1).
SCALE_FACTORS = [0.5, 0.7, 1.0, 1 / 3, 1.3, 1.5, 2.0, 2.5, 3.0, 4.0]


@dataclass(frozen=True)
class PoolGeometry:
    n: int
    c: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool

    @property
    def out_hw(self) -> tuple[int, int]:
        return tuple(
            pool_output_size(size, k, s, p, d, self.ceil_mode)
            for size, k, s, p, d in zip((self.h, self.w), self.kernel, self.stride, self.padding, self.dilation)
        )

    @property
    def args(self):
        return self.kernel, self.stride, self.padding, self.dilation, self.ceil_mode


@st.composite
def pool_geometries(draw, max_size: int = 12, max_dilation: int = 3, two_by_two: float = 0.3):
    """docs/semantics.md#max_pool2d: k, s ∈ 1..4, d ∈ 1..3, p ∈ 0..k//2 per dim, ceil_mode, H, W ∈ 1..max_size.

    With probability ``two_by_two`` the geometry is kernel 2, stride 2, dilation 1
    (the unrolled fast path) with padding 0 or 1. Geometries whose output would be
    empty are rejected (``assume``).
    """
    if draw(st.floats(0, 1)) < two_by_two:
        kernel, stride, dilation = (2, 2), (2, 2), (1, 1)
    else:
        kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        dilation = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    g = PoolGeometry(
        n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)),
        h=draw(st.integers(1, max_size)), w=draw(st.integers(1, max_size)),
        kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=draw(st.booleans()),
    )
    assume(min(g.out_hw) >= 1)
    return g


def pool_input(seed: int, shape, dtype, kind: str) -> np.ndarray:
    """Pooling input: 'normal' values, integer-valued 'ties', or ties with NaN/±inf 'special' values."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-3, 4, shape).astype(dtype)
    if kind == "special":
        u = rng.random(shape)
        x[u < 0.08] = np.nan
        x[(u >= 0.08) & (u < 0.16)] = np.inf
        x[(u >= 0.16) & (u < 0.3)] = -np.inf
    return x




def torch_max_pool2d(x: np.ndarray, g: PoolGeometry, grad_out: np.ndarray | None = None):
    """torch's ``(out, indices[, grad_x])`` as NumPy for geometry ``g``."""
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=grad_out is not None)
    out, idx = TF.max_pool2d(xt, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode, return_indices=True)
    if grad_out is None:
        return out.detach().numpy(), idx.numpy()
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), idx.numpy(), xt.grad.numpy()
