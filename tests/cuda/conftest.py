"""tests/cuda: the GPU path, run in Numba's CUDA simulator when this machine has no GPU.

The simulator replaces ``numba.cuda`` at *import* time, when
``NUMBA_ENABLE_CUDASIM=1`` is set; afterwards the variable no longer matters to
Numba. So, when no GPU with CuPy is usable, this conftest (loaded by pytest
before any module of this folder, and before anything imports ``numba.cuda``:
``tests/cuda`` is collected first and the CPU kernels never import it) sets the
variable, imports ``numba.cuda`` and ``minitorchseg.kernels.cuda`` (now bound to the
simulator for the rest of the process), and restores the environment at once.
Numba's CPU compiler does not read the variable: the ``@njit`` kernels and their
on-disk cache are untouched.

``minitorchseg.backend`` reads the variable at call time to decide whether
``device='cuda'`` is available; the autouse fixture below sets it for each test
of this folder only and drops the cached ``cuda`` backend afterwards, so tests
elsewhere in the same run still see a machine without CUDA (and subprocesses
inherit nothing).

On a machine with a GPU and CuPy nothing is simulated: the same tests run on the
device, plus the ones marked ``gpu``.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest


def _gpu_missing() -> str | None:
    """Why no real GPU can be used (None when CuPy sees a device)."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy found no CUDA device"
    except Exception as exc:  # CUDARuntimeError without a driver
        return f"CuPy found no usable CUDA device ({type(exc).__name__})"
    return None


GPU_MISSING = _gpu_missing()


def _import_cuda_kernels() -> str | None:
    """Import ``minitorchseg.kernels.cuda`` (under the simulator when there is no GPU); None or why it cannot run."""
    if GPU_MISSING is not None and "numba.cuda" not in sys.modules:
        previous = os.environ.get("NUMBA_ENABLE_CUDASIM")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        try:
            importlib.import_module("numba.cuda")
        except ImportError as exc:
            return f"numba-cuda is not installed ({exc})"
        finally:
            if previous is None:
                del os.environ["NUMBA_ENABLE_CUDASIM"]
            else:
                os.environ["NUMBA_ENABLE_CUDASIM"] = previous
    try:
        launch = importlib.import_module("minitorchseg.kernels.cuda._launch")
    except ImportError as exc:
        return f"minitorchseg.kernels.cuda does not import ({exc})"
    if GPU_MISSING is not None and not launch.SIMULATED:
        return (
            "numba.cuda was imported without the simulator before tests/cuda/conftest.py ran and there is no GPU "
            f"({GPU_MISSING}); run `python -m pytest tests/cuda` on its own"
        )
    importlib.import_module("minitorchseg.kernels.cuda")
    return None


CUDA_UNAVAILABLE = _import_cuda_kernels()

# Without numba-cuda the test modules cannot even be imported: leave them out and say why in the header.
collect_ignore_glob = ["test_*.py"] if CUDA_UNAVAILABLE and "minitorchseg.kernels.cuda" not in sys.modules else []


def pytest_report_header(config):
    if CUDA_UNAVAILABLE:
        return f"tests/cuda: not run ({CUDA_UNAVAILABLE})"
    return f"tests/cuda: {'Numba CUDA simulator' if GPU_MISSING else 'CUDA GPU'} ({GPU_MISSING or 'CuPy'})"


def pytest_collection_modifyitems(config, items):
    """Skip this folder's tests, with the reason, when the CUDA path cannot run at all; ``gpu`` tests without a GPU."""
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.fspath).startswith(here):
            continue
        if CUDA_UNAVAILABLE is not None and item.get_closest_marker("cudasim"):
            item.add_marker(pytest.mark.skip(reason=CUDA_UNAVAILABLE))
        if GPU_MISSING is not None and item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason=f"needs a real CUDA GPU: {GPU_MISSING}"))


@pytest.fixture(autouse=True)
def cuda_device(monkeypatch):
    """``device='cuda'`` works inside each test of this folder (simulated when there is no GPU), and only there."""
    from minitorchseg import backend

    if GPU_MISSING is not None and CUDA_UNAVAILABLE is None:
        monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    monkeypatch.setattr(backend, "_BACKENDS", {k: v for k, v in backend._BACKENDS.items() if k != "cuda"})
    yield
