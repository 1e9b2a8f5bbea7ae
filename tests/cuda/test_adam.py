"""minitorchseg.kernels.cuda adam_step against minitorchseg.kernels.cpu and torch.

Both devices run :func:`kernels.shared.adam.adam_element` with the same scalars;
they are compared to ``TOL``, as each is with torch: a real GPU may fuse ``a·b + c``
into one FMA (tests/cuda/common.py), and the test runs there unchanged.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.strategies import TOL, dtypes, randn, seeds

from .common import dev, host

pytestmark = pytest.mark.cudasim


@settings(max_examples=6, deadline=None)
@given(shape=st.sampled_from([(5,), (3, 70)]), seed=seeds, dtype=dtypes, decoupled=st.booleans())
def test_adam_step_matches_cpu_and_torch(shape, seed, dtype, decoupled):
    """More elements than the simulator's 64 threads, so the grid-stride loop strides."""
    p, g = randn(seed, shape, dtype), randn(seed + 1, shape, dtype)
    m, v = randn(seed + 2, shape, dtype, scale=0.1), np.abs(randn(seed + 3, shape, dtype, scale=0.01))
    args = (7, 0.01, 0.9, 0.999, 1e-8, 0.05, decoupled)
    ours = [dev(a.copy()) for a in (p, m, v)]
    gpu.adam_step(ours[0], dev(g), ours[1], ours[2], *args)
    c = [a.copy() for a in (p, m, v)]
    cpu.adam_step(c[0], g, c[1], c[2], *args)
    tp = torch.nn.Parameter(torch.tensor(p))
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([tp], lr=0.01, weight_decay=0.05, foreach=False)
    opt.state[tp] = {"step": torch.tensor(6.0), "exp_avg": torch.tensor(m), "exp_avg_sq": torch.tensor(v)}
    tp.grad = torch.tensor(g)
    opt.step()
    refs = (tp.detach().numpy(), opt.state[tp]["exp_avg"].numpy(), opt.state[tp]["exp_avg_sq"].numpy())
    for name, a, b, r in zip(("param", "exp_avg", "exp_avg_sq"), ours, c, refs):
        np.testing.assert_allclose(host(a), b, **TOL[np.dtype(dtype)], err_msg=name)
        np.testing.assert_allclose(host(a), r, **TOL[np.dtype(dtype)], err_msg=name)


def test_adam_optimizer_on_cuda():
    """optim.Adam on device="cuda" runs the CUDA kernel: step 1 from zero moments moves each weight by −lr·sign(g)."""
    w = mts.nn.Parameter(mts.tensor(np.array([1.0, -2.0, 3.0]), device="cuda"))
    (w * mts.tensor(np.array([2.0, -1.0, 0.5]), device="cuda")).sum().backward()
    mts.optim.Adam([w], lr=0.1).step()
    np.testing.assert_allclose(host(w.data), [0.9, -1.9, 2.9], rtol=1e-6)
