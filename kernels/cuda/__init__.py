"""CUDA kernel entry points (Numba-CUDA over CuPy arrays, or NumPy under the simulator).

Every name here has a twin with the same signature in :mod:`kernels.cpu`.
"""
