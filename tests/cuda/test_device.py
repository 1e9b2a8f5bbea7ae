"""``device='cuda'`` end to end: tensors, modules, autograd, optimisers and a small model, against ``cpu``.

Under the simulator the ``cuda`` backend keeps NumPy arrays, so elementwise
ops, reductions and matmul compute exactly what they compute on the CPU, and only
the custom kernels (conv, pooling, resizing, RoI ops, NMS) run through the CUDA
simulator. Comparisons use :data:`tests.strategies.TOL`; where a CUDA backward
uses float atomics (max-pool with overlapping windows, RoIAlign) that tolerance
also covers the reordered sums of these tiny models.
"""

from contextlib import ExitStack
from unittest import mock

import numpy as np
import pytest

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn, ops, optim
from minitorchseg.backend import get_backend
from minitorchseg.kernels.cuda import conv as cuda_conv
from minitorchseg.kernels.cuda import interpolate as cuda_interpolate
from minitorchseg.kernels.cuda import pool as cuda_pool
from tests.strategies import TOL

from .common import SIMULATED

pytestmark = pytest.mark.cudasim

F64 = TOL[np.dtype(np.float64)]


def assert_close(ours, ref, err_msg=""):
    """``ours`` equals ``ref`` within :data:`F64`, and both are finite (NaN == NaN would prove nothing)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert np.all(np.isfinite(ref)), f"{err_msg}: the CPU reference is not finite: {ref}"
    assert np.all(np.isfinite(ours)), f"{err_msg}: the cuda result is not finite: {ours}"
    np.testing.assert_allclose(ours, ref, **F64, equal_nan=False, err_msg=err_msg)


def test_tensor_to_cuda_and_back():
    a = np.arange(6.0).reshape(2, 3)
    t = mts.tensor(a, requires_grad=True)
    c = t.to("cuda")
    assert c.device == "cuda" and c.dtype == np.float64 and c.shape == (2, 3)
    assert c.is_leaf and c.requires_grad
    assert isinstance(c.numpy(), np.ndarray)
    np.testing.assert_array_equal(c.numpy(), a)
    back = c.to("cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), a)
    assert t.cuda().device == "cuda" and c.cpu().device == "cpu"
    assert mts.zeros(2, 3, device="cuda").device == "cuda"
    assert mts.randn(2, device="cuda").device == "cuda"
    assert get_backend("cuda").kernels.__name__ == "minitorchseg.kernels.cuda"
    if SIMULATED:
        assert get_backend("cuda").xp is np


def test_ops_on_cuda_match_cpu_forward_and_backward():
    """Elementwise, broadcasting, reductions, matmul, softmax and a loss, with their gradients."""
    rng = np.random.default_rng(0)
    a, b, w = rng.standard_normal((4, 3)), rng.standard_normal((3,)), rng.standard_normal((3, 5))
    target = rng.integers(0, 5, 4)
    results = {}
    for device in ("cpu", "cuda"):
        ta, tb, tw = (mts.tensor(v, device=device, requires_grad=True) for v in (a, b, w))
        h = ((ta * tb + 1.0).abs().exp().log() - (ta.abs() + 0.5).sqrt() + ta.relu()) @ tw
        loss = F.cross_entropy(h, mts.tensor(target, device=device)) + h.softmax(1).max() + h.mean()
        loss.backward()
        assert loss.device == device and ta.grad.device == device
        results[device] = [loss.numpy(), ta.grad.numpy(), tb.grad.numpy(), tw.grad.numpy()]
    for name, ours, ref in zip(("loss", "a.grad", "b.grad", "w.grad"), results["cuda"], results["cpu"]):
        assert_close(ours, ref, name)
    assert np.abs(results["cpu"][2]).min() > 0, "every b receives a gradient"


def test_mixing_devices_is_an_error():
    with pytest.raises(ValueError, match="expected all tensors on the same device"):
        mts.ones(2, device="cuda") + mts.ones(2)


def _encoder_decoder(seed: int) -> nn.Module:
    """conv-bn-relu → max-pool (indices) → conv → max-unpool → bilinear and nearest upsampling → conv-transpose."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
            self.bn = nn.BatchNorm2d(3)
            self.pool = nn.MaxPool2d(2, 2, return_indices=True)
            self.conv2 = nn.Conv2d(3, 3, 3, padding=1, groups=3)
            self.unpool = nn.MaxUnpool2d(2, 2)
            self.down = nn.MaxPool2d(3, 2, padding=1)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.near = nn.Upsample(size=(7, 6), mode="nearest")
            self.head = nn.ConvTranspose2d(3, 4, 2, stride=1, padding=0)

        def forward(self, x):
            h = self.bn(self.conv1(x)).relu()
            p, idx = self.pool(h)
            h = self.unpool(self.conv2(p), idx, output_size=h.shape[-2:])
            h = self.up(self.down(h))
            return self.head(self.near(h))

    mts.manual_seed(seed)
    return Net().to(np.float64)


