"""``minitorchseg.export``: every model to PyTorch and back, optimiser state both ways, and the errors.

For each model (FCN-32s/16s/8s, U-Net with and without batch norm and bilinear
upsampling, SegNet, SegNet-Basic), with batch-norm statistics randomised away
from their 1/0 defaults:

* ours → ``to_torch`` → ``from_torch`` is bit-identical in every weight and
  buffer, in float32 and float64, and the twin's state dict has our keys in our
  order;
* the twin's outputs equal ours (float64 1e-8, float32 1e-4 relative), in eval
  and train mode, and the train-mode pass moves the running statistics alike;
* one Adam step on each side from the same exported state (weights and
  optimiser moments) gives the same weights to 1e-6.

Also: AdamW and SGD state conversion, ``import minitorchseg`` without torch,
the errors (an unsupported model, a missing or mis-shaped key, torch missing),
the command line end to end (train here, one epoch in PyTorch, import, ``eval``
gives PyTorch's metrics) and Mask R-CNN to torchvision's ``MaskRCNN`` and back.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import export
from minitorchseg.export import (
    TWINS,
    TorchUNet,
    from_torch,
    model_arguments,
    optimizer_from_torch,
    optimizer_state_from_torch,
    optimizer_state_to_torch,
    optimizer_to_torch,
    to_torch,
)
from minitorchseg.models import fcn8s, fcn16s, fcn32s, segnet, segnet_basic, unet
from minitorchseg.optim import SGD, Adam, AdamW
from tests.strategies import seeds, settings_fast

# Relative tolerances of the outputs: max |ours − torch| ≤ TOL · max |torch|. Two correct implementations of a
# 20-layer network agree to ~1e-12 in float64 and ~1e-5 in float32 (tests/test_models.py measures the same).
TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}
# One optimiser step, float64, lr 1e-2: the weights after it agree to 1e-6 absolute (the step itself is ~1e-2,
# so this checks the update to 1e-4 of its size; measured differences are ~1e-15).
STEP_TOL = 1e-6
LR = 1e-2
IGNORE = 255

FCN_CH = (4, 6, 8, 8, 10, 12)
SEG_CH = (4, 6, 8, 8, 10)

# name: (builder, input size H, W)
CASES = {
    "fcn32s": (lambda: fcn32s(3, 2, channels=FCN_CH, dropout=0.0), (16, 13)),
    "fcn16s_bn": (lambda: fcn16s(3, 2, channels=FCN_CH, batch_norm=True, dropout=0.0), (16, 13)),
    "fcn8s_learned_up": (lambda: fcn8s(3, 2, channels=FCN_CH, dropout=0.0, learn_upsampling=True), (13, 16)),
    "unet": (lambda: unet(3, 2, base_channels=4, depth=3), (16, 19)),
    "unet_bilinear_no_bn": (lambda: unet(3, 2, base_channels=4, depth=2, bilinear=True, batch_norm=False), (11, 8)),
    "segnet": (lambda: segnet(3, 2, channels=SEG_CH), (35, 32)),
    "segnet_basic": (lambda: segnet_basic(3, 2, channels=4, kernel_size=5), (16, 17)),
}
# Models whose convolution bias feeds a train-mode batch norm: the batch mean removes it, so its gradient is
# round-off on both sides (~1e-17), and Adam divides it by its own root mean square: a ±lr step of either sign.
# Their step from each side's own gradient is compared in eval mode (batch norm by running statistics: the
# bias has a real gradient); every model's train-mode step is compared with the gradient handed over.
BIAS_BEFORE_BATCH_NORM = {"fcn16s_bn", "segnet"}


def build(case: str, dtype=np.float32, seed: int = 0):
    """Our model with every weight random and batch-norm statistics away from 1/0, in ``dtype``."""
    mts.manual_seed(seed)
    model = CASES[case][0]()
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("running_var") or (key.endswith("weight") and value.ndim == 1):
            state[key] = (0.5 + rng.random(value.shape)).astype(value.dtype)
        elif key.endswith("num_batches_tracked"):
            state[key] = np.array(rng.integers(1, 100), dtype=value.dtype)
        else:
            state[key] = (0.2 * rng.standard_normal(value.shape)).astype(value.dtype)
    model.load_state_dict(state)
    return model.to(dtype)


def _input(case: str, dtype, seed: int = 0, batch: int = 2):
    h, w = CASES[case][1]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 2, h, w)).astype(dtype)
    t = rng.integers(0, 3, size=(batch, h, w))
    t[rng.random(t.shape) < 0.2] = IGNORE
    return x, t.astype(np.int64)


def assert_close(ours: np.ndarray, ref: np.ndarray, tol: float, what: str) -> None:
    """max |ours − ref| ≤ tol · max |ref|."""
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), 1e-30)
    err = float(np.abs(ours - ref).max())
    assert err <= tol * scale, f"{what}: max abs difference {err:.3e}, max |ref| {scale:.3e}"


def _weights(module) -> dict[str, np.ndarray]:
    return {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else v) for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------------------- weights
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_is_bit_identical(case, dtype):
    ours = build(case, dtype)
    before = ours.state_dict()
    twin = to_torch(ours)
    assert type(twin) is TWINS[model_arguments(ours)[0]]
    theirs = twin.state_dict()
    assert list(theirs) == list(before)   # the same keys, in the same order
    for key, value in before.items():
        assert theirs[key].numpy().dtype == value.dtype, key
        np.testing.assert_array_equal(theirs[key].numpy(), value, err_msg=key)
    for (name, p), (tname, q) in zip(ours.named_parameters(), twin.named_parameters(), strict=True):
        assert name == tname and p.requires_grad == q.requires_grad, name
    back = from_torch(twin)
    assert type(back) is type(ours) and model_arguments(back) == model_arguments(ours)
    after = back.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].dtype == value.dtype, key
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    assert [p.requires_grad for p in back.parameters()] == [p.requires_grad for p in ours.parameters()]


def test_fcn_frozen_upsampling_stays_frozen_both_ways():
    ours = fcn8s(3, channels=FCN_CH)
    twin = to_torch(ours)
    assert not twin.upscore8.weight.requires_grad and twin.score_fr.weight.requires_grad
    back = from_torch(twin)
    assert not back.upscore8.weight.requires_grad and back.score_fr.weight.requires_grad


def test_from_a_state_dict_by_name_or_into_a_model_and_mode_follows_the_twin():
    ours = build("unet", np.float64)
    twin = to_torch(ours).eval()
    name, kwargs = model_arguments(ours)
    by_name = from_torch(twin.state_dict(), name, **kwargs)
    into = from_torch(twin.state_dict(), unet(3, 2, base_channels=4, depth=3))
    for model in (by_name, into):
        assert model.training   # a state dict carries no mode: as built
        for key, value in ours.state_dict().items():
            np.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert not from_torch(twin).training


def test_a_fresh_twin_builds_from_our_arguments_and_initialises_like_ours():
    """A twin built directly (as a user of PyTorch would) has our state-dict layout and FCN's fixed upsampling."""
    for name, twin_class in TWINS.items():
        kwargs = dict(num_classes=3, in_channels=2)
        kwargs.update({"fcn32s": dict(width=1 / 16), "fcn16s": dict(width=1 / 16), "fcn8s": dict(width=1 / 16),
                       "unet": dict(base_channels=4, depth=2), "segnet": dict(width=1 / 16),
                       "segnet_basic": dict(channels=4)}[name])
        twin = twin_class(**kwargs)
        ours = mts.models.get_model(name, **kwargs)
        assert {k: tuple(v.shape) for k, v in twin.state_dict().items()} == \
            {k: v.shape for k, v in ours.state_dict().items()}, name
        assert twin.model_name == name
        assert model_arguments(from_torch(twin)) == model_arguments(ours)
    fcn = TWINS["fcn8s"](4, width=1 / 16)
    np.testing.assert_array_equal(fcn.upscore2.weight.detach().numpy(), mts.models.bilinear_kernel(4, 4, 4))
    assert not fcn.score_pool3.weight.detach().numpy().any()


