"""minitorchseg.kernels.cuda cross_entropy entries against minitorchseg.kernels.cpu and torch.

Both devices run the same per-pixel loops (``kernels/shared/cross_entropy.py``) in
the same order, so under the simulator the results equal the CPU's to ``TOL`` (a
GPU's ``exp``/``log`` round differently from the host's libm); against torch the
CPU kernels' tolerances.
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
from tests.strategies import TOL, dtypes, randn, seeds
from tests.torch_ref import upstream

from .common import dev, host

pytestmark = pytest.mark.cudasim

few = settings(max_examples=8, deadline=None)


@few
@given(shape=st.sampled_from([(5, 3), (2, 4, 3, 5), (1, 11, 7, 6)]), seed=seeds, dtype=dtypes,
       weighted=st.booleans(), log_probs_given=st.booleans())
def test_cross_entropy_matches_cpu_and_torch(shape, seed, dtype, weighted, log_probs_given):
    """More pixels than threads (64 under the simulator), so the grid-stride loop strides."""
    rng = np.random.default_rng(seed)
    x = randn(seed, shape, dtype, scale=3.0)
    target = rng.integers(0, shape[1], size=(shape[0],) + shape[2:])
    target[rng.random(target.shape) < 0.25] = 255
    weight = rng.uniform(0.5, 2.0, shape[1]).astype(dtype) if weighted else None
    g = upstream(target.shape, dtype, seed % 1000)
    tol = TOL[np.dtype(dtype)]

    losses, w, probs = gpu.cross_entropy_forward(dev(x), dev(target), None if weight is None else dev(weight), 255,
                                                 log_probs_given)
    scale = dev((g.reshape(host(w).shape) * host(w)).astype(dtype))
    gx = gpu.cross_entropy_backward(scale, dev(x) if log_probs_given else probs, dev(target), 255, log_probs_given)
    c_losses, c_w, c_probs = cpu.cross_entropy_forward(x, target, weight, 255, log_probs_given)
    c_gx = cpu.cross_entropy_backward(host(scale), x if log_probs_given else c_probs, target, 255, log_probs_given)
    pairs = [("losses", losses, c_losses), ("weights", w, c_w), ("grad_x", gx, c_gx)]
    if not log_probs_given:
        pairs.append(("probs", probs, c_probs))
    for name, ours, theirs in pairs:
        ours = host(ours)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
        np.testing.assert_allclose(ours, theirs, **tol, err_msg=name)

    xt = torch.tensor(x, requires_grad=True)
    fn = torch.nn.functional.nll_loss if log_probs_given else torch.nn.functional.cross_entropy
    ref = fn(xt, torch.tensor(target), None if weight is None else torch.tensor(weight), ignore_index=255,
             reduction="none")
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(host(losses).reshape(target.shape), ref.detach().numpy(), **tol, err_msg="vs torch")
    np.testing.assert_allclose(host(gx), xt.grad.numpy(), **tol, err_msg="grad_x vs torch")


def test_cross_entropy_on_cuda_matches_cpu_through_the_functional():
    """F.cross_entropy (weighted mean, ignored pixels) on device='cuda': loss and gradient as on the CPU."""
    x = randn(2, (2, 4, 3, 5), np.float64)
    target = np.random.default_rng(2).integers(0, 4, (2, 3, 5))
    target[0, 0] = 255
    weight = np.array([0.5, 1.0, 2.0, 1.5])
    results = []
    for device in ("cpu", "cuda"):
        xt = mts.tensor(x, device=device, requires_grad=True)
        loss = F.cross_entropy(xt, mts.tensor(target, device=device), mts.tensor(weight, device=device),
                               ignore_index=255)
        loss.backward()
        assert loss.device == device and xt.grad.device == device
        results.append([loss.numpy(), xt.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, **TOL[np.dtype(np.float64)])