def _step(model, x, y, device):
    model.to(device)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    out = model(mts.tensor(x, device=device))
    loss = F.cross_entropy(out, mts.tensor(y, device=device))
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    return out.numpy(), loss.item(), grads, model.state_dict()


def test_small_model_forward_backward_and_step_match_cpu():
    """An odd-sized 7×6 input through every kernel family, then an Adam step: cuda (simulated) equals cpu."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 7, 6))
    y = rng.integers(0, 4, (2, 8, 7))
    cpu_model, cuda_model = _encoder_decoder(0), _encoder_decoder(0)
    params = list(cuda_model.parameters())
    out_cpu, loss_cpu, grads_cpu, state_cpu = _step(cpu_model, x, y, "cpu")
    with ExitStack() as stack:  # count the CUDA kernel launches of each family
        spies = [stack.enter_context(mock.patch.object(m, "launch", wraps=m.launch))
                 for m in (cuda_conv, cuda_pool, cuda_interpolate)]
        out_cuda, loss_cuda, grads_cuda, state_cuda = _step(cuda_model, x, y, "cuda")
    assert all(spy.call_count > 0 for spy in spies), [spy.call_count for spy in spies]
    assert all(p is q for p, q in zip(params, cuda_model.parameters())), "Module.to keeps the Parameter objects"
    assert all(p.device == "cuda" for p in cuda_model.parameters())
    assert cuda_model.bn.running_mean.device == "cuda"
    assert out_cuda.shape == (2, 4, 8, 7)
    assert_close(out_cuda, out_cpu, "output")
    assert_close(loss_cuda, loss_cpu, "loss")
    for i, (ours, ref) in enumerate(zip(grads_cuda, grads_cpu)):
        assert_close(ours, ref, f"gradient {i}")
    assert state_cuda.keys() == state_cpu.keys()
    for key in state_cpu:
        assert isinstance(state_cuda[key], np.ndarray)
        assert_close(state_cuda[key], state_cpu[key], key)


def test_unet_on_cuda_matches_cpu():
    from minitorchseg.models import UNet

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 1, 8, 8))
    y = rng.integers(0, 2, (1, 8, 8))
    results = []
    for device in ("cpu", "cuda"):
        mts.manual_seed(3)
        model = UNet(num_classes=2, in_channels=1, base_channels=2, depth=1).to(np.float64)
        results.append(_step(model, x, y, device))
    (out_cpu, loss_cpu, grads_cpu, _), (out_cuda, loss_cuda, grads_cuda, _) = results
    assert_close(out_cuda, out_cpu, "output")
    assert_close(loss_cuda, loss_cpu, "loss")
    for i, (ours, ref) in enumerate(zip(grads_cuda, grads_cpu)):
        assert_close(ours, ref, f"gradient {i}")


def test_detection_ops_on_cuda_match_cpu():
    """ops.roi_align (differentiable), ops.roi_pool and ops.nms through the cuda backend."""
    rng = np.random.default_rng(4)
    feat = rng.standard_normal((1, 2, 6, 5))
    rois = np.array([[0, 0.5, 0.5, 4.0, 3.0], [0, -1.0, 2.0, 3.0, 7.0]])
    boxes = np.array([[0, 0, 4, 4], [1, 1, 5, 5], [10, 10, 12, 12]], dtype=np.float64)
    scores = np.array([0.5, 0.9, 0.1])
    results = {}
    for device in ("cpu", "cuda"):
        f = mts.tensor(feat, device=device, requires_grad=True)
        r = mts.tensor(rois, device=device)
        a = ops.roi_align(f, r, (2, 2), 1.0, 2, True)
        p = ops.roi_pool(f, r, (2, 2), 1.0)
        (a * a).sum().backward()
        keep = ops.nms(mts.tensor(boxes, device=device), mts.tensor(scores, device=device), 0.3)
        assert a.device == device and keep.device == device
        results[device] = [a.numpy(), p.numpy(), f.grad.numpy(), keep.numpy()]
    for name, ours, ref in zip(("roi_align", "roi_pool", "features.grad", "nms"), results["cuda"], results["cpu"]):
        assert_close(ours, ref, name)