# ----------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_twin_outputs_equal_ours_in_eval_and_train_mode(case, dtype):
    ours = build(case, dtype)
    twin = to_torch(ours)
    x, _ = _input(case, dtype)
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        twin.train(ours.training)
        with mts.no_grad():
            out = ours(mts.tensor(x)).numpy()
        with torch.no_grad():
            ref = twin(torch.from_numpy(x)).numpy()
        assert out.shape == ref.shape == (2, 3) + CASES[case][1]
        assert out.dtype == ref.dtype == dtype
        assert_close(out, ref, TOL[np.dtype(dtype)], f"{case} {mode} output")
    theirs = _weights(twin)   # the train-mode pass updated the running statistics alike
    for key, value in ours.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(value) == int(theirs[key]), key
        elif key.endswith(("running_mean", "running_var")):
            assert_close(value, theirs[key], TOL[np.dtype(dtype)], f"{case} {key}")


# ----------------------------------------------------------------------------------------- one Adam step
def _trained(case: str, steps: int = 2):
    """A float64 model after ``steps`` Adam steps of ours (so that the moments and the step count are not zero)."""
    ours = build(case, np.float64).train()
    opt = Adam(ours.parameters(), lr=LR, weight_decay=1e-3)
    for s in range(steps):
        x, t = _input(case, np.float64, seed=10 + s)
        opt.zero_grad()
        F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE).backward()
        opt.step()
    return ours, opt


