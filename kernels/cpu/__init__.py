"""CPU kernel entry points (Numba, ``@njit(parallel=True, cache=True)``).

Every name here has a twin with the same signature in :mod:`kernels.cuda`.
"""
