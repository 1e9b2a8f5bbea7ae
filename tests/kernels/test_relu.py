"""minitorchseg.kernels.cpu relu entries against torch: ``relu`` and ``threshold_backward``.

ReLU is exact (a copy or a zero), so every comparison is bit for bit: any shape
(including sizes that leave a partial last chunk and more than one chunk, so the
parallel loop hands out several), strided inputs, NaN and ±inf, and the kink
itself (x = 0: torch's gradient is 0 there). Through ``F.relu``: gradcheck away
from the kink.
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import gradcheck
from minitorchseg.kernels.cpu import relu, relu_backward, relu_forward
from tests.strategies import away_from_zero, dtypes, randn, seeds, settings_fast, strided

shapes = st.sampled_from([(), (0,), (7,), (3, 5), (2, 3, 4, 5), (relu.CHUNK + 3,), (2, relu.CHUNK // 3, 2)])


def _with_specials(x, seed):
    """Some exact zeros, NaNs and infinities sprinkled in (when there is room)."""
    x = x.copy()
    flat = x.reshape(-1)
    if flat.size >= 5:
        idx = np.random.default_rng(seed).choice(flat.size, 5, replace=False)
        flat[idx] = [0.0, -0.0, np.nan, np.inf, -np.inf]
    return x


@settings_fast
@given(shape=shapes, seed=seeds, dtype=dtypes, contiguous=st.booleans())
def test_relu_kernels_match_torch_bit_for_bit(shape, seed, dtype, contiguous):
    x = _with_specials(randn(seed, shape, dtype), seed)
    g = randn(seed + 1, shape, dtype)
    if not contiguous and x.ndim:
        x, g = strided(x), strided(g)
    out = relu_forward(x)
    gx = relu_backward(g, out)

    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    ref = torch.relu(xt)
    ref.backward(torch.tensor(np.ascontiguousarray(g)))
    assert out.dtype == gx.dtype == x.dtype and out.shape == gx.shape == x.shape
    np.testing.assert_array_equal(out, ref.detach().numpy())
    np.testing.assert_array_equal(gx, xt.grad.numpy())


def test_relu_hand_example():
    """The kink and the specials spelled out, as torch: relu(−0) = −0, relu(NaN) = NaN, gradient 0 at the
    kink and grad_out at NaN (torch's ``threshold_backward`` zeroes where ``out <= 0``, which NaN is not)."""
    x = np.array([-2.0, -0.0, 0.0, 1.5, np.nan, np.inf, -np.inf])
    out = relu_forward(x)
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 1.5, np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(np.signbit(out), [False, True, False, False, False, False, False])
    np.testing.assert_array_equal(relu_backward(np.full(7, 3.0), out), [0, 0, 0, 3.0, 3.0, 3.0, 0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_relu_gradcheck(dtype):
    x = mts.tensor(away_from_zero(3, (2, 3, 4), np.float64), requires_grad=True)
    assert gradcheck(F.relu, (x,))
    t = mts.tensor(away_from_zero(4, (2, 3, 4), dtype), requires_grad=True)
    F.relu(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), (t.numpy() > 0).astype(dtype))
