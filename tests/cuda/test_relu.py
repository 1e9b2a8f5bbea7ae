"""minitorchseg.kernels.cuda relu entries against minitorchseg.kernels.cpu and torch.

ReLU is exact, so both devices must agree bit for bit, with each other and with
torch, on any shape (more elements than the simulator's 64 threads, so the
grid-stride loop strides), NaN and ±inf included.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.strategies import dtypes, randn, seeds

from .common import dev, host

pytestmark = pytest.mark.cudasim


@settings(max_examples=8, deadline=None)
@given(shape=st.sampled_from([(0,), (5,), (3, 70), (2, 3, 4, 5)]), seed=seeds, dtype=dtypes)
def test_relu_matches_cpu_and_torch(shape, seed, dtype):
    x = randn(seed, shape, dtype)
    if x.size >= 3:
        x.reshape(-1)[:3] = [np.nan, np.inf, -0.0]
    g = randn(seed + 1, shape, dtype)
    out = gpu.relu_forward(dev(x))
    gx = gpu.relu_backward(dev(g), out)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.relu(xt)
    ref.backward(torch.tensor(g))
    for name, ours, c, t in (("out", out, cpu.relu_forward(x), ref.detach().numpy()),
                             ("grad_x", gx, cpu.relu_backward(g, cpu.relu_forward(x)), xt.grad.numpy())):
        np.testing.assert_array_equal(host(ours), c, err_msg=name)
        np.testing.assert_array_equal(host(ours), t, err_msg=name)


def test_relu_functional_on_cuda():
    x = mts.tensor(randn(0, (2, 3, 5), np.float32), device="cuda", requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.numpy() > 0).astype(np.float32))
