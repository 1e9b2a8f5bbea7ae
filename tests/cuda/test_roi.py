"""CUDA RoIAlign, RoIPool, NMS and K-means entries (`minitorchseg.kernels.cuda`) against the CPU ones and torchvision.

* RoIAlign forward: the CPU's geometry and bilinear helpers compiled for the
  device, the CPU's order of additions: bit for bit against the CPU (under the
  simulator; :func:`tests.cuda.common.assert_same_as_cpu`) and against torchvision.
* RoIAlign and RoIPool backwards scatter with float atomics (many bins and RoIs
  add into one pixel): :data:`tests.cuda.common.ATOMIC_TOL` against the CPU, the
  CPU tests' tolerances against torchvision.
* RoIPool values and argmax, NMS keep lists and K-means labels are selections:
  exact against both.

Boxes come from :func:`tests.kernels.roi_cases.random_rois`: partly outside the
map, tiny, zero-size, integer corners; K = 0 included.
"""

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.kernels.pool_cases import strided
from tests.kernels.roi_cases import SCALES, random_rois
from tests.strategies import dtypes, randn, seeds
from tests.torch_ref import upstream

from .common import SIMULATED, assert_atomic_close, assert_same_as_cpu, dev, host

pytestmark = pytest.mark.cudasim

# The CPU tests' RoIAlign backward tolerance against torchvision (docs/semantics.md#tolerances).
BACKWARD_TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12), np.dtype(np.float32): dict(rtol=1e-6, atol=1e-6)}
few = settings(max_examples=30, deadline=None)

small_roi_geometries = st.fixed_dictionaries({
    "n": st.integers(1, 2), "c": st.integers(1, 2), "h": st.integers(1, 6), "w": st.integers(1, 6),
    "ph": st.integers(1, 3), "pw": st.integers(1, 3), "k": st.integers(0, 3), "scale": st.sampled_from(SCALES),
})


@few
@given(g=small_roi_geometries, seed=seeds, dtype=dtypes, sampling_ratio=st.sampled_from([-1, 0, 1, 2]),
       aligned=st.booleans(), contiguous=st.booleans())
def test_roi_align_matches_cpu_and_torchvision(g, seed, dtype, sampling_ratio, aligned, contiguous):
    shape = (g["n"], g["c"], g["h"], g["w"])
    x = randn(seed, shape, dtype)
    xin = x if contiguous else strided(x)
    rois = random_rois(seed + 1, g["n"], g["k"], g["h"], g["w"], g["scale"], dtype)
    args = ((g["ph"], g["pw"]), g["scale"], sampling_ratio, aligned)
    out = gpu.roi_align_forward(dev(xin), dev(rois), *args)
    cpu_out = cpu.roi_align_forward(xin, rois, *args)
    assert_same_as_cpu(out, cpu_out, "forward")
    go = upstream(cpu_out.shape, dtype, seed % 1000)
    grad = gpu.roi_align_backward(dev(go), dev(rois), shape, *args[1:])
    assert_atomic_close(grad, cpu.roi_align_backward(go, rois, shape, *args[1:]), "backward")

    xt = torch.tensor(x, requires_grad=True)
    expected = torchvision.ops.roi_align(xt, torch.tensor(rois), *args)
    expected.backward(torch.tensor(go))
    if SIMULATED:
        np.testing.assert_array_equal(host(out), expected.detach().numpy())
    np.testing.assert_allclose(host(grad), xt.grad.numpy(), **BACKWARD_TOL[np.dtype(dtype)])


def test_roi_align_half_pixel_example():
    """Box [0, 1, 1, 2, 2] on arange(16) as 4×4: 7.5 legacy, 5.0 aligned; the gradient spreads alike.

    The example of docs/semantics.md#roi_align.
    """
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    rois = np.array([[0, 1, 1, 2, 2]], dtype=np.float64)
    assert host(gpu.roi_align_forward(dev(x), dev(rois), (1, 1), 1.0, 1, False)).item() == 7.5
    assert host(gpu.roi_align_forward(dev(x), dev(rois), (1, 1), 1.0, 1, True)).item() == 5.0
    grad = host(gpu.roi_align_backward(dev(np.ones((1, 1, 1, 1))), dev(rois), x.shape, 1.0, 1, False))
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = 0.25
    np.testing.assert_array_equal(grad[0, 0], expected)


