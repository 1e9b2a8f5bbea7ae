"""What the numbers were measured on: the CPU, the cores this process may use, the BLAS and its rate.

Printed in the header of ``python -m benchmarks.run``, so that a table always
says which machine it comes from. The BLAS is whatever NumPy loaded, as
threadpoolctl reports it (library, version, the kernel it selected for this CPU,
its thread count); the sgemm rate is measured in the same run, on the same
threads as the convolutions use, so that a convolution's GFLOP/s can be read
against it.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

__all__ = ["cpu_model", "usable_cores", "blas_description", "sgemm_gflops", "machine_header"]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()`` or the machine type."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def blas_description() -> str:
    """``openblas 0.3.31 (kernel SkylakeX, 2 threads)`` for each BLAS NumPy loaded; "unknown" without threadpoolctl.

    OpenBLAS picks its kernel set for the CPU when it loads, unless the environment
    variable ``OPENBLAS_CORETYPE`` names one; the kernel is then followed by
    "as set by OPENBLAS_CORETYPE" (``Haswell`` forced on an AVX-512 CPU halves the
    sgemm rate: 117 vs 222 GFLOP/s per core measured on a Zen 5 EPYC).
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    parts = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        kernel = info.get("architecture") or "?"
        if info.get("internal_api") == "openblas" and os.environ.get("OPENBLAS_CORETYPE"):
            kernel += " as set by OPENBLAS_CORETYPE"  # the user's choice, not OpenBLAS's own reading of the CPU
        parts.append(f"{info.get('internal_api')} {info.get('version')} (kernel {kernel}, "
                     f"{info.get('num_threads')} threads)")
    return "; ".join(parts) or "none found"


def sgemm_gflops(n: int = 2048, repeat: int = 5) -> float:
    """NumPy's float32 ``n×n @ n×n`` rate, GFLOP/s (``2n³`` flops; median of ``repeat`` after one warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def machine_header() -> str:
    """One paragraph: CPU model, usable/total cores, Python, the BLAS and its sgemm rate at 2048x2048."""
    return (
        f"CPU: {cpu_model()}, {usable_cores()} usable cores of {os.cpu_count()}; Python {platform.python_version()}, "
        f"NumPy {np.__version__}. BLAS: {blas_description()}; sgemm 2048x2048 float32: "
        f"{sgemm_gflops():.0f} GFLOP/s (this run)."
    )