def _compare_weights(ours, twin, what: str) -> None:
    theirs = _weights(twin)
    for key, value in ours.state_dict().items():
        err = float(np.abs(value - theirs[key]).max()) if value.size else 0.0
        assert err <= STEP_TOL, f"{what} {key}: weights differ by {err:.3e} after one step"


@pytest.mark.parametrize("case", list(CASES))
def test_one_adam_step_on_each_side_from_the_exported_state_gives_the_same_weights(case):
    ours, opt = _trained(case)
    twin = to_torch(ours)
    torch_opt = optimizer_to_torch(opt, twin)
    assert torch_opt.state_dict()["param_groups"][0]["weight_decay"] == 1e-3
    assert len(torch_opt.state) == len(opt.state) > 0
    mode = "eval" if case in BIAS_BEFORE_BATCH_NORM else "train"
    getattr(ours, mode)()
    twin.train(ours.training)
    x, t = _input(case, np.float64, seed=20)
    before = ours.state_dict()
    opt.zero_grad()
    F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE).backward()
    opt.step()
    torch_opt.zero_grad()
    TF.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(t), ignore_index=IGNORE).backward()
    torch_opt.step()
    moved = max(float(np.abs(v - before[k]).max()) for k, v in ours.state_dict().items() if v.dtype.kind == "f")
    assert moved > 100 * STEP_TOL   # the step did move the weights
    _compare_weights(ours, twin, f"{case} ({mode} mode)")