def test_roi_align_no_boxes():
    """K = 0: an empty (0, C, PH, PW) output and a zero gradient of the map's shape."""
    x = np.ones((1, 2, 3, 3), np.float32)
    rois = np.zeros((0, 5), np.float32)
    assert host(gpu.roi_align_forward(dev(x), dev(rois), (2, 2), 1.0, -1, False)).shape == (0, 2, 2, 2)
    grad = host(gpu.roi_align_backward(dev(np.zeros((0, 2, 2, 2), np.float32)), dev(rois), x.shape, 1.0, -1, False))
    np.testing.assert_array_equal(grad, np.zeros(x.shape, np.float32))


@few
@given(g=small_roi_geometries, seed=seeds, dtype=dtypes, ties=st.booleans(), half_integers=st.booleans())
def test_roi_pool_matches_cpu_and_torchvision(g, seed, dtype, ties, half_integers):
    shape = (g["n"], g["c"], g["h"], g["w"])
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype) if ties else randn(seed, shape, dtype)
    rois = random_rois(seed + 1, g["n"], g["k"], g["h"], g["w"], g["scale"], dtype, half_integers)
    output_hw = (g["ph"], g["pw"])
    out, argmax = gpu.roi_pool_forward(dev(x), dev(rois), output_hw, g["scale"])
    cpu_out, cpu_argmax = cpu.roi_pool_forward(x, rois, output_hw, g["scale"])
    assert_same_as_cpu(out, cpu_out, "values")
    assert_same_as_cpu(argmax, cpu_argmax, "argmax")
    go = upstream(cpu_out.shape, dtype, seed % 1000)
    grad = gpu.roi_pool_backward(dev(go), argmax, dev(rois), shape)
    assert_atomic_close(grad, cpu.roi_pool_backward(go, cpu_argmax, rois, shape), "backward")

    xt = torch.tensor(x, requires_grad=True)
    expected, expected_argmax = torch.ops.torchvision.roi_pool(xt, torch.tensor(rois), g["scale"], *output_hw)
    expected.backward(torch.tensor(go))
    np.testing.assert_array_equal(host(out), expected.detach().numpy())
    np.testing.assert_array_equal(host(argmax), expected_argmax.numpy())
    np.testing.assert_allclose(host(grad), xt.grad.numpy(), **BACKWARD_TOL[np.dtype(dtype)])


def test_roi_pool_round_half_away_example():
    """A box [0, 0.5, 0.5, 2.5, 2.5] on arange(16): C's round gives pixels 1..3 (not NumPy's 0..2), max 15 at 15."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    rois = np.array([[0, 0.5, 0.5, 2.5, 2.5]], dtype=np.float32)
    out, argmax = gpu.roi_pool_forward(dev(x), dev(rois), (1, 1), 1.0)
    assert host(out).item() == 15.0 and host(argmax).item() == 15


def _roi_pool_both_devices(x, rois, output_hw, go):
    """RoIPool forward and backward on cuda, on the CPU kernels and in torchvision: ``[(out, argmax, grad)] * 3``."""
    out, argmax = gpu.roi_pool_forward(dev(x), dev(rois), output_hw, 1.0)
    grad = gpu.roi_pool_backward(dev(go), argmax, dev(rois), x.shape)
    cpu_out, cpu_argmax = cpu.roi_pool_forward(x, rois, output_hw, 1.0)
    cpu_grad = cpu.roi_pool_backward(go, cpu_argmax, rois, x.shape)
    xt = torch.tensor(x, requires_grad=True)
    expected, expected_argmax = torch.ops.torchvision.roi_pool(xt, torch.tensor(rois), 1.0, *output_hw)
    expected.backward(torch.tensor(go))
    return [(host(out), host(argmax), host(grad)), (cpu_out, cpu_argmax, cpu_grad),
            (expected.detach().numpy(), expected_argmax.numpy(), xt.grad.numpy())]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_roi_pool_backward_with_the_maximum_at_the_first_and_last_pixel(dtype):
    """The plane's first pixel (flat index 0) and last (H·W − 1) as bin maxima: their gradient is delivered."""
    x = -np.arange(16, dtype=dtype).reshape(1, 1, 4, 4)  # decreasing: each bin's maximum is its first pixel
    x[0, 0, 3, 3] = 100.0  # ... except the last bin's, the plane's last pixel
    rois = np.array([[0, 0, 0, 3, 3]], dtype=dtype)
    go = np.array([[[[1.5, 2.0], [3.0, 4.5]]]], dtype=dtype)
    expected_grad = np.zeros((1, 1, 4, 4), dtype)
    expected_grad.flat[[0, 2, 8, 15]] = [1.5, 2.0, 3.0, 4.5]
    for name, (out, argmax, grad) in zip(("cuda", "cpu", "torchvision"), _roi_pool_both_devices(x, rois, (2, 2), go)):
        np.testing.assert_array_equal(argmax, [[[[0, 2], [8, 15]]]], err_msg=name)
        np.testing.assert_array_equal(out, [[[[0.0, -2.0], [-8.0, 100.0]]]], err_msg=name)
        np.testing.assert_array_equal(grad, expected_grad, err_msg=name)
    one_bin = np.array([[0, 0, 0, 0, 0]], dtype=dtype)  # a 1×1 box on pixel 0 alone
    go = np.full((1, 1, 1, 1), 7.0, dtype)
    results = _roi_pool_both_devices(x, one_bin, (1, 1), go)
    for name, (out, argmax, grad) in zip(("cuda", "cpu", "torchvision"), results):
        assert argmax.item() == 0 and out.item() == 0.0, name
        assert grad[0, 0, 0, 0] == 7.0 and np.count_nonzero(grad) == 1, name


