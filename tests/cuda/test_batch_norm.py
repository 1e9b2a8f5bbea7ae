"""minitorchseg.kernels.cuda batch_norm entries against minitorchseg.kernels.cpu and torch.

The per-channel sums are block reductions in shared memory (float64), a
different order of additions from the CPU's sequential sweep, and on a GPU the
elementwise formulas may be fused into FMAs: so the comparison with the CPU uses
``TOL``, as the comparison with torch does.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.kernels.cpu as cpu
import minitorchseg.kernels.cuda as gpu
from tests.strategies import TOL, dtypes, randn, seeds, strided
from tests.torch_ref import upstream

from .common import dev, host

pytestmark = pytest.mark.cudasim

few = settings(max_examples=8, deadline=None)


def on(a):
    """``a`` on the device, or None."""
    return None if a is None else dev(a)


@few
@given(shape=st.sampled_from([(3, 2), (2, 3, 5), (2, 3, 3, 4), (2, 5, 1, 3)]), seed=seeds, dtype=dtypes,
       training=st.booleans(), affine=st.booleans(), contiguous=st.booleans())
def test_batch_norm_matches_cpu_and_torch(shape, seed, dtype, training, affine, contiguous):
    """More channels than blocks (2 under the simulator), so the block loop over channels strides."""
    channels = shape[1]
    x = (randn(seed, shape, dtype, scale=2.0) + dtype(1.5)).astype(dtype)
    weight = randn(seed + 1, (channels,), dtype) if affine else None
    bias = randn(seed + 2, (channels,), dtype) if affine else None
    mean = None if training else randn(seed + 3, (channels,), dtype)
    var = None if training else (np.abs(randn(seed + 4, (channels,), dtype)) + 0.5).astype(dtype)
    g = upstream(shape, dtype, seed % 1000)
    xin, gin = (x, g) if contiguous else (strided(x), strided(g))
    tol = TOL[np.dtype(dtype)]

    y, m, v, inv_std = gpu.batch_norm_forward(dev(xin), on(weight), on(bias), on(mean), on(var), 1e-5)
    gx, gw, gb = gpu.batch_norm_backward(dev(gin), dev(xin), on(weight), m, inv_std, training)
    cy, cm, cv, c_inv = cpu.batch_norm_forward(xin, weight, bias, mean, var, 1e-5)
    cgx, cgw, cgb = cpu.batch_norm_backward(gin, xin, weight, cm, c_inv, training)
    for name, ours, theirs in [("y", y, cy), ("mean", m, cm), ("var", v, cv), ("inv_std", inv_std, c_inv),
                               ("grad_x", gx, cgx), ("grad_weight", gw, cgw), ("grad_bias", gb, cgb)]:
        ours = host(ours)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (name, ours.dtype, theirs.dtype)
        np.testing.assert_allclose(ours, theirs, **tol, err_msg=name)

    xt = torch.tensor(x, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None if training else torch.tensor(mean),
                                        None if training else torch.tensor(var), wt, bt, training=training)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(host(y), yt.detach().numpy(), **tol, err_msg="forward vs torch")
    np.testing.assert_allclose(host(gx), xt.grad.numpy(), **tol, err_msg="grad_x vs torch")
    if affine:
        np.testing.assert_allclose(host(gw), wt.grad.numpy(), **tol, err_msg="grad_weight vs torch")
        np.testing.assert_allclose(host(gb), bt.grad.numpy(), **tol, err_msg="grad_bias vs torch")


@few
@given(seed=seeds, dtype=dtypes, training=st.booleans())
def test_batch_norm_relu_matches_cpu(seed, dtype, training):
    """relu=True on the GPU (batch norm, then the ReLU kernel) against the CPU's fused pass: forward and the
    three gradients."""
    shape = (2, 3, 3, 4)
    x = randn(seed, shape, dtype, scale=2.0)
    weight, bias = randn(seed + 1, (3,), dtype), randn(seed + 2, (3,), dtype)
    mean = None if training else randn(seed + 3, (3,), dtype)
    var = None if training else (np.abs(randn(seed + 4, (3,), dtype)) + 0.5).astype(dtype)
    g = upstream(shape, dtype, seed % 1000)
    y, m, v, inv_std = gpu.batch_norm_forward(dev(x), dev(weight), dev(bias), on(mean), on(var), 1e-5, relu=True)
    gx, gw, gb = gpu.batch_norm_backward(dev(g), dev(x), dev(weight), m, inv_std, training, out=y)
    cy, cm, cv, c_inv = cpu.batch_norm_forward(x, weight, bias, mean, var, 1e-5, relu=True)
    cgx, cgw, cgb = cpu.batch_norm_backward(g, x, weight, cm, c_inv, training, out=cy)
    assert (cy == 0).any() and (cy > 0).any()
    for name, ours, theirs in [("y", y, cy), ("grad_x", gx, cgx), ("grad_weight", gw, cgw), ("grad_bias", gb, cgb)]:
        np.testing.assert_allclose(host(ours), theirs, **TOL[np.dtype(dtype)], err_msg=name)


def test_batch_norm_layer_on_cuda_matches_cpu():
    """nn.BatchNorm2d in training mode on device='cuda': output, running statistics and gradients as on the CPU."""
    x = randn(0, (2, 3, 4, 5), np.float64) + 2.0
    g = upstream(x.shape, np.float64)
    results = []
    for device in ("cpu", "cuda"):
        layer = mts.nn.BatchNorm2d(3).double().to(device)
        xt = mts.tensor(x, device=device, requires_grad=True)
        y = layer(xt)
        y.backward(mts.tensor(g, device=device))
        results.append([y.numpy(), layer.running_mean.numpy(), layer.running_var.numpy(), xt.grad.numpy(),
                        layer.weight.grad.numpy(), layer.bias.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, **TOL[np.dtype(np.float64)])
