"""Compile every CUDA kernel to PTX for a real GPU, without one: ``python -m tests.cuda.ptx_check``.

The simulator runs the kernels as Python, so it cannot catch what only the CUDA
compiler rejects (an unsupported NumPy call, a type that does not unify). This
script compiles each raw kernel with Numba-CUDA's real pipeline (typing, lowering,
NVVM) for compute capability 7.5 and the argument types its entry point
launches it with, in float32 and float64. It needs libNVVM (the CUDA toolkit),
not a driver or a device. It must run in a process *without*
``NUMBA_ENABLE_CUDASIM`` (``tests/cuda/test_ptx.py`` starts it that way).

Exit status 0 and one ``ok`` line per kernel, or 1 with the compiler's message;
exit status 3 when libNVVM is missing.
"""

from __future__ import annotations

import os
import sys
import types

CC = (7, 5)


def _signatures():
    """``(module, kernel, argument types)`` for every raw kernel, as the entry points launch them."""
    from numba import types as nt

    i32, i64, f64, boolean = nt.int32, nt.int64, nt.float64, nt.boolean

    def arr(dtype, ndim):
        return nt.Array(dtype, ndim, "C")

    CUDA = "minitorchseg.kernels.cuda."
    out = []
    for T in (nt.float32, nt.float64):
        ints = (i64,) * 8  # kernel, stride, padding, dilation: (h, w) each
        out += [
            (CUDA + "pool", "_max_pool2d_kernel", (arr(T, 3), arr(T, 3), arr(i64, 3)) + ints + (T,)),
            (CUDA + "pool", "_scatter_add_kernel", (arr(T, 2), arr(i64, 2), arr(T, 2))),
            (CUDA + "pool", "_gather_claimed_kernel", (arr(T, 2), arr(i64, 2), arr(T, 2))),
            (CUDA + "pool", "_gather_kernel", (arr(T, 2), arr(i64, 2), arr(T, 2))),
            (CUDA + "conv", "_im2col_kernel", (arr(T, 4), arr(T, 3)) + ints + (i64,)),
            (CUDA + "conv", "_col2im_kernel", (arr(T, 3), arr(T, 4)) + ints + (i64,)),
            (CUDA + "roi_align", "_roi_align_forward_kernel",
             (arr(T, 3), arr(T, 2), arr(T, 4), i64, i64, T, i64, boolean)),
            (CUDA + "roi_align", "_roi_align_backward_kernel",
             (arr(T, 4), arr(T, 2), arr(T, 3), i64, i64, T, i64, boolean)),
            (CUDA + "roi_pool", "_roi_pool_forward_kernel",
             (arr(T, 3), arr(T, 2), arr(T, 4), arr(i32, 4), i64, i64, T, T)),
            (CUDA + "roi_pool", "_roi_pool_backward_kernel", (arr(T, 4), arr(i32, 4), arr(i64, 1), arr(T, 3))),
            (CUDA + "nms", "_nms_mask_kernel", (arr(T, 1),) * 5 + (f64, arr(i64, 2))),
            (CUDA + "interpolate", "_bilinear_forward_kernel",
             (arr(T, 3), arr(T, 3)) + (arr(i64, 1), arr(i64, 1), arr(T, 1), arr(T, 1)) * 2),
            (CUDA + "interpolate", "_bilinear_backward_rows_kernel",
             (arr(T, 3), arr(T, 3), arr(i64, 1), arr(i64, 1), arr(T, 1), arr(T, 1), arr(i64, 1), arr(i64, 1))),
            (CUDA + "interpolate", "_bilinear_backward_cols_kernel",
             (arr(T, 3), arr(T, 3), arr(i64, 1), arr(i64, 1), arr(T, 1), arr(T, 1), arr(i64, 1), arr(i64, 1))),
            (CUDA + "interpolate", "_nearest_forward_kernel", (arr(T, 3), arr(T, 3), arr(i64, 1), arr(i64, 1))),
            (CUDA + "interpolate", "_nearest_backward_kernel", (arr(T, 3), arr(T, 3)) + (arr(i64, 1),) * 6),
            (CUDA + "batch_norm", "_channel_stats_kernel", (arr(T, 3), arr(T, 1), arr(T, 1))),
            (CUDA + "batch_norm", "_channel_grad_sums_kernel",
             (arr(T, 3), arr(T, 3), arr(T, 1), arr(f64, 1), arr(f64, 1))),
            (CUDA + "batch_norm", "_normalize_kernel", (arr(T, 3),) + (arr(T, 1),) * 3 + (arr(T, 3),)),
            (CUDA + "batch_norm", "_input_grad_kernel",
             (arr(T, 3), arr(T, 3)) + (arr(T, 1),) * 4 + (arr(T, 3),)),
            (CUDA + "adam", "_adam_kernel", (arr(T, 1),) * 4 + (T,) * 8),
            (CUDA + "relu", "_relu_forward_kernel", (arr(T, 1), arr(T, 1))),
            (CUDA + "relu", "_relu_backward_kernel", (arr(T, 1), arr(T, 1), arr(T, 1))),
            (CUDA + "cross_entropy", "_cross_entropy_forward_kernel",
             (arr(T, 3), arr(i64, 2), arr(T, 1), i64, boolean, arr(T, 2), arr(T, 2), arr(T, 3))),
            (CUDA + "cross_entropy", "_cross_entropy_backward_kernel",
             (arr(T, 2), arr(T, 3), arr(i64, 2), i64, boolean, arr(T, 3))),
        ]
    out += [
        (CUDA + "pool", "_claim_kernel", (arr(i64, 2), arr(i64, 2))),
        (CUDA + "kmeans", "_kmeans_assign_kernel", (arr(f64, 2), arr(f64, 2), arr(i64, 1))),
    ]
    return out


def main() -> int:
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1":
        print("ptx_check: unset NUMBA_ENABLE_CUDASIM: the simulator cannot compile PTX", file=sys.stderr)
        return 2
    import importlib

    from numba import cuda
    from numba.cuda import dispatcher

    # Device functions are compiled for "the current device"; there is none, so
    # name the target here (the kernels themselves get ``cc=`` directly).
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=CC)
    try:
        cuda.compile_ptx(lambda a: None, "(float32[::1],)", cc=CC)
    except Exception as exc:  # NvvmSupportError and friends: no toolkit here
        print(f"ptx_check: libNVVM unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 3
    failures = 0
    for module_name, name, argtypes in _signatures():
        module = importlib.import_module(module_name)
        kernel = getattr(module, name)
        try:
            cuda.compile_ptx(kernel, argtypes, cc=CC)
            print(f"ok   {module_name}.{name} ({argtypes[0]}, ...)")
        except Exception as exc:
            failures += 1
            print(f"FAIL {module_name}.{name}: {type(exc).__name__}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
