"""Helpers shared by the CUDA tests: moving arrays to the device and back, and the comparison rules.

Comparison rules (docs/semantics.md#tolerances tolerances, :data:`tests.strategies.TOL`):

* against **torch**: the same tolerances as the CPU kernels' tests;
* against the **CPU kernel**: bit for bit where the CUDA kernel performs the CPU's
  operations in the CPU's order (every gather; :func:`assert_same_as_cpu`). On a
  real GPU the compiler may fuse ``a·b + c`` into one FMA (one rounding instead of
  two), so there those comparisons use ``TOL``; under the simulator, which runs
  the kernels as NumPy scalar code, they are exact;
* where a CUDA backward scatters with **float atomics** (max-pool backward with
  overlapping windows, RoIAlign and RoIPool backward) the order of the additions
  into one element is left to thread timing, so the sum may differ from the CPU's
  sequential one in the last bits: :data:`ATOMIC_TOL`, used only there.
"""

from __future__ import annotations

import numpy as np

from minitorchseg.kernels.cuda._launch import SIMULATED, array_module, to_host
from tests.strategies import TOL

__all__ = ["ATOMIC_TOL", "SIMULATED", "dev", "host", "assert_same_as_cpu", "assert_atomic_close"]

# A reordered float sum of a few unit-scale terms (docs/semantics.md#tolerances, the order-of-additions rows).
ATOMIC_TOL = {
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
    np.dtype(np.float32): dict(rtol=1e-6, atol=1e-6),
}


def dev(a):
    """A host array on the device (CuPy on a GPU; the array itself under the simulator)."""
    return array_module().asarray(a) if not SIMULATED else a


def host(a) -> np.ndarray:
    """A device array as NumPy."""
    return to_host(a)


def assert_same_as_cpu(cuda_out, cpu_out, what: str = "") -> None:
    """Equal to the CPU kernel's result: bit for bit under the simulator, within ``TOL`` on a GPU (FMA)."""
    ours = host(cuda_out)
    assert ours.shape == cpu_out.shape and ours.dtype == cpu_out.dtype, (what, ours.shape, ours.dtype)
    if SIMULATED or ours.dtype.kind != "f":
        np.testing.assert_array_equal(ours, cpu_out, err_msg=what)
    else:
        np.testing.assert_allclose(ours, cpu_out, **TOL[ours.dtype], err_msg=what)


def assert_atomic_close(cuda_out, cpu_out, what: str = "") -> None:
    """Equal to the CPU kernel's result up to the order of float additions (:data:`ATOMIC_TOL`)."""
    ours = host(cuda_out)
    assert ours.shape == cpu_out.shape and ours.dtype == cpu_out.dtype, (what, ours.shape, ours.dtype)
    np.testing.assert_allclose(ours, cpu_out, **ATOMIC_TOL[ours.dtype], err_msg=what)
