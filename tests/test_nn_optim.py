"""nn and optim parity with torch: BatchNorm2d, Linear, state dicts, SGD/Adam/AdamW, schedulers."""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn, optim

from .strategies import randn, seeds, settings_fast


@settings_fast
@given(seed=seeds, momentum=st.sampled_from([0.1, 0.5, None]), affine=st.booleans())
def test_batchnorm2d_train_eval_and_running_stats(seed, momentum, affine):
    ours = nn.BatchNorm2d(3, momentum=momentum, affine=affine).to(np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum, affine=affine).double()
    if affine:
        w, b = randn(seed, (3,)), randn(seed + 1, (3,))
        ours.load_state_dict({**ours.state_dict(), "weight": w, "bias": b})
        theirs.weight.data[:], theirs.bias.data[:] = torch.tensor(w), torch.tensor(b)
    for step in range(3):  # three training batches update the running statistics
        x = randn(seed + 10 + step, (4, 3, 5, 2), scale=2.0) + step
        np.testing.assert_allclose(ours(mts.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-10)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-12, err_msg=name)
    ours.eval()
    theirs.eval()
    x = randn(seed + 99, (2, 3, 4, 4))
    np.testing.assert_allclose(ours(mts.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def _fused_and_one_by_one(model, twin, fused: str, x, g):
    """``model(x)`` with ``F.<fused>`` spied on, and ``twin``'s children called one by one; both backward from
    ``g``. Returns (the calls of ``F.<fused>``, (output, input) of the model, (output, input) of the twin)."""
    with mock.patch.object(F, fused, wraps=getattr(F, fused)) as spy:
        xt = mts.tensor(x, requires_grad=True)
        y = model(xt)
        y.backward(mts.tensor(g))
    xu = mts.tensor(x, requires_grad=True)
    h = xu
    for m in twin:
        h = m(h)
    h.backward(mts.tensor(g))
    return spy.call_count, (y, xt), (h, xu)


@pytest.mark.parametrize("training", [True, False])
def test_sequential_fuses_batchnorm_then_relu(training):
    """Sequential runs a BatchNorm2d followed by a ReLU as one batch_norm_relu call: the output, every gradient
    and the running statistics are those of calling the children one by one, bit for bit, in training and
    eval; the children and the state-dict keys are unchanged. A lone BatchNorm2d, or a pair with an
    instance-level forward (a recording wrapper), is not fused (the 1x1 conv and its ReLU run as conv2d_relu:
    the next test)."""
    x = randn(0, (2, 3, 6, 5), np.float64)
    g = randn(1, (2, 4, 6, 5), np.float64)
    mts.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.Conv2d(4, 4, 1), nn.ReLU(), nn.BatchNorm2d(4)).double()
    model.train(training)
    twin = nn.Sequential(*[type(m)(*args) for m, args in zip(model, [(3, 4, 3, 1, 1), (4,), (), (4, 4, 1), (), (4,)])])
    twin = twin.double()
    twin.load_state_dict(model.state_dict())
    twin.train(training)
    assert list(model.state_dict()) == list(twin.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "3.weight", "3.bias", "5.weight", "5.bias", "5.running_mean", "5.running_var", "5.num_batches_tracked"]
    calls, (y, xt), (h, xu) = _fused_and_one_by_one(model, twin, "batch_norm_relu", x, g)
    assert calls == 1
    np.testing.assert_array_equal(y.numpy(), h.numpy())
    np.testing.assert_array_equal(xt.grad.numpy(), xu.grad.numpy())
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=name)
    for (name, b), (_, c) in zip(model.named_buffers(), twin.named_buffers()):
        np.testing.assert_array_equal(b.numpy(), c.numpy(), err_msg=name)
    model[2].__dict__["forward"] = model[2].forward        # a recording wrapper, as models.summary installs
    with mock.patch.object(F, "batch_norm_relu", wraps=F.batch_norm_relu) as spy:
        model(mts.tensor(x))
    assert spy.call_count == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_fuses_conv_then_relu(dtype):
    """Sequential runs a Conv2d followed by a ReLU as one conv2d_relu call (ReLU in the convolution's kernel):
    the output and every gradient are those of the children one by one, bit for bit, on the im2col route
    (3 -> 8 channels), Winograd's (8 -> 8, 3x3) and with a reflect-padded conv; a wrapped conv is not fused."""
    x = randn(0, (2, 3, 9, 7), dtype)
    g = randn(1, (2, 8, 9, 7), dtype)
    mts.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(inplace=True), nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU())
    model = model.to(dtype)
    twin = nn.Sequential(*[type(m)(*args, **kw) for m, (args, kw) in zip(model, [
        ((3, 8, 3, 1, 1), {}), ((), {}), ((8, 8, 3, 1, 1), {}), ((), {}),
        ((8, 8, 3, 1, 1), {"padding_mode": "reflect"}), ((), {})])]).to(dtype)
    twin.load_state_dict(model.state_dict())
    calls, (y, xt), (h, xu) = _fused_and_one_by_one(model, twin, "conv2d_relu", x, g)
    assert calls == 3
    assert (y.numpy() == 0).any() and (y.numpy() > 0).any()
    np.testing.assert_array_equal(y.numpy(), h.numpy())
    np.testing.assert_array_equal(xt.grad.numpy(), xu.grad.numpy())
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=name)
    model[0].__dict__["forward"] = model[0].forward        # a recording wrapper, as models.summary installs
    with mock.patch.object(F, "conv2d_relu", wraps=F.conv2d_relu) as spy:
        model(mts.tensor(x))
    assert spy.call_count == 2