@pytest.mark.parametrize("case", sorted(BIAS_BEFORE_BATCH_NORM))
def test_one_adam_step_in_train_mode_with_the_same_gradient(case):
    """Train mode for the models left to eval mode above: ours' gradient handed to the twin's parameters."""
    ours, opt = _trained(case)
    twin = to_torch(ours)
    torch_opt = optimizer_to_torch(opt, twin)
    x, t = _input(case, np.float64, seed=20)
    opt.zero_grad()
    F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE).backward()
    with torch.no_grad():
        twin(torch.from_numpy(x))   # the same train-mode update of the running statistics
    for p, q in zip(ours.parameters(), twin.parameters(), strict=True):
        q.grad = None if p.grad is None else torch.from_numpy(p.grad.numpy().copy())
    opt.step()
    torch_opt.step()
    _compare_weights(ours, twin, case)


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_adamw_and_sgd_one_step_and_state_round_trip(kind):
    ours = build("segnet_basic", np.float64)
    make = {"adamw": lambda ps: AdamW(ps, lr=LR, betas=(0.8, 0.99), weight_decay=0.05),
            "sgd": lambda ps: SGD(ps, lr=LR, momentum=0.9, weight_decay=1e-3, nesterov=True)}[kind]
    opt = make(ours.parameters())
    for s in range(3):
        x, t = _input("segnet_basic", np.float64, seed=30 + s)
        opt.zero_grad()
        F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE).backward()
        if s < 2:
            opt.step()
    twin = to_torch(ours)
    torch_opt = optimizer_to_torch(opt, twin)
    assert type(torch_opt) is {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[kind]
    back = optimizer_from_torch(torch_opt, from_torch(twin))   # before any step on torch's side: bit-identical
    mine, theirs = opt.state_dict(), back.state_dict()
    assert type(back) is type(opt) and mine["param_groups"] == theirs["param_groups"]
    assert sorted(mine["state"]) == sorted(theirs["state"]) == list(range(len(list(ours.parameters()))))
    for index, values in mine["state"].items():
        assert sorted(values) == sorted(theirs["state"][index])
        for key, value in values.items():
            np.testing.assert_array_equal(theirs["state"][index][key], value, err_msg=f"{index} {key}")
    for p, q in zip(ours.parameters(), twin.parameters(), strict=True):
        q.grad = torch.from_numpy(p.grad.numpy().copy())
    opt.step()
    torch_opt.step()
    _compare_weights(ours, twin, kind)


@settings_fast
@given(seed=seeds, kind=st.sampled_from(["adam", "adamw", "sgd"]), steps=st.integers(0, 5),
       groups=st.integers(1, 3))
def test_optimizer_state_dict_round_trip_through_torchs_format(seed, kind, steps, groups):
    """ours → torch's format → torch's load_state_dict/state_dict → ours: the same arrays, steps and groups."""
    rng = np.random.default_rng(seed)
    params = [mts.nn.Parameter(rng.standard_normal(n).astype(np.float32)) for n in rng.integers(1, 5, size=4)]
    split = np.array_split(np.arange(4), groups)
    opt = {"adam": Adam, "adamw": AdamW, "sgd": lambda ps: SGD(ps, lr=0.1, momentum=0.5)}[kind](
        [{"params": [params[i] for i in part], "lr": float(rng.uniform(0.01, 0.1))} for part in split])
    for _ in range(steps):
        for p in params[::2]:
            p.grad = mts.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    torch_params = [torch.nn.Parameter(torch.zeros(p.shape)) for p in params]
    torch_opt = getattr(torch.optim, {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}[kind])(
        [{"params": [torch_params[i] for i in part]} for part in split])
    torch_opt.load_state_dict(optimizer_state_to_torch(opt.state_dict(), kind))
    back = optimizer_state_from_torch(torch_opt.state_dict())   # the kind read from the groups
    mine = opt.state_dict()
    assert back["param_groups"] == mine["param_groups"]
    assert sorted(back["state"]) == sorted(mine["state"])
    for index, values in mine["state"].items():
        for key, value in values.items():
            if key == "step":
                assert back["state"][index][key] == value and isinstance(back["state"][index][key], int)
            else:
                np.testing.assert_array_equal(back["state"][index][key], value)


# ----------------------------------------------------------------------------------------- torch stays optional
def test_import_minitorchseg_does_not_import_torch():
    code = ("import sys, minitorchseg, minitorchseg.models, minitorchseg.models.detection, minitorchseg.optim, "
            "minitorchseg.data, minitorchseg.metrics, minitorchseg.ops, minitorchseg.train, minitorchseg.cli; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_torch_the_export_module_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now raises ImportError, as if not installed
    monkeypatch.delitem(sys.modules, "minitorchseg.export")
    with pytest.raises(ImportError, match=r'pip install "minitorchseg\[torch\]"'):
        importlib.import_module("minitorchseg.export")


# ----------------------------------------------------------------------------------------- bad input
def test_unsupported_model_is_a_type_error_naming_the_supported_ones():
    with pytest.raises(TypeError, match=r"no PyTorch twin for a Conv2d.*FCN32s, FCN16s, FCN8s, UNet, SegNet"):
        to_torch(mts.nn.Conv2d(1, 1, 3))
    with pytest.raises(TypeError, match="Linear is not one of minitorchseg's twins.*model="):
        from_torch(torch.nn.Linear(2, 2))


def test_state_dict_with_a_missing_unexpected_or_misshaped_key_names_it():
    twin = TorchUNet(3, 2, base_channels=4, depth=2)
    state = twin.state_dict()
    model = unet(3, 2, base_channels=4, depth=2)
    before = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "up.1.conv.0.weight"}
    with pytest.raises(ValueError, match=r"no 'up\.1\.conv\.0\.weight' \(shape \(4, 8, 3, 3\) expected\)"):
        from_torch(missing, model)
    misshaped = {**state, "outc.weight": torch.zeros(3, 5, 1, 1)}
    with pytest.raises(ValueError, match=r"'outc\.weight' has shape \(3, 5, 1, 1\).*expects \(3, 4, 1, 1\)"):
        from_torch(misshaped, model)
    with pytest.raises(ValueError, match=r"key 'extra\.weight', which the model does not have"):
        from_torch({**state, "extra.weight": torch.zeros(1)}, model)
    for key, value in before.items():   # nothing copied by a failed call
        np.testing.assert_array_equal(model.state_dict()[key], value)
    with pytest.raises(ValueError, match=r"'outc\.weight' has shape \(3, 4, 1, 1\).*expects \(5, 4, 1, 1\)"):
        from_torch(state, "unet", num_classes=5, in_channels=2, base_channels=4, depth=2)


def test_from_torch_argument_errors():
    state = TorchUNet(3, 2, base_channels=4, depth=2).state_dict()
    with pytest.raises(TypeError, match="does not say which model.*model="):
        from_torch(state)
    with pytest.raises(TypeError, match="expected a torch.nn.Module or a state dict.*list"):
        from_torch([1, 2], "unet", num_classes=3)
    with pytest.raises(ValueError, match="unknown model 'deeplab'"):
        from_torch(state, "deeplab", num_classes=3)
    with pytest.raises(TypeError, match=r"model arguments \['depth'\] given with an already built model"):
        from_torch(state, unet(3, 2, base_channels=4, depth=2), depth=2)


def test_optimizer_conversion_errors():
    model = unet(3, 2, base_channels=4, depth=1)
    twin = to_torch(model)
    with pytest.raises(TypeError, match="RMSprop is not supported; supported: Adam, AdamW and SGD"):
        optimizer_from_torch(torch.optim.RMSprop(twin.parameters()), model)
    with pytest.raises(ValueError, match="holds 3 parameters, the twin has"):
        optimizer_to_torch(Adam(list(model.parameters())[:3]), twin)
    amsgrad = torch.optim.Adam(twin.parameters(), amsgrad=True).state_dict()
    with pytest.raises(ValueError, match="group 0 has amsgrad=True; minitorchseg's Adam has only amsgrad=False"):
        optimizer_state_from_torch(amsgrad)
    decoupled = torch.optim.Adam(twin.parameters(), weight_decay=0.1, decoupled_weight_decay=True).state_dict()
    assert optimizer_state_from_torch(decoupled)["param_groups"][0]["weight_decay"] == 0.1   # read as AdamW
    with pytest.raises(ValueError, match="decoupled_weight_decay=True; minitorchseg's Adam has only .*=False"):
        optimizer_state_from_torch(decoupled, "adam")
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        optimizer_state_to_torch(Adam(model.parameters()).state_dict(), "lamb")


# ----------------------------------------------------------------------------------------- ONNX (optional)
@pytest.mark.parametrize("case", ["unet", "segnet"])
def test_onnx_export_through_torch(tmp_path, case):
    """The graph passes ONNX's checker and, where onnxruntime is installed, gives our outputs at another size too."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    model = build(case, np.float32).eval()
    path = tmp_path / f"{case}.onnx"
    x, _ = _input(case, np.float32, batch=1)
    export.to_onnx(model, path, x.shape)
    onnx.checker.check_model(onnx.load(str(path)))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h, w = CASES[case][1]
    for shape in (x.shape, (2, 2, h + 3, w + 1)):   # batch, height and width are dynamic
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        (out,) = session.run(None, {"image": x})
        with mts.no_grad():
            ref = model(mts.tensor(x)).numpy()
        assert_close(out, ref, TOL[np.dtype(np.float32)], f"{case} onnxruntime {shape}")


def test_onnx_without_onnx_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(ImportError, match="to_onnx needs onnx.*pip install onnx"):
        export.to_onnx(unet(3, 2, base_channels=4, depth=1), "unused.onnx", (1, 2, 8, 8))


# ----------------------------------------------------------------------------------------- command line
CLI_DATA = "shapes:size=16,train=12,val=4,test=4"
CLI_MODEL = ["--model", "unet", "--model-arg", "base_channels=4", "--model-arg", "depth=1"]


def _cli(argv, capsys):
    """``main(argv)`` → ``(status, stdout, stderr)``."""
    from minitorchseg.cli import main

    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _torch_epoch_and_metrics(pt_in, pt_out) -> dict:
    """The PyTorch side, as a user would write it: the twin and its optimiser from the exported file, one epoch
    over the training split, the validation metrics from a confusion matrix, the file written back."""
    from minitorchseg.data.spec import open_split, parse_data_spec

    ckpt = torch.load(pt_in, map_location="cpu", weights_only=True)
    twin = export.TWINS[ckpt["model"]["name"]](**ckpt["model"]["kwargs"])
    twin.load_state_dict(ckpt["state_dict"])
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[ckpt["optimizer"]["name"]](twin.parameters())
    opt.load_state_dict(ckpt["optimizer"]["state_dict"])
    data, cfg = ckpt["data"], ckpt["config"]
    mean, std = torch.tensor(data["mean"]).view(1, 3, 1, 1), torch.tensor(data["std"]).view(1, 3, 1, 1)
    spec = parse_data_spec(data["spec"])

    def batches(split, size):
        items = open_split(spec, split)
        for start in range(0, len(items), size):
            chunk = [items[i] for i in range(start, min(start + size, len(items)))]
            images = torch.from_numpy(np.stack([im for im, _ in chunk])).permute(0, 3, 1, 2).float()
            yield (images / 255 - mean) / std, torch.from_numpy(np.stack([m for _, m in chunk]).astype(np.int64))

    ignore = -100 if data["ignore_index"] is None else data["ignore_index"]   # torch's default: nothing ignored
    twin.train()
    for x, y in batches("train", int(cfg["batch_size"])):
        opt.zero_grad()
        TF.cross_entropy(twin(x), y, ignore_index=ignore).backward()
        opt.step()
    twin.eval()
    c = int(data["num_classes"])
    matrix = torch.zeros(c * c, dtype=torch.int64)
    with torch.no_grad():
        for x, y in batches("val", 8):
            pred = twin(x).argmax(dim=1)
            keep = y != ignore
            matrix += torch.bincount(y[keep] * c + pred[keep], minlength=c * c)
    matrix = matrix.view(c, c).double()
    tp = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    ckpt.update(state_dict=twin.state_dict(), epoch=ckpt["epoch"] + 1)
    ckpt["optimizer"]["state_dict"] = opt.state_dict()
    torch.save(ckpt, pt_out)
    return {"matrix": matrix.long().numpy(), "miou": float(iou.mean()),
            "pixel_accuracy": float(tp.sum() / matrix.sum())}


def test_cli_train_export_one_epoch_in_pytorch_import_eval(tmp_path, capsys):
    run = tmp_path / "run"
    status, _, err = _cli(["train", *CLI_MODEL, "--data", CLI_DATA, "--epochs", 1, "--batch-size", 4,
                           "--out", run, "--quiet"], capsys)
    assert status == 0, err
    status, out, err = _cli(["export", run / "checkpoint.npz", tmp_path / "exported.pt"], capsys)
    assert status == 0, err
    assert "unet after 1 epoch(s)" in out and "optimizer adam" in out
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)
    saved = mts.load(run / "checkpoint.npz")
    assert list(exported["state_dict"]) == list(saved["model_state"])
    for key, value in saved["model_state"].items():
        np.testing.assert_array_equal(exported["state_dict"][key].numpy(), value, err_msg=key)

    torch_metrics = _torch_epoch_and_metrics(tmp_path / "exported.pt", tmp_path / "trained.pt")

    (tmp_path / "back").mkdir()
    back = tmp_path / "back" / "checkpoint.npz"
    status, out, err = _cli(["import", tmp_path / "trained.pt", back], capsys)
    assert status == 0, err
    assert "unet after 2 epoch(s)" in out
    status, out, err = _cli(["eval", back, "--split", "val", "--quiet"], capsys)
    assert status == 0, err
    printed = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.startswith(("mIoU", "pixel"))}
    assert printed == {"mIoU": f"{torch_metrics['miou']:.4f}", "pixel": f"{torch_metrics['pixel_accuracy']:.4f}"}
    from minitorchseg.data.spec import open_split
    from minitorchseg.train import evaluate, load_checkpoint

    model, ckpt = load_checkpoint(back)
    results = evaluate(model, open_split(CLI_DATA, "val"), mean=ckpt["data"]["mean"], std=ckpt["data"]["std"])
    np.testing.assert_array_equal(results["matrix"], torch_metrics["matrix"])
    # the PyTorch optimiser state came back: the run continues here
    status, _, err = _cli(["train", "--out", tmp_path / "back", "--resume", "--epochs", 3, "--quiet"], capsys)
    assert status == 0, err
    assert mts.load(back)["epoch"] == 3


def test_cli_export_and_import_errors(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _cli(["train", *CLI_MODEL, "--data", CLI_DATA, "--epochs", 1, "--batch-size", 4, "--out", run,
                 "--quiet"], capsys)[0] == 0
    ckpt = mts.load(run / "checkpoint.npz")
    status, _, err = _cli(["export", run / "checkpoint.npz", run / "checkpoint.npz"], capsys)
    assert status == 1 and "exists already: pass --force" in err
    foreign = dict(ckpt, model={"name": "mask_rcnn", "kwargs": {"num_classes": 3}})
    mts.save(foreign, tmp_path / "foreign.npz")
    status, _, err = _cli(["export", tmp_path / "foreign.npz", tmp_path / "f.pt"], capsys)
    assert status == 1 and "holds a 'mask_rcnn' model, which has no PyTorch twin" in err
    broken = dict(ckpt, model_state={k: v for k, v in ckpt["model_state"].items() if k != "outc.bias"})
    mts.save(broken, tmp_path / "broken.npz")
    status, _, err = _cli(["export", tmp_path / "broken.npz", tmp_path / "b.pt"], capsys)
    assert status == 1 and "outc.bias" in err
    assert _cli(["export", run / "checkpoint.npz", tmp_path / "ok.pt"], capsys)[0] == 0
    obj = torch.load(tmp_path / "ok.pt", weights_only=True)
    obj["state_dict"]["inc.0.weight"] = torch.zeros(1)
    torch.save(obj, tmp_path / "misshaped.pt")
    status, _, err = _cli(["import", tmp_path / "misshaped.pt", tmp_path / "m.npz"], capsys)
    assert status == 1 and "'inc.0.weight' has shape (1,) in the state dict" in err
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    status, _, err = _cli(["import", tmp_path / "other.pt", tmp_path / "o.npz"], capsys)
    assert status == 1 and "not a minitorchseg PyTorch checkpoint" in err
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    status, _, err = _cli(["import", tmp_path / "junk.pt", tmp_path / "j.npz"], capsys)
    assert status == 1 and "cannot be read by torch.load" in err
    torch.save(torch.nn.Conv2d(1, 1, 1), tmp_path / "module.pt")   # a whole module, pickled
    status, _, err = _cli(["import", tmp_path / "module.pt", tmp_path / "p.npz"], capsys)
    assert status == 1 and "holds a pickled Python object (torch.nn.modules.conv.Conv2d)" in err
    assert "\x1b[" not in err and len(err.strip().splitlines()) == 1   # one line, no terminal colour codes
    assert not any((tmp_path / name).exists() for name in ("f.pt", "b.pt", "m.npz", "o.npz", "j.npz", "p.npz"))
    monkeypatch.setitem(sys.modules, "torch", None)   # as if PyTorch were not installed
    monkeypatch.delitem(sys.modules, "minitorchseg.export")
    monkeypatch.delattr(mts, "export")
    status, _, err = _cli(["export", run / "checkpoint.npz", tmp_path / "t.pt"], capsys)
    assert status == 1 and 'pip install "minitorchseg[torch]"' in err


# ----------------------------------------------------------------------------------------- Mask R-CNN
# Small images and few proposals, so that a forward takes about a second (as tests/detection/test_maskrcnn.py).
MASKRCNN_CONFIG = dict(min_size=64, max_size=96, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=100,
                       box_score_thresh=0.01, box_detections_per_img=8, box_batch_size_per_image=32)
DETECTION_TOL = 1e-8   # float64, relative to the largest box coordinate / score / mask value


def _our_maskrcnn(**config):
    from minitorchseg.models.detection.backbone_utils import resnet_fpn_backbone
    from minitorchseg.models.detection.mask_rcnn import MaskRCNN

    mts.manual_seed(0)
    return MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", trainable_layers=2), num_classes=4,
                    **{**MASKRCNN_CONFIG, **config})


def test_maskrcnn_to_torchvision_and_back_is_bit_identical_with_every_setting():
    from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN

    ours = _our_maskrcnn(bbox_reg_weights=(5.0, 5.0, 2.0, 2.0), rpn_nms_thresh=0.6)
    theirs = to_torch(ours)
    assert type(theirs) is TorchvisionMaskRCNN
    assert theirs.roi_heads.detections_per_img == 8 and theirs.rpn.nms_thresh == 0.6
    assert theirs.roi_heads.box_coder.weights == (5.0, 5.0, 2.0, 2.0) and theirs.transform.max_size == 96
    assert list(theirs.state_dict()) == list(ours.state_dict())
    back = from_torch(theirs)
    assert export._maskrcnn_spec(back) == export._maskrcnn_spec(theirs) == export._maskrcnn_spec(ours)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(theirs.state_dict()[key].numpy(), value, err_msg=key)
        np.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)
    frozen = [name for name, p in ours.named_parameters() if not p.requires_grad]
    assert frozen and frozen == [name for name, p in theirs.named_parameters() if not p.requires_grad]
    assert frozen == [name for name, p in back.named_parameters() if not p.requires_grad]


def test_maskrcnn_torchvisions_detections_equal_ours_float64():
    """A torchvision model built by torchvision (its own initialisation) → ours: the same detections."""
    from torchvision.models.detection import backbone_utils as tv_backbone_utils
    from torchvision.models.detection import mask_rcnn as tv_mask_rcnn

    torch.manual_seed(0)
    theirs = tv_mask_rcnn.MaskRCNN(tv_backbone_utils.resnet_fpn_backbone(backbone_name="resnet18", weights=None),
                                   num_classes=4, **MASKRCNN_CONFIG).double().eval()
    ours = from_torch(theirs)
    assert not ours.training
    rng = np.random.default_rng(0)
    images = [rng.uniform(size=(3, h, w)) for h, w in ((64, 80), (96, 64))]
    with mts.no_grad():
        mine = ours([mts.tensor(im) for im in images])
    with torch.no_grad():
        ref = theirs([torch.from_numpy(im) for im in images])
    for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
        assert len(b["scores"]) > 0
        np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
        for key in ("boxes", "scores", "masks"):
            assert_close(a[key].numpy(), b[key].numpy(), DETECTION_TOL, f"image {i} {key}")


def test_maskrcnn_compact_default_to_torchvision_same_detections_float64():
    """The CPU default (ResNet-18 at width 16, GroupNorm in the backbone and mask head, FPN of 64 channels) has no
    torchvision builder: its backbone becomes a ResNet of torchvision's blocks at that width, inside torchvision's
    own MaskRCNN."""
    from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN

    from minitorchseg.models.detection.mask_rcnn import maskrcnn_resnet_fpn

    mts.manual_seed(0)
    ours = maskrcnn_resnet_fpn(3, min_size=64, max_size=96, box_score_thresh=0.0).eval()
    theirs = to_torch(ours)
    assert type(theirs) is TorchvisionMaskRCNN and isinstance(theirs.backbone.body.conv1, torch.nn.Conv2d)
    assert export._maskrcnn_spec(theirs) == export._maskrcnn_spec(ours)
    assert export._maskrcnn_spec(ours)["group_sizes"] == {16: 16, 32: 32, 64: 32, 128: 32}   # min(32, C)
    back = from_torch(theirs)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)
    ours.double()
    theirs.double()
    image = np.random.default_rng(0).uniform(size=(3, 64, 80))
    with mts.no_grad():
        (mine,) = ours([mts.tensor(image)])
    with torch.no_grad():
        (ref,) = theirs([torch.from_numpy(image)])
    assert len(ref["scores"]) > 0
    np.testing.assert_array_equal(mine["labels"].numpy(), ref["labels"].numpy())
    for key in ("boxes", "scores", "masks"):
        assert_close(mine[key].numpy(), ref[key].numpy(), DETECTION_TOL, key)


def test_maskrcnn_parts_torchvision_cannot_build_are_named():
    with pytest.raises(ValueError, match="box_roi_pool pools with RoIPool; torchvision's Mask R-CNN has only"):
        to_torch(_our_maskrcnn(roi_op="pool"))


class _TorchUniform:
    """The transform's random size choice drawn from torch's generator, as torchvision's ``torch_choice``."""

    def uniform(self, low, high):
        return torch.empty(1).uniform_(low, high).item()


def test_maskrcnn_train_mode_losses_and_one_adam_step_from_the_exported_state_equal_torchvisions():
    """Float64, the compact default; the samplers and the transform draw from torch's generator (same seed)."""
    from minitorchseg.models.detection.mask_rcnn import maskrcnn_resnet_fpn
    from tests.detection.rcnn_common import float64_rpn_labels, replay_torch_randperm

    mts.manual_seed(0)
    ours = maskrcnn_resnet_fpn(3, min_size=64, max_size=96, box_batch_size_per_image=32).double().train()
    ours.rpn.fg_bg_sampler.generator = replay_torch_randperm
    ours.roi_heads.fg_bg_sampler.generator = replay_torch_randperm
    ours.transform.generator = _TorchUniform()
    rng = np.random.default_rng(3)
    images = [rng.uniform(size=(3, 64, 80)), rng.uniform(size=(3, 72, 64))]
    targets = []
    for image in images:
        h, w = image.shape[1:]
        masks = np.zeros((2, h, w), np.uint8)
        masks[0, 10:40, 12:50] = 1
        masks[1, 30:60, 5:30] = 1
        boxes = np.array([[12, 10, 50, 40], [5, 30, 30, 60]], np.float64)
        targets.append({"boxes": boxes, "labels": np.array([1, 2]), "masks": masks})

    def our_step(opt, seed):
        torch.manual_seed(seed)
        losses = ours([mts.tensor(i) for i in images], [{k: mts.tensor(v) for k, v in t.items()} for t in targets])
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        return {k: float(v.numpy()) for k, v in losses.items()}

    opt = Adam(ours.parameters(), lr=LR)
    our_step(opt, seed=1)   # the state to export: moments and a step count
    theirs = to_torch(ours)
    float64_rpn_labels(theirs.rpn)
    torch_opt = optimizer_to_torch(opt, theirs)
    before = ours.state_dict()
    mine = our_step(opt, seed=2)
    assert max(float(np.abs(v - before[k]).max()) for k, v in ours.state_dict().items()) > 100 * STEP_TOL
    torch.manual_seed(2)
    ref = theirs([torch.from_numpy(i) for i in images],
                 [{k: torch.from_numpy(np.asarray(v)) for k, v in t.items()} for t in targets])
    torch_opt.zero_grad()
    sum(ref.values()).backward()
    torch_opt.step()
    assert set(mine) == set(ref) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                                     "loss_rpn_box_reg"}
    for key, value in ref.items():
        assert_close(np.asarray(mine[key]), value.detach().numpy(), DETECTION_TOL, key)
    _compare_weights(ours, theirs, "Mask R-CNN")
