"""Geometry strategies, array helpers and tolerances shared by the conv and transposed-conv tests.

Tolerances follow docs/semantics.md#tolerances: float64 ``1e-10`` (relative to the largest
reference value for weight gradients); float32 outputs and input gradients
``max |a − b| ≤ 2e-6·√K·max(1, max |ref|)`` with ``K = Cin/groups·kh·kw`` the
length of one dot product, weight gradients ``max |a − b| ≤ 1e-5·max |ref|``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from unittest import mock

import numba
import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from minitorchseg.kernels.geometry import conv_output_size, conv_transpose_output_size
from tests.strategies import strided as noncontiguous

__all__ = [
    "Geometry", "conv_geometries", "transpose_geometries", "noncontiguous", "assert_conv_close", "execution",
    "executions", "gradient_magnitudes",
]

F32_PER_SQRT_K = 2e-6  # outputs and input gradients, times √K·max(1, max|ref|)
F32_WEIGHT_GRAD = 1e-5  # weight (and bias) gradients, times max|ref|
F64_REL = 1e-10


@dataclass(frozen=True)
class Geometry:
    """One convolution: x (n, groups·cg, h, w); conv2d weight (groups·og, cg, kh, kw)."""

    n: int
    groups: int
    cg: int
    og: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    output_padding: tuple[int, int] = (0, 0)

    @property
    def cin(self) -> int:
        return self.groups * self.cg

    @property
    def cout(self) -> int:
        return self.groups * self.og

    @property
    def conv_out(self) -> tuple[int, int]:
        return tuple(
            conv_output_size(n, k, s, p, d)
            for n, k, s, p, d in zip((self.h, self.w), self.kernel, self.stride, self.padding, self.dilation)
        )

    @property
    def transpose_out(self) -> tuple[int, int]:
        return tuple(
            conv_transpose_output_size(n, k, s, p, o, d)
            for n, k, s, p, o, d in zip(
                (self.h, self.w), self.kernel, self.stride, self.padding, self.output_padding, self.dilation
            )
        )


# How minitorchseg.kernels.cpu.conv runs a job (minitorchseg.kernels.cpu._runtime): its
# column-block size (the default, or tiny ones that cut every image into one-row / one-channel blocks or group a few
# images per block) and who runs the blocks: the caller alone with the serial
# kernels, the worker threads, the caller with the parallel kernels (what
# happens without threadpoolctl), or one Numba thread (a one-core machine: a
# block's budget is then the whole job, so several images share a block and sit
# side by side in one GEMM, which two threads give only from four images up);
# and the order of the weight-gradient product: the default (transposed for the
# few output channels drawn here) or, with the threshold at 0, the direct one.
executions = st.tuples(
    st.sampled_from([None, 1, 600, 5000]), st.sampled_from(["caller", "workers", "caller-parallel", "one-thread"]),
    st.sampled_from([None, 0]),
)


@contextlib.contextmanager
def execution(block_bytes, mode, narrow=None):
    from minitorchseg.kernels.cpu import _runtime, conv

    with contextlib.ExitStack() as stack:
        if narrow is not None:
            stack.enter_context(mock.patch.object(conv, "_NARROW", narrow))
        if block_bytes is not None:
            stack.enter_context(mock.patch.object(_runtime, "BLOCK_BYTES", block_bytes))
        if mode != "caller":
            stack.enter_context(mock.patch.object(_runtime, "PARALLEL_BYTES", 0))
        if mode == "caller-parallel":
            stack.enter_context(mock.patch.object(_runtime.workers, "_blas_limiter", lambda: None))
        if mode == "one-thread":
            threads = numba.get_num_threads()
            numba.set_num_threads(1)
            stack.callback(numba.set_num_threads, threads)
        yield


_pairs = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))  # noqa: E731


@st.composite
def conv_geometries(draw, max_extra: int = 6) -> Geometry:
    """A valid conv2d: every dim of the padded input at least the dilated kernel, odd sizes included."""
    kernel = draw(_pairs(1, 4))
    stride = draw(_pairs(1, 3))
    dilation = draw(_pairs(1, 3))
    padding = draw(_pairs(0, 3))
    sizes = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(smallest, smallest + max_extra)))
    return Geometry(
        n=draw(st.integers(1, 3)), groups=draw(st.integers(1, 3)), cg=draw(st.integers(1, 3)),
        og=draw(st.integers(1, 3)), h=sizes[0], w=sizes[1], kernel=kernel, stride=stride, padding=padding,
        dilation=dilation,
    )


@st.composite
def transpose_geometries(draw) -> Geometry:
    """A valid conv_transpose2d: output_padding < max(stride, dilation) per dim, output ≥ 1."""
    kernel = draw(_pairs(1, 4))
    stride = draw(_pairs(1, 3))
    dilation = draw(_pairs(1, 3))
    padding = draw(_pairs(0, 3))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    g = Geometry(
        n=draw(st.integers(1, 3)), groups=draw(st.integers(1, 3)), cg=draw(st.integers(1, 3)),
        og=draw(st.integers(1, 3)), h=draw(st.integers(1, 6)), w=draw(st.integers(1, 6)), kernel=kernel,
        stride=stride, padding=padding, dilation=dilation, output_padding=output_padding,
    )
    assume(min(g.transpose_out) >= 1)
    return g




def gradient_magnitudes(torch_fn, arrays, upstream) -> list[float]:
    """For each input, the largest ``Σ |term|`` of its gradient's sums (torch, float64).

    conv is linear in each argument, so back-propagating ``|upstream|`` through
    ``torch_fn(|arrays|)`` adds up the absolute values of the terms that make each
    gradient element. That is the scale of float32 rounding error in a sum
    (which ``max |gradient|`` underestimates when the terms cancel).
    """
    import torch

    leaves = [torch.tensor(np.abs(a).astype(np.float64), requires_grad=True) for a in arrays]
    torch_fn(*leaves).backward(torch.tensor(np.abs(upstream).astype(np.float64)))
    return [float(t.grad.abs().max()) if t.grad is not None and t.grad.numel() else 0.0 for t in leaves]


def assert_conv_close(ours: np.ndarray, ref: np.ndarray, kind: str, k: int, what: str,
                      magnitude: float | None = None) -> None:
    """Compare with docs/semantics.md#tolerances: ``kind`` is 'output' (also input grads) or 'weight'.

    For float32 weight (and bias) gradients the bound is relative to
    ``magnitude`` (:func:`gradient_magnitudes`) when given: with no cancellation it
    equals ``max |ref|``, the scale in docs/semantics.md#tolerances.
    """
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    assert ours.dtype == ref.dtype, f"{what}: dtype {ours.dtype} != {ref.dtype}"
    if ref.size == 0:
        return
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64))))
    if ref.dtype == np.float64:
        bound = F64_REL * max(1.0, scale)
    elif kind == "weight":
        bound = F32_WEIGHT_GRAD * max(scale if magnitude is None else magnitude, 1e-30)
    else:
        bound = F32_PER_SQRT_K * np.sqrt(k) * max(1.0, scale)
    assert err <= bound, f"{what}: max |ours − torch| = {err:.3g} > {bound:.3g} (max |torch| = {scale:.3g}, K = {k})"