def test_module_registration_names_and_torch_state_dict_keys():
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.ReLU(), lib.nn.Sequential(lib.nn.BatchNorm2d(3)))

    ours, theirs = build(mts), build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    ours.eval()
    assert not ours[2][0].training


def test_load_state_dict_errors_name_the_key():
    model = nn.Linear(4, 3)
    with pytest.raises(KeyError, match="missing keys \\['bias'\\]"):
        model.load_state_dict({"weight": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="'weight' has shape \\(4, 3\\).*expects \\(3, 4\\)"):
        model.load_state_dict({"weight": np.zeros((4, 3)), "bias": np.zeros(3)})
    result = model.load_state_dict({"weight": np.ones((3, 4)), "extra": np.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.weight.numpy(), 1.0)


def test_linear_default_init_matches_torch_bounds():
    mts.manual_seed(0)
    layer = nn.Linear(50, 40)
    bound = 1 / np.sqrt(50)  # kaiming_uniform(a=√5) gives exactly 1/sqrt(fan_in)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.9 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound
    assert layer.weight.dtype == np.float32


def _problem(lib, seed):
    """A small least-squares + cross-entropy problem, identical in both libraries."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8)
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(3)
    return x, y, w, b


OPTIMIZERS = {
    "sgd": (lambda p, lib: lib.optim.SGD(p, lr=0.1), {}),
    "sgd_momentum_wd": (lambda p, lib: lib.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2), {}),
    "sgd_nesterov": (lambda p, lib: lib.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), {}),
    "adam": (lambda p, lib: lib.optim.Adam(p, lr=0.01), {}),
    "adam_wd": (lambda p, lib: lib.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1), {}),
    "adamw": (lambda p, lib: lib.optim.AdamW(p, lr=0.01), {}),
    "adamw_wd": (lambda p, lib: lib.optim.AdamW(p, lr=0.02, weight_decay=0.3, eps=1e-6), {}),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trajectory_matches_torch(name):
    make, _ = OPTIMIZERS[name]
    x, y, w, b = _problem(None, 0)
    ours_params = [nn.Parameter(w.copy()), nn.Parameter(b.copy())]
    torch_params = [torch.nn.Parameter(torch.tensor(w.copy())), torch.nn.Parameter(torch.tensor(b.copy()))]
    ours_opt, torch_opt = make(ours_params, mts), make(torch_params, torch)
    for _ in range(20):
        ours_opt.zero_grad()
        F.cross_entropy(F.linear(mts.tensor(x), *ours_params), mts.tensor(y)).backward()
        ours_opt.step()
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(torch.nn.functional.linear(torch.tensor(x), *torch_params),
                                          torch.tensor(y)).backward()
        torch_opt.step()
    for p, q in zip(ours_params, torch_params):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", ["step", "poly"])
def test_lr_schedulers_match_torch(kind):
    p, q = nn.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    ours_opt, torch_opt = optim.SGD([p], lr=0.1), torch.optim.SGD([q], lr=0.1)
    if kind == "step":
        ours, theirs = optim.lr_scheduler.StepLR(ours_opt, 3, 0.5), torch.optim.lr_scheduler.StepLR(torch_opt, 3, 0.5)
    else:
        ours = optim.lr_scheduler.PolynomialLR(ours_opt, total_iters=7, power=0.9)
        theirs = torch.optim.lr_scheduler.PolynomialLR(torch_opt, total_iters=7, power=0.9)
    for _ in range(10):
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-15, abs=1e-18)


def test_optimizer_state_dict_round_trip(tmp_path):
    p = nn.Parameter(np.ones(3))
    opt = optim.Adam([p], lr=0.1)
    for _ in range(3):
        p.grad = mts.tensor(np.array([1.0, -2.0, 3.0]))
        opt.step()
    mts.save(opt.state_dict(), tmp_path / "opt.npz")
    q = nn.Parameter(p.numpy().copy())
    restored = optim.Adam([q], lr=0.5)
    restored.load_state_dict(mts.load(tmp_path / "opt.npz"))
    assert restored.param_groups[0]["lr"] == 0.1
    for opt_, param in ((opt, p), (restored, q)):
        param.grad = mts.tensor(np.array([0.5, 0.5, 0.5]))
        opt_.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_module_to_float64_keeps_parameter_objects():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(2))
    params = list(model.parameters())
    model.to(np.float64)
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].num_batches_tracked.dtype == np.int64


def test_cuda_without_gpu_or_simulator_says_what_is_missing(monkeypatch):
    from minitorchseg import backend

    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr(backend, "_BACKENDS", {k: v for k, v in backend._BACKENDS.items() if k == "cpu"})
    if backend.cuda_available():
        pytest.skip("a real GPU is present")
    with pytest.raises(RuntimeError, match="device 'cuda' is not available: .*(CuPy|CUDA)"):
        mts.zeros(2, device="cuda")
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda', got 'tpu'"):
        mts.zeros(2, device="tpu")
