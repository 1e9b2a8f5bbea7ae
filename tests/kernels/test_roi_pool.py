"""minitorchseg.kernels.cpu RoIPool entries against torchvision 0.29.1 (docs/semantics.md#roi_pool).

Values and int32 argmax are compared exactly (a selection, no arithmetic on
values), including half-integer box coordinates where C's round-half-away
differs from NumPy's round-half-even, and integer-valued maps full of ties.
The backward is a sum of selected upstream values in torchvision's order, so it
is compared exactly too.
"""

import numpy as np
import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision)
from hypothesis import given
from hypothesis import strategies as st

from minitorchseg.kernels.cpu import roi_pool_backward, roi_pool_forward
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream

from .roi_cases import random_rois, roi_geometries


def torchvision_roi_pool(x, rois, output_hw, scale, grad_out):
    """torchvision's ``(out, argmax, grad_x)`` as NumPy."""
    xt = torch.tensor(x, requires_grad=True)
    out, argmax = torch.ops.torchvision.roi_pool(xt, torch.tensor(rois), scale, output_hw[0], output_hw[1])
    out.backward(torch.tensor(grad_out))
    return out.detach().numpy(), argmax.numpy(), xt.grad.numpy()


@settings_fast
@given(g=roi_geometries, seed=seeds, dtype=dtypes, ties=st.booleans(), half_integers=st.booleans(),
       contiguous=st.booleans())
def test_roi_pool_matches_torchvision(g, seed, dtype, ties, half_integers, contiguous):
    shape = (g["n"], g["c"], g["h"], g["w"])
    rng = np.random.default_rng(seed)
    if ties:  # integer values: many equal maxima, the first in row-major order must win
        x = rng.integers(-3, 4, shape[:3] + (2 * g["w"],)).astype(dtype)
    else:
        x = randn(seed, shape[:3] + (2 * g["w"],), dtype)
    x = x[..., : g["w"]] if contiguous else x[..., ::2]
    rois = random_rois(seed + 1, g["n"], g["k"], g["h"], g["w"], g["scale"], dtype, half_integers)
    output_hw = (g["ph"], g["pw"])
    out, argmax = roi_pool_forward(x, rois, output_hw, g["scale"])
    go = upstream(out.shape, dtype, seed % 1000)
    expected, expected_argmax, expected_grad = torchvision_roi_pool(
        np.ascontiguousarray(x), rois, output_hw, g["scale"], go
    )
    assert out.dtype == dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)
    if not contiguous:
        go = np.ascontiguousarray(go.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    grad = roi_pool_backward(go, argmax, rois, shape)
    assert grad.dtype == dtype and grad.shape == shape
    np.testing.assert_array_equal(grad, expected_grad)


def test_roi_pool_half_away_from_zero_example():
    """Box ``[0, 0, 0, 2.5, 2.5]`` on ``arange(16).view(4, 4)``, 1×1 output.

    C's round sends 2.5 to 3 (NumPy would give 2), so the region is rows and
    columns 0..3 inclusive and the max is 15.0 at flat index 15.
    """
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    rois = np.array([[0, 0, 0, 2.5, 2.5]], dtype=np.float32)
    out, argmax = roi_pool_forward(x, rois, (1, 1), 1.0)
    assert out[0, 0, 0, 0] == 15.0 and argmax[0, 0, 0, 0] == 15
    # 2×2 bins over rows/cols 0..3: bin size 2, maxima at (1,1), (1,3), (3,1), (3,3)
    out, argmax = roi_pool_forward(x, rois, (2, 2), 1.0)
    np.testing.assert_array_equal(out[0, 0], [[5.0, 7.0], [13.0, 15.0]])
    np.testing.assert_array_equal(argmax[0, 0], [[5, 7], [13, 15]])
    grad = roi_pool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32), argmax, rois, x.shape)
    expected = np.zeros(16, dtype=np.float32)
    expected[[5, 7, 13, 15]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(grad.reshape(16), expected)


def test_roi_pool_empty_and_outside_bins():
    """A box entirely outside the map pools nothing: value 0, argmax −1, no gradient."""
    x = randn(0, (1, 2, 4, 4))
    rois = np.array([[0, 10, 10, 12, 12]], dtype=np.float64)
    out, argmax = roi_pool_forward(x, rois, (2, 2), 1.0)
    np.testing.assert_array_equal(out, np.zeros((1, 2, 2, 2)))
    np.testing.assert_array_equal(argmax, -np.ones((1, 2, 2, 2), dtype=np.int32))
    np.testing.assert_array_equal(roi_pool_backward(np.ones((1, 2, 2, 2)), argmax, rois, x.shape), 0.0)


def test_roi_pool_nan_and_lowest_values():
    """NaN is never selected; a bin of values ≤ −FLT_MAX reports −FLT_MAX with argmax −1 (float64 too)."""
    x = np.full((1, 1, 2, 2), -np.inf)
    x[0, 0, 0, 0] = np.nan
    rois = np.array([[0, 0, 0, 1, 1]], dtype=np.float64)
    out, argmax = roi_pool_forward(x, rois, (1, 1), 1.0)
    expected, expected_argmax, _ = torchvision_roi_pool(x, rois, (1, 1), 1.0, np.ones((1, 1, 1, 1)))
    assert out[0, 0, 0, 0] == -3.4028234663852886e38 and argmax[0, 0, 0, 0] == -1
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)


def test_roi_pool_no_rois():
    x = randn(0, (1, 3, 5, 5), np.float32)
    out, argmax = roi_pool_forward(x, np.zeros((0, 5), np.float32), (2, 2), 1.0)
    assert out.shape == argmax.shape == (0, 3, 2, 2) and argmax.dtype == np.int32
    np.testing.assert_array_equal(roi_pool_backward(out, argmax, np.zeros((0, 5)), x.shape), 0.0)
