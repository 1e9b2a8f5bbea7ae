"""The device seam: where a tensor's numbers live and which kernels run on them.

A :class:`Backend` bundles three things for one device:

* ``xp``      the array module (``numpy`` on the CPU, ``cupy`` on a GPU);
* ``kernels`` the kernel entry points (``minitorchseg.kernels.cpu`` or ``minitorchseg.kernels.cuda``), two
  modules with the same function names and argument orders;
* ``name``    ``"cpu"`` or ``"cuda"``.

Op classes never ask which device they run on: they call ``ctx.xp.exp(x)`` or
``ctx.kernels.conv2d_forward(...)`` and the backend of their inputs answers.
Launch configuration (blocks and threads) lives inside ``minitorchseg.kernels.cuda``'s entry
points, never in an op.

``cuda`` has two flavours:

* a real GPU: data are ``cupy.ndarray``; needs CuPy, numba-cuda and a device;
* the simulator: with ``NUMBA_ENABLE_CUDASIM=1`` set, data stay ``numpy.ndarray``
  and every custom kernel runs through Numba's CUDA simulator, so the whole GPU
  path (kernel code, launch configuration, bookkeeping) runs on a machine
  without a GPU.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["Backend", "get_backend", "cuda_available", "cuda_simulated", "normalize_device"]


@dataclass(frozen=True)
class Backend:
    """Array module and kernel entry points for one device."""

    name: str
    xp: ModuleType
    kernels: ModuleType

    def asarray(self, data: Any, dtype=None):
        """``data`` as an array on this device (copies across devices)."""
        if self.name == "cpu" or self.xp is np:
            if hasattr(data, "get") and not isinstance(data, np.ndarray):  # a cupy array
                data = data.get()
            return np.asarray(data, dtype=dtype)
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, data) -> np.ndarray:
        """A NumPy copy (or view, on the CPU) of an array of this device."""
        if isinstance(data, np.ndarray):
            return data
        return data.get()


def cuda_simulated() -> bool:
    """True when Numba's CUDA simulator stands in for a GPU."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def _cuda_missing() -> str | None:
    """Why ``cuda`` cannot be used here, or None when it can."""
    if cuda_simulated():
        try:
            importlib.import_module("numba.cuda")
        except ImportError as exc:  # pragma: no cover - depends on install
            return f"NUMBA_ENABLE_CUDASIM=1 is set but numba.cuda does not import ({exc})"
        return None
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return "CuPy is not installed (pip install 'minitorchseg[gpu]')"
    try:
        importlib.import_module("numba.cuda")
    except ImportError:
        return "numba-cuda is not installed (pip install 'minitorchseg[gpu]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy found no CUDA device"
    except Exception as exc:  # cupy raises its own CUDARuntimeError without a driver
        return f"CuPy found no usable CUDA device ({type(exc).__name__}: {exc})"
    return None


def cuda_available() -> bool:
    """True when ``device='cuda'`` works: a GPU with CuPy, or the simulator."""
    return _cuda_missing() is None


def normalize_device(device) -> str:
    """``'cpu'``, ``'cuda'``, ``'cuda:0'`` or a Backend → ``'cpu'`` or ``'cuda'``."""
    if isinstance(device, Backend):
        return device.name
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.split(":")[0]
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    return name


_BACKENDS: dict[str, Backend] = {}


def get_backend(device="cpu") -> Backend:
    """The backend for ``device``; raises RuntimeError saying what is missing for cuda."""
    name = normalize_device(device)
    if name in _BACKENDS:
        return _BACKENDS[name]
    if name == "cpu":
        backend = Backend("cpu", np, importlib.import_module("minitorchseg.kernels.cpu"))
    else:
        missing = _cuda_missing()
        if missing is not None:
            raise RuntimeError(
                f"device 'cuda' is not available: {missing}. "
                "Use device='cpu', or set NUMBA_ENABLE_CUDASIM=1 to run the CUDA kernels in Numba's simulator."
            )
        xp = np if cuda_simulated() else importlib.import_module("cupy")
        backend = Backend("cuda", xp, importlib.import_module("minitorchseg.kernels.cuda"))
    _BACKENDS[name] = backend
    return backend
