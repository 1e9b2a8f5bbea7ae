"""Kernels: pure functions on arrays, forward and backward of every op.

They know nothing of autograd. ``kernels.cpu`` holds Numba ``@njit(parallel=True)``
versions over NumPy arrays, ``kernels.cuda`` Numba-CUDA versions over CuPy arrays;
the two expose the same entry points with the same argument order, so a reader
can diff ``kernels/cpu/pool.py`` against ``kernels/cuda/pool.py``.

Each module has two layers:

* raw kernels: undecorated Python functions (``_max_pool2d_kernel``) bound once to
  the compiler at module level, so ``NUMBA_DISABLE_JIT=1`` lets a reader step
  through them in a debugger;
* entry points (``max_pool2d_forward``): allocate the outputs, pick the loop
  bounds (or, on the GPU, the launch configuration) and call the raw kernel.

What both devices share is written once, in device-neutral modules:

* :mod:`kernels.shared` (one module per op): the per-element arithmetic
  (torch's max-pool window scan, RoIAlign's sample geometry and bilinear taps,
  RoIPool's rounding, the K-means nearest centre) as plain functions that
  ``kernels.cpu`` compiles with ``njit`` and ``kernels.cuda`` with
  ``cuda.jit(device=True)``, plus the host-side tables both read (resize taps,
  NMS order);
* :mod:`kernels.geometry`: output sizes and the other host-side size formulas.

Each device has one runtime module for the question "who runs what":
:mod:`kernels.cpu._runtime` (blocks shared out to Numba's threads, scratch buffers, block sizing) and
:mod:`kernels.cuda._launch` (launch configuration, array module). A CUDA module
never imports from a CPU module, nor the CPU from CUDA.

Kernels import nothing of the rest of minitorchseg (no tensors, no autograd):
only this package, NumPy, Numba, CuPy, threadpoolctl and the standard library
(``tests/test_structure.py`` checks it).
"""

if __name__ == "kernels":
    # This folder is the package minitorchseg.kernels (through the link minitorchseg/kernels). Numba names
    # its cache files after the source file, so a function cached while the folder was imported as the
    # top-level package "kernels" (e.g. `from kernels.cpu import conv` with the checkout on sys.path) fails
    # to load in a process that imports minitorchseg ("No module named 'kernels'"), and the reverse.
    raise ImportError("import the kernels as minitorchseg.kernels (e.g. `from minitorchseg.kernels.cpu import "
                      "conv`), not as the top-level package 'kernels': Numba's cache is shared by file and "
                      "a kernel cached under one name does not load under the other")
