"""What only a real GPU can show (marked ``gpu``: skipped, with the reason, without CuPy and a device).

On a GPU the data of a ``cuda`` tensor are ``cupy.ndarray``, the kernels are
launched on CuPy memory through the CUDA array interface, and the compiler may
fuse multiply-adds (FMA) and cuBLAS orders its sums its own way, so float
results are compared with the CPU tests' :data:`tests.strategies.TOL`.
"""

import numpy as np
import pytest

import minitorchseg as mts
import minitorchseg.functional as F
from tests.strategies import TOL

pytestmark = pytest.mark.gpu


def test_cuda_tensors_hold_cupy_arrays():
    import cupy

    t = mts.tensor(np.arange(6.0).reshape(2, 3), device="cuda")
    assert isinstance(t.data, cupy.ndarray)
    assert isinstance(t.numpy(), np.ndarray)
    assert isinstance((t * 2).sum().data, cupy.ndarray)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_on_cupy_arrays_match_cpu(dtype):
    """conv2d, max-pool, unpool and bilinear resize, forward and backward, through autograd on the GPU."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        tx = mts.tensor(x, device=device, requires_grad=True)
        tw = mts.tensor(w, device=device, requires_grad=True)
        h = F.conv2d(tx, tw, padding=1)
        p, idx = F.max_pool2d(h, 2, return_indices=True)
        u = F.max_unpool2d(p, idx, 2, output_size=h.shape[-2:])
        out = F.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)
        (out * out).mean().backward()
        results[device] = [out.numpy(), tx.grad.numpy(), tw.grad.numpy()]
    for ours, ref in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(ours, ref, **TOL[np.dtype(dtype)])
