"""Launch configuration and output allocation shared by every CUDA entry point.

Two questions every entry point asks, answered once here:

* **which array module allocates the outputs**: CuPy on a GPU; NumPy under
  Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), where "device arrays" are
  host arrays and every kernel runs as Python (:func:`array_module`);
* **how many blocks and threads**: every kernel is written as a *grid-stride
  loop* over a flat range ``[0, n)`` of work items (usually output elements)::

      for t in range(cuda.grid(1), n, cuda.gridsize(1)):     # t = this thread's items
          ...

  so it is correct for any grid; :func:`launch` picks ``threads_per_block`` and
  ``min(ceil(n / threads), max_blocks)`` blocks. A thread handles items ``t``,
  ``t + G``, ``t + 2G``, ... with ``G`` the total number of threads, so
  neighbouring threads touch neighbouring items (coalesced accesses).

  Reductions over one group of items each (batch norm's per-channel sums) are
  the exception: :func:`launch_blocks` gives each group a *block*, whose threads
  stride over the group and then add their partial sums in shared memory; the
  block loop is grid-stride too (``for group in range(blockIdx, n_groups, gridDim)``).

On a GPU: 256 threads per block, at most 65535 blocks (enough to fill any
current device many times over). Under the simulator every CUDA thread is a
Python thread, so the grid is kept small (2 blocks of 32 threads): each thread
then loops over several items, which is exactly the grid-stride path a large
launch takes on a GPU.
"""

from __future__ import annotations

import importlib

import numpy as np
from numba.cuda.core import config as cuda_config

__all__ = [
    "SIMULATED", "THREADS_PER_BLOCK", "MAX_BLOCKS", "array_module", "to_host", "blocks_for", "launch", "launch_blocks"
]

SIMULATED: bool = bool(cuda_config.ENABLE_CUDASIM)

THREADS_PER_BLOCK = 32 if SIMULATED else 256
MAX_BLOCKS = 2 if SIMULATED else 65535


def array_module():
    """The module that allocates device arrays: ``numpy`` under the simulator, else ``cupy``."""
    if SIMULATED:
        return np
    return importlib.import_module("cupy")


def to_host(a) -> np.ndarray:
    """A NumPy copy of a device array (the array itself under the simulator)."""
    if isinstance(a, np.ndarray):
        return a
    return a.get()


def blocks_for(n: int, threads: int = THREADS_PER_BLOCK) -> int:
    """Blocks for ``n`` work items: ``ceil(n / threads)``, capped at :data:`MAX_BLOCKS`."""
    return max(1, min(MAX_BLOCKS, -(-n // threads)))


def launch(kernel, n: int, *args) -> None:
    """Run the grid-stride ``kernel(*args)`` over ``n`` work items; nothing at all when ``n == 0``.

    CUDA rejects an empty grid, and a kernel over zero items has nothing to do.
    """
    if n <= 0:
        return
    kernel[blocks_for(n), THREADS_PER_BLOCK](*args)


def launch_blocks(kernel, n_groups: int, *args) -> None:
    """Run ``kernel(*args)`` with one block of :data:`THREADS_PER_BLOCK` threads per group (at most
    :data:`MAX_BLOCKS` blocks; the kernel loops over groups ``blockIdx, blockIdx + gridDim, ...``);
    nothing when ``n_groups == 0``. ``THREADS_PER_BLOCK`` is a power of two, as a halving
    shared-memory sum needs.
    """
    if n_groups <= 0:
        return
    kernel[min(n_groups, MAX_BLOCKS), THREADS_PER_BLOCK](*args)
