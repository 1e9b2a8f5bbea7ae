"""minitorchseg.kernels.cpu RoIAlign entries against torchvision 0.29.1 (docs/semantics.md#roi_align).

The forward is computed in the input dtype in torchvision's order, so it is
compared bit for bit in float32 and float64. The backward is compared with
torchvision's autograd under a non-uniform upstream gradient, with the named
tolerances below.
"""

import numba
import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import roi_align_backward, roi_align_forward
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream

from .roi_cases import random_rois, roi_geometries

BACKWARD_TOL = {
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
    np.dtype(np.float32): dict(rtol=1e-6, atol=1e-6),
}


def torchvision_roi_align(x, rois, output_hw, scale, sampling_ratio, aligned, grad_out=None):
    """torchvision's output and (if ``grad_out`` is given) its input gradient, as NumPy."""
    xt = torch.tensor(x, requires_grad=grad_out is not None)
    out = torchvision.ops.roi_align(xt, torch.tensor(rois), output_hw, scale, sampling_ratio, aligned)
    if grad_out is None:
        return out.detach().numpy(), None
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), xt.grad.numpy()


@settings_fast
@given(g=roi_geometries, seed=seeds, dtype=dtypes, sampling_ratio=st.sampled_from([-1, 0, 1, 2, 3]),
       aligned=st.booleans(), contiguous=st.booleans())
def test_roi_align_matches_torchvision(g, seed, dtype, sampling_ratio, aligned, contiguous):
    shape = (g["n"], g["c"], g["h"], g["w"])
    if contiguous:
        x = randn(seed, shape, dtype)
    else:  # a strided view: every other column of a wider map
        x = randn(seed, shape[:3] + (2 * g["w"],), dtype)[..., ::2]
    rois = random_rois(seed + 1, g["n"], g["k"], g["h"], g["w"], g["scale"], dtype)
    output_hw = (g["ph"], g["pw"])
    out = roi_align_forward(x, rois, output_hw, g["scale"], sampling_ratio, aligned)
    go = upstream(out.shape, dtype, seed % 1000)
    if not contiguous:
        go = np.ascontiguousarray(np.swapaxes(go, 2, 3)).swapaxes(2, 3)
    expected, expected_grad = torchvision_roi_align(
        np.ascontiguousarray(x), rois, output_hw, g["scale"], sampling_ratio, aligned, go
    )
    assert out.dtype == dtype and out.shape == (g["k"], g["c"]) + output_hw
    np.testing.assert_array_equal(out, expected)
    grad = roi_align_backward(go, rois, shape, g["scale"], sampling_ratio, aligned)
    assert grad.dtype == dtype and grad.shape == shape
    np.testing.assert_allclose(grad, expected_grad, **BACKWARD_TOL[np.dtype(dtype)])


def test_roi_align_half_pixel_example():
    """docs/semantics.md#roi_align on ``arange(16).view(4, 4)``: box ``[0, 1, 1, 2, 2]``, 1×1 bin, one sample.

    aligned=False samples (1.5, 1.5): the four pixels 5, 6, 9, 10 with weight 1/4
    each → 7.5. aligned=True shifts the box by −0.5 and samples the pixel centre
    (1, 1) → 5.0. The gradient of a unit upstream goes to the same pixels with
    the same weights.
    """
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    rois = np.array([[0, 1, 1, 2, 2]], dtype=np.float64)
    assert roi_align_forward(x, rois, (1, 1), 1.0, 1, False)[0, 0, 0, 0] == 7.5
    assert roi_align_forward(x, rois, (1, 1), 1.0, 1, True)[0, 0, 0, 0] == 5.0
    go = np.ones((1, 1, 1, 1))
    legacy = np.zeros((4, 4))
    legacy[1:3, 1:3] = 0.25
    np.testing.assert_array_equal(roi_align_backward(go, rois, x.shape, 1.0, 1, False)[0, 0], legacy)
    centre = np.zeros((4, 4))
    centre[1, 1] = 1.0
    np.testing.assert_array_equal(roi_align_backward(go, rois, x.shape, 1.0, 1, True)[0, 0], centre)
    # a degenerate box [1, 1, 1, 1] is forced to 1×1 in legacy mode, sampling (1.5, 1.5) again
    point = np.array([[0, 1, 1, 1, 1]], dtype=np.float64)
    assert roi_align_forward(x, point, (1, 1), 1.0, -1, False)[0, 0, 0, 0] == 7.5
    # aligned=True keeps it zero-size: an empty sampling grid gives 0
    assert roi_align_forward(x, point, (1, 1), 1.0, -1, True)[0, 0, 0, 0] == 0.0


def test_roi_align_two_by_two_example():
    """Box ``[0, 0, 0, 4, 4]``, aligned, one sample per bin at (0.5, 0.5), (0.5, 2.5), (2.5, 0.5), (2.5, 2.5).

    The map ``4·y + x`` is linear, so bilinear sampling is exact: 2.5, 4.5, 10.5, 12.5.
    """
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    rois = np.array([[0, 0, 0, 4, 4]], dtype=np.float32)
    out = roi_align_forward(x, rois, (2, 2), 1.0, 1, True)
    np.testing.assert_array_equal(out[0, 0], np.array([[2.5, 4.5], [10.5, 12.5]], dtype=np.float32))


@pytest.mark.parametrize("x1, expected", [(-1.5, 4.0), (-1.51, 0.0), (3.5, 7.0)])
def test_roi_align_border_samples(x1, expected):
    """A sample at x = −1 or x = W is kept (clamped to the border column), one beyond contributes 0.

    Legacy mode, width-1 box ``[x1, 0.5, x1 + 1, 1.5]``: one sample at ``(1, x1 + 0.5)``
    on the map ``4·y + x``. x1 = −1.5 → x = −1 reads column 0 (value 4); x1 = −1.51 →
    x = −1.01 is dropped (0); x1 = 3.5 → x = 4 = W reads column 3 (value 7).
    """
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    rois = np.array([[0, x1, 0.5, x1 + 1, 1.5]])
    out = roi_align_forward(x, rois, (1, 1), 1.0, 1, False)
    assert out[0, 0, 0, 0] == expected
    np.testing.assert_array_equal(out, torchvision_roi_align(x, rois, (1, 1), 1.0, 1, False)[0])


def test_roi_align_no_rois():
    x = randn(0, (2, 3, 5, 5))
    rois = np.zeros((0, 5))
    assert roi_align_forward(x, rois, (2, 3), 1.0, -1, False).shape == (0, 3, 2, 3)
    grad = roi_align_backward(np.zeros((0, 3, 2, 3)), rois, x.shape, 1.0, -1, False)
    np.testing.assert_array_equal(grad, np.zeros(x.shape))


def test_roi_align_backward_is_deterministic_across_thread_counts():
    """Channel blocks never share an element, so 1 thread and all threads add in the same order."""
    x_shape = (2, 40, 9, 9)
    rois = random_rois(3, 2, 12, 9, 9, 1.0, np.float32)
    go = upstream((12, 40, 3, 3), np.float32)
    results = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        try:
            results.append(roi_align_backward(go, rois, x_shape, 1.0, 2, True))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
