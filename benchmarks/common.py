"""The timing harness shared by every ``bench_*.py`` module.

A benchmark module exposes ``cases(device) -> list[Case]``. Each case times our
function and torch's on the same shapes in the same process: one first call of
ours (the Numba compile, reported separately), then ``warmup`` calls of each, then
``repeat`` timed calls of each, interleaved so that a noisy neighbour hurts both.
The median is reported; speedup = torch median / our median (> 1: we are faster).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Case", "Result", "run_case", "torch_device_and_sync"]


@dataclass
class Case:
    """One op at one shape: ``ours`` and ``reference`` compute the same thing."""

    op: str  # e.g. "conv2d"
    shape: str  # e.g. "N8 C64->64 128x128 k3"
    pass_: str  # "forward" or "forward+backward"
    ours: Callable[[], object]
    reference: Callable[[], object]
    work: float = 0.0  # FLOPs (unit "GFLOP/s") or bytes moved (unit "GB/s") per call
    unit: str = "GFLOP/s"
    sync: Callable[[], None] = field(default=lambda: None)  # e.g. a CUDA synchronize


@dataclass
class Result:
    op: str
    shape: str
    pass_: str
    first_call_s: float
    ours_ms: float
    torch_ms: float
    speedup: float
    ours_rate: float
    torch_rate: float
    unit: str


def torch_device_and_sync(device: str):
    """torch's device for ``device`` and the call that waits for its queued work (a no-op on the CPU).

    ``torch.cuda.synchronize`` also waits for CuPy and Numba work on the same (default) stream.
    """
    import torch

    if device == "cuda":
        return "cuda", torch.cuda.synchronize
    return "cpu", lambda: None


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def run_case(case: Case, repeat: int = 7, warmup: int = 1) -> Result:
    """Time ``case``: first call of ours, then ``repeat`` interleaved calls of each; medians."""
    first = _timed(case.ours, case.sync)
    for _ in range(warmup):
        _timed(case.ours, case.sync)
        _timed(case.reference, case.sync)
    ours, ref = [], []
    for _ in range(repeat):
        ours.append(_timed(case.ours, case.sync))
        ref.append(_timed(case.reference, case.sync))
    ours_s, ref_s = statistics.median(ours), statistics.median(ref)
    scale = 1e-9 * case.work
    return Result(
        op=case.op,
        shape=case.shape,
        pass_=case.pass_,
        first_call_s=first,
        ours_ms=1e3 * ours_s,
        torch_ms=1e3 * ref_s,
        speedup=ref_s / ours_s,
        ours_rate=scale / ours_s if case.work else float("nan"),
        torch_rate=scale / ref_s if case.work else float("nan"),
        unit=case.unit,
    )