def test_roi_pool_backward_skips_empty_bins():
    """A box hanging off the map's corner: bins outside it are empty (output 0, argmax −1) and get no gradient."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    rois = np.array([[0, 3, 3, 5, 5], [0, -3, -3, 0, 0]], dtype=np.float64)
    go = np.arange(1.0, 9.0).reshape(2, 1, 2, 2)
    expected_grad = np.zeros((1, 1, 4, 4))
    expected_grad[0, 0, 3, 3] = 1.0  # box 0: only bin (0, 0) sees a pixel (15)
    expected_grad[0, 0, 0, 0] = 8.0  # box 1: only bin (1, 1) sees a pixel (0)
    for name, (out, argmax, grad) in zip(("cuda", "cpu", "torchvision"), _roi_pool_both_devices(x, rois, (2, 2), go)):
        np.testing.assert_array_equal(argmax, [[[[15, -1], [-1, -1]]], [[[-1, -1], [-1, 0]]]], err_msg=name)
        np.testing.assert_array_equal(out, [[[[15.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]], err_msg=name)
        np.testing.assert_array_equal(grad, expected_grad, err_msg=name)


def _random_boxes(seed, n, dtype, integer):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 10, (n, 2))], axis=1)
    return (np.round(boxes) if integer else boxes).astype(dtype)


@few
@given(seed=seeds, n=st.integers(0, 70), dtype=dtypes, tied=st.booleans(), integer=st.booleans(),
       threshold=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_nms_matches_cpu_and_torchvision(seed, n, dtype, tied, integer, threshold):
    """More than 32 boxes spans several words of the suppression bit matrix."""
    boxes = _random_boxes(seed, n, dtype, integer)
    rng = np.random.default_rng(seed + 1)
    scores = (rng.integers(0, 4, n) if tied else rng.random(n)).astype(dtype)
    keep = gpu.nms(dev(boxes), dev(scores), threshold)
    assert_same_as_cpu(keep, cpu.nms(boxes, scores, threshold))
    expected = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), threshold).numpy()
    np.testing.assert_array_equal(host(keep), expected)


def test_nms_zero_area_and_identical_boxes():
    """Identical boxes: kept at threshold 1.0, suppressed at 0.99; zero-area boxes (IoU 0/0 = NaN) never suppress."""
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [1, 1, 1, 3], [1, 1, 1, 3]], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(host(gpu.nms(dev(boxes), dev(scores), 1.0)), [0, 1, 2, 3])
    np.testing.assert_array_equal(host(gpu.nms(dev(boxes), dev(scores), 0.99)), [0, 2, 3])


@few
@given(seed=seeds, n=st.integers(0, 60), k=st.integers(1, 5), dims=st.integers(1, 4), integer=st.booleans())
def test_kmeans_assign_matches_cpu(seed, n, k, dims, integer):
    rng = np.random.default_rng(seed)
    if integer:  # exact ties between centres: the lowest index must win on both devices
        points, centers = rng.integers(0, 3, (n, dims)).astype(np.float32), rng.integers(0, 3, (k, dims))
    else:
        points, centers = rng.standard_normal((n, dims)), rng.standard_normal((k, dims))
    labels = gpu.kmeans_assign(dev(points), dev(centers))
    assert_same_as_cpu(labels, cpu.kmeans_assign(points, centers))
    d2 = ((points.astype(np.float64)[:, None, :] - centers[None].astype(np.float64)) ** 2).sum(-1)
    if n:
        np.testing.assert_array_equal(host(labels), np.argmin(d2, axis=1))


def test_kmeans_assign_rejects_empty_centers():
    with pytest.raises(ValueError, match="centers is empty"):
        gpu.kmeans_assign(dev(np.zeros((3, 2))), dev(np.zeros((0, 2))))
