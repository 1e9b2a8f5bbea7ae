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

Shapes and size formulas shared by both devices live in :mod:`kernels.geometry`.
"""
