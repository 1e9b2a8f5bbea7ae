"""Every CUDA kernel compiles for real hardware (PTX for compute capability 7.5), checked without a GPU.

The simulator runs kernels as Python and accepts code the CUDA compiler rejects
(a NumPy function with no device implementation, types that do not unify). This
test runs :mod:`tests.cuda.ptx_check` in a fresh process *without* the simulator:
Numba-CUDA's real typing, lowering and NVVM, for the argument types the entry
points launch each kernel with, in float32 and float64. It needs libNVVM (the CUDA
toolkit), not a driver; without it the test is skipped with the reason.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_cuda_kernel_compiles_to_ptx():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.cuda.ptx_check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode == 3:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") >= 30, result.stdout
