"""FCN-32s/16s/8s, U-Net, SegNet and SegNet-Basic against their PyTorch twins in ``minitorchseg.export``.

For each model: torch's weights (randomised batch-norm statistics included) are
copied into ours through ``{name: ndarray}`` and back, and then

* forward outputs agree in float64 (relative 1e-8) and float32 (1e-4), in train
  and eval mode, on an even and an odd input size; in train mode the updated
  batch-norm running statistics agree too;
* the gradient of every parameter agrees for a cross-entropy loss whose target
  has ignored pixels (ignore_index=255);
* ``summary``'s parameter total equals torch's ``sum(p.numel())``.

Also: the torchvision ``vgg16_bn`` weight mapping (one full-size model, a 32x32
input), the ``vgg16`` mapping into FCN (fc6/fc7 as convolutions), a small version
of each model overfitting one batch of synthetic shapes, and the input errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import torchvision
from torch import nn as tnn

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.data import SyntheticShapes
from minitorchseg.export import TorchFCN8s, TorchFCN16s, TorchFCN32s, TorchSegNet, TorchSegNetBasic, TorchUNet
from minitorchseg.models import (
    bilinear_kernel,
    fcn8s,
    fcn16s,
    fcn32s,
    get_model,
    list_models,
    load_vgg16,
    segnet,
    segnet_basic,
    summary,
    torchvision_vgg16_key_map,
    unet,
)
from minitorchseg.models.fcn import FCN_CHANNELS
from minitorchseg.optim import Adam

# Relative tolerances: max |ours − torch| ≤ TOL · max |torch| (per output / per parameter gradient).
# Two correct implementations of a 20-layer network that add in different orders agree to ~1e-12
# in float64; float32 forward/backward through as many layers ~1e-5.
TOL = {np.dtype(np.float64): 1e-8, np.dtype(np.float32): 1e-4}
IGNORE = 255


# ----------------------------------------------------------------------------------------- cases
FCN_CH = (4, 6, 8, 8, 10, 12)
SEG_CH = (4, 6, 8, 8, 10)

# name: (our builder, torch builder, even size, odd size)
CASES = {
    "fcn32s": (lambda: fcn32s(3, 2, channels=FCN_CH, dropout=0.0),
               lambda: TorchFCN32s(3, 2, channels=FCN_CH, dropout=0.0), (16, 16), (13, 9)),
    "fcn16s_bn": (lambda: fcn16s(3, 2, channels=FCN_CH, batch_norm=True, dropout=0.0),
                  lambda: TorchFCN16s(3, 2, channels=FCN_CH, batch_norm=True, dropout=0.0), (16, 16), (13, 9)),
    "fcn8s_learned_up": (lambda: fcn8s(3, 2, channels=FCN_CH, dropout=0.0, learn_upsampling=True),
                         lambda: TorchFCN8s(3, 2, channels=FCN_CH, dropout=0.0, learn_upsampling=True),
                         (16, 16), (13, 9)),
    "unet": (lambda: unet(3, 2, base_channels=4, depth=4),
             lambda: TorchUNet(3, 2, 4, 4, False, True), (16, 16), (23, 19)),
    "unet_bilinear": (lambda: unet(3, 2, base_channels=4, depth=3, bilinear=True),
                      lambda: TorchUNet(3, 2, 4, 3, True, True), (16, 16), (13, 11)),
    "unet_no_bn": (lambda: unet(3, 2, base_channels=4, depth=2, batch_norm=False),
                   lambda: TorchUNet(3, 2, 4, 2, False, False), (8, 8), (11, 9)),
    "segnet": (lambda: segnet(3, 2, channels=SEG_CH),
               lambda: TorchSegNet(3, 2, channels=SEG_CH), (32, 32), (35, 33)),
    "segnet_basic": (lambda: segnet_basic(3, 2, channels=4),
                     lambda: TorchSegNetBasic(3, 2, 4), (16, 16), (19, 17)),
}


def _randomise(twin: tnn.Module, seed: int = 0) -> tnn.Module:
    """Batch-norm affine parameters and running statistics away from their 1/0 defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in twin.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return twin


def build_pair(case: str, dtype, seed: int = 0):
    """(ours, twin) with the twin's weights copied into ours through {name: ndarray}, both in ``dtype``."""
    ours_fn, twin_fn, _, _ = CASES[case]
    torch.manual_seed(seed)
    mts.manual_seed(seed)
    twin = _randomise(twin_fn(), seed)
    ours = ours_fn()
    ours.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours.to(dtype)
    return ours, twin


def assert_close(ours: np.ndarray, ref: np.ndarray, dtype, what: str, floor: float = 1e-30) -> None:
    """max |ours − ref| ≤ TOL · max(max |ref|, floor)."""
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    scale = max(float(np.abs(ref).max()), floor)
    err = float(np.abs(ours - ref).max())
    assert err <= TOL[np.dtype(dtype)] * scale, f"{what}: max abs difference {err:.3e}, max |ref| {scale:.3e}"


def _input(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _target(shape, classes, seed=0):
    rng = np.random.default_rng(seed + 1)
    t = rng.integers(0, classes, size=shape)
    t[rng.random(shape) < 0.2] = IGNORE
    return t.astype(np.int64)


# ----------------------------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_names_and_layouts_match_both_ways(case):
    ours, twin = build_pair(case, np.float32)
    theirs = twin.state_dict()
    mine = ours.state_dict()
    assert list(mine) == list(theirs) or set(mine) == set(theirs)
    for k, v in theirs.items():
        assert mine[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(mine[k], v.numpy(), err_msg=k)
    mts.manual_seed(1)
    fresh = CASES[case][0]()   # a differently initialised model of ours → torch, strictly
    missing, unexpected = twin.load_state_dict({k: torch.from_numpy(v) for k, v in fresh.state_dict().items()})
    assert not missing and not unexpected
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(twin.state_dict()[k].numpy(), v.astype(twin.state_dict()[k].numpy().dtype))


# ----------------------------------------------------------------------------------------- forward
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", ["even", "odd"])
@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_torch_train_and_eval(case, size, dtype):
    ours, twin = build_pair(case, dtype)
    hw = CASES[case][2] if size == "even" else CASES[case][3]
    x = _input((2, 2) + hw, dtype)
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(twin, mode)()
        with mts.no_grad():
            out = ours(mts.tensor(x))
        with torch.no_grad():
            ref = twin(torch.from_numpy(x))
        assert out.shape == (2, 3) + hw
        assert out.dtype == dtype
        assert_close(out.numpy(), ref.numpy(), dtype, f"{case} {mode} output")
    for name, buf in twin.named_buffers():   # the train-mode pass updated the running statistics alike
        mine = ours.state_dict()[name]
        if name.endswith("num_batches_tracked"):
            assert int(mine) == int(buf)
        else:
            assert_close(mine, buf.numpy(), dtype, f"{case} {name}")


# ----------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("size", ["even", "odd"])
@pytest.mark.parametrize("case", list(CASES))
def test_parameter_gradients_match_torch(case, size):
    dtype = np.float64
    ours, twin = build_pair(case, dtype)
    ours.train()
    twin.train()
    hw = CASES[case][2] if size == "even" else CASES[case][3]
    x, t = _input((2, 2) + hw, dtype, seed=3), _target((2,) + hw, 3, seed=3)
    loss = F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE)
    loss.backward()
    ref_loss = TF.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(t), ignore_index=IGNORE)
    ref_loss.backward()
    assert_close(np.asarray(loss.item()), np.asarray(ref_loss.item()), dtype, "loss")
    theirs = dict(twin.named_parameters())
    checked = 0
    for name, p in ours.named_parameters():
        q = theirs[name]
        assert p.requires_grad == q.requires_grad, name
        if not q.requires_grad:
            assert p.grad is None and q.grad is None, name
            continue
        assert p.grad is not None, name
        # A conv bias followed by train-mode batch norm has a zero gradient (the batch mean removes it):
        # both sides are round-off, so measure a bias against its own layer's weight gradient.
        weight = theirs.get(name[: -len("bias")] + "weight") if name.endswith("bias") else None
        floor = float(weight.grad.abs().max()) if weight is not None and weight.grad is not None else 1e-30
        assert_close(p.grad.numpy(), q.grad.numpy(), dtype, f"{case} d loss / d {name}", floor)
        checked += 1
    assert checked == sum(q.requires_grad for q in theirs.values()) > 0


def test_parameter_gradients_match_torch_float32():
    ours, twin = build_pair("segnet", np.float32)
    x, t = _input((2, 2, 35, 33), np.float32, seed=4), _target((2, 35, 33), 3, seed=4)
    F.cross_entropy(ours(mts.tensor(x)), mts.tensor(t), ignore_index=IGNORE).backward()
    TF.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(t), ignore_index=IGNORE).backward()
    theirs = dict(twin.named_parameters())
    for name, p in ours.named_parameters():   # SegNet's conv biases feed batch norm: see above
        floor = float(theirs[name[: -len("bias")] + "weight"].grad.abs().max()) if name.endswith("bias") else 1e-30
        assert_close(p.grad.numpy(), theirs[name].grad.numpy(), np.float32, f"d loss / d {name}", floor)


# ----------------------------------------------------------------------------------------- FCN details
def test_bilinear_kernel_literal_and_torch_equivalence():
    w = bilinear_kernel(2, 2, 4)
    taps = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(w[0, 0], np.outer(taps, taps))
    np.testing.assert_allclose(w[1, 1], np.outer(taps, taps))
    assert not w[0, 1].any() and not w[1, 0].any()
    np.testing.assert_allclose(bilinear_kernel(1, 1, 3)[0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    # Away from the border, the stride-2 transposed conv with this kernel is bilinear interpolation
    # (torch's interpolate with align_corners=False at scale 2).
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2, 5, 6)))
    up = TF.conv_transpose2d(x, torch.from_numpy(w.astype(np.float64)), stride=2, padding=1)
    ref = TF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(up[:, :, 1:-1, 1:-1].numpy(), ref[:, :, 1:-1, 1:-1].numpy(), rtol=1e-12, atol=1e-12)


def test_fcn_upsampling_fixed_bilinear_and_scores_zero_by_default():
    model = fcn8s(4, channels=FCN_CH)
    for name in ("upscore2", "upscore_pool4", "upscore8"):
        layer = getattr(model, name)
        assert not layer.weight.requires_grad and layer.bias is None
        k = layer.weight.shape[-1]
        np.testing.assert_array_equal(layer.weight.numpy(), bilinear_kernel(4, 4, k))
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert not getattr(model, name).weight.numpy().any()


@pytest.mark.parametrize("hw", [(1, 1), (5, 3), (33, 31)])
def test_fcn_any_input_size_gives_input_size(hw):
    model = fcn8s(2, channels=(2, 2, 2, 2, 2, 2)).eval()
    with mts.no_grad():
        assert model(mts.zeros(1, 3, *hw)).shape == (1, 2) + hw


# ----------------------------------------------------------------------------------------- torchvision VGG16
def test_vgg16_bn_into_segnet_features_equal_torchvision():
    torch.manual_seed(0)
    tv = _randomise(torchvision.models.vgg16_bn(weights=None)).eval()
    state = {k: v.numpy() for k, v in tv.state_dict().items()}   # float32, as torchvision ships it
    features = tv.features.double()
    model = segnet(5)
    loaded = load_vgg16(model, state)
    assert len(loaded) == 13 * 2 + 13 * 5
    model.to(np.float64).eval()
    x = _input((1, 3, 32, 32), np.float64)
    with mts.no_grad():
        ours = model.encode(mts.tensor(x))[0].numpy()
    with torch.no_grad():
        ref = features(torch.from_numpy(x)).numpy()
    assert ours.shape == ref.shape == (1, 512, 1, 1)
    assert_close(ours, ref, np.float64, "SegNet encoder vs torchvision vgg16_bn.features")


def test_vgg16_key_map_table():
    plain = torchvision_vgg16_key_map([f"conv{s}" for s in range(1, 6)], False, False)
    assert [v for k, v in plain.items() if k.endswith("weight")] == [
        f"features.{i}.weight" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)]
    bn = torchvision_vgg16_key_map([f"enc{s}" for s in range(1, 6)], True, True)
    convs = [i for i in (0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40)]
    assert bn["enc1.0.weight"] == "features.0.weight" and bn["enc1.1.running_var"] == "features.1.running_var"
    assert bn["enc5.6.weight"] == "features.40.weight" and bn["enc5.7.bias"] == "features.41.bias"
    assert sorted({int(v.split(".")[1]) for k, v in bn.items() if k.split(".")[1] in {"0", "3", "6"}}) == convs


def test_vgg16_into_fcn_fc6_fc7_are_the_classifier_as_convolutions():
    """A torchvision-structured VGG16 at 1/16 width (the full one has a 25088 x 4096 fc6): plain vgg16 → FCN."""
    cfg = [4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"]
    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(cfg, batch_norm=False)
    classifier = tnn.Sequential(tnn.Linear(32 * 7 * 7, 64), tnn.ReLU(), tnn.Dropout(), tnn.Linear(64, 64))
    state = {f"features.{k}": v.numpy() for k, v in features.state_dict().items()}
    state.update({f"classifier.{k}": v.numpy() for k, v in classifier.state_dict().items()})
    model = fcn32s(3, channels=(4, 8, 16, 32, 32, 64))
    load_vgg16(model, state)
    mine = model.state_dict()
    np.testing.assert_array_equal(mine["conv3.4.weight"], state["features.14.weight"])   # conv3_3
    np.testing.assert_array_equal(mine["conv5.0.bias"], state["features.24.bias"])       # conv5_1
    pool5 = np.random.default_rng(0).standard_normal((2, 32, 7, 7)).astype(np.float32)
    with mts.no_grad():
        fc7 = model.fc7(model.relu6(model.fc6(mts.tensor(pool5))))
    with torch.no_grad():
        ref = classifier[3](classifier[1](classifier[0](torch.from_numpy(pool5).flatten(1))))
    assert fc7.shape == (2, 64, 1, 1)
    assert_close(fc7.numpy()[:, :, 0, 0], ref.numpy(), np.float32, "fc7(fc6(pool5)) vs the Linear layers")


def test_load_vgg16_errors():
    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(
        [4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"], batch_norm=True)
    state = {f"features.{k}": v.numpy() for k, v in features.state_dict().items()}
    with pytest.raises(ValueError, match="batch_norm=True"):
        load_vgg16(fcn32s(3, channels=(4, 8, 16, 32, 32, 64)), state)
    with pytest.raises(ValueError, match=r"features\.0\.weight.*shape"):
        load_vgg16(segnet(3, width=0.5), state)
    with pytest.raises(KeyError, match="features.0.weight"):
        load_vgg16(segnet(3, channels=(4, 8, 16, 32, 32)), {})
    with pytest.raises(TypeError, match="no VGG16 encoder"):
        load_vgg16(unet(2, base_channels=2, depth=1), state)


# ----------------------------------------------------------------------------------------- summary
@pytest.mark.parametrize("case", list(CASES))
def test_summary_parameter_totals_equal_torch(case):
    ours, twin = build_pair(case, np.float32)
    ours.train()
    before = ours.state_dict()
    hw = CASES[case][2]
    table, totals = summary(ours, (2, 2) + hw)
    assert totals["total_params"] == sum(p.numel() for p in twin.parameters())
    assert totals["trainable_params"] == sum(p.numel() for p in twin.parameters() if p.requires_grad)
    assert totals["output_shape"] == (2, 3) + hw
    assert sum(r["params"] for r in totals["layers"]) == totals["total_params"]
    assert f"Total params: {totals['total_params']:,}" in table
    assert ours.training and all(m.training for m in ours.modules())
    assert "forward" not in ours.__dict__ and all("forward" not in m.__dict__ for m in ours.modules())
    for k, v in ours.state_dict().items():   # eval-mode pass: running statistics untouched
        np.testing.assert_array_equal(v, before[k])


def test_summary_literal_macs():
    model = mts.nn.Sequential(mts.nn.Conv2d(3, 4, 3, padding=1), mts.nn.ReLU(),
                              mts.nn.ConvTranspose2d(4, 2, 2, stride=2), mts.nn.Conv2d(2, 5, 1, bias=False))
    table, totals = summary(model, (3, 8, 8))
    rows = totals["layers"]
    assert [r["name"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["output_shape"] for r in rows] == [(1, 4, 8, 8), (1, 4, 8, 8), (1, 2, 16, 16), (1, 5, 16, 16)]
    # conv 3x3: 8·8 outputs × 4·3·3·3 weights; transposed: 8·8 inputs × 4·2·2·2; 1x1: 16·16 × 5·2
    assert [r["macs"] for r in rows] == [64 * 108, 0, 64 * 32, 256 * 10]
    assert [r["params"] for r in rows] == [112, 0, 34, 10]
    assert totals["total_macs"] == 6912 + 2048 + 2560
    assert "0 (Conv2d)" in table and "[1, 5, 16, 16]" in table


def test_summary_bad_shape():
    with pytest.raises(ValueError, match="input_shape"):
        summary(unet(2, base_channels=2, depth=1), (8, 8))


# ----------------------------------------------------------------------------------------- registry
def test_registry():
    assert list_models() == ["fcn16s", "fcn32s", "fcn8s", "maskrcnn", "segnet", "segnet_basic", "unet"]
    model = get_model("unet", num_classes=3, base_channels=2, depth=1)
    assert model.num_classes == 3 and model.depth == 1
    known = "fcn16s, fcn32s, fcn8s, maskrcnn, segnet, segnet_basic, unet"
    with pytest.raises(ValueError, match=f"unknown model 'deeplab'.*{known}"):
        get_model("deeplab", num_classes=3)
    with pytest.raises(TypeError, match="depth"):
        get_model("segnet", num_classes=3, depth=3)


# ----------------------------------------------------------------------------------------- bad input
SMALL = {
    "fcn8s": lambda **kw: fcn8s(3, channels=(2, 2, 2, 2, 2, 2), **kw),
    "unet": lambda **kw: unet(3, base_channels=2, depth=3, **kw),
    "segnet": lambda **kw: segnet(3, channels=(2, 2, 2, 2, 2), **kw),
    "segnet_basic": lambda **kw: segnet_basic(3, channels=2, **kw),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_wrong_channel_count_and_rank(name):
    model = SMALL[name]()
    with pytest.raises(ValueError, match=r"expected 3 input channels, got input of shape \(1, 1, 32, 32\)"):
        model(mts.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"4-D input .*got shape \(3, 32, 32\)"):
        model(mts.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="Tensor"):
        model(np.zeros((1, 3, 32, 32), np.float32))
    assert SMALL[name](in_channels=1)(mts.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("name, minimum, bad", [("unet", 8, (7, 20)), ("segnet", 32, (40, 31)),
                                                  ("segnet_basic", 16, (15, 15))])
def test_input_too_small_names_the_minimum(name, minimum, bad):
    model = SMALL[name]()
    with pytest.raises(ValueError, match=f"{bad[0]}x{bad[1]} is too small: the minimum is {minimum}x{minimum}"):
        model(mts.zeros(1, 3, *bad))
    assert model(mts.zeros(2, 3, minimum, minimum)).shape == (2, 3, minimum, minimum)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        unet(0)
    with pytest.raises(ValueError, match="width"):
        segnet(3, width=0)
    with pytest.raises(ValueError, match="channels must have 6 entries"):
        fcn8s(3, channels=(1, 2, 3))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        segnet_basic(3, kernel_size=4)


def test_width_multiplier_and_paper_size():
    assert FCN_CHANNELS == (64, 128, 256, 512, 512, 4096)   # the full FCN has a 102M-parameter fc6: not built here
    assert fcn8s(21, width=1 / 16).channels == (4, 8, 16, 32, 32, 256)
    assert segnet(12, width=0.125).channels == (8, 16, 32, 64, 64)
    _, totals = summary(segnet_basic(12), (1, 3, 16, 16))
    # SegNet-Basic: 4 encoder + 4 decoder 7x7 convs of 64 channels (no bias) with batch norm, a 1x1 classifier
    assert totals["total_params"] == (3 * 64 * 49 + 7 * 64 * 64 * 49) + 8 * 128 + (64 * 12 + 12)


# ----------------------------------------------------------------------------------------- overfitting
# A small version of each model, one batch of 4 synthetic 32x32 images (4 classes, 90% background), Adam:
# the cross-entropy must fall below LOSS_BELOW within STEPS steps (a smoke test that training works end to end).
# Predicting the class frequencies everywhere scores ≈ 0.40; measured: every model passes 0.15 in 25-35 steps.
OVERFIT = {
    "fcn8s": (lambda: fcn8s(4, channels=(4, 8, 16, 16, 32, 32), batch_norm=True, dropout=0.0), 1e-2),
    "unet": (lambda: unet(4, base_channels=8, depth=3), 1e-2),
    "segnet": (lambda: segnet(4, channels=(8, 16, 16, 32, 32)), 1e-2),
    "segnet_basic": (lambda: segnet_basic(4, channels=16), 1e-2),
}
STEPS, LOSS_BELOW = 50, 0.15


@pytest.fixture(scope="module")
def shapes_batch():
    ds = SyntheticShapes(num_images=4, size=(32, 32), seed=0)
    images = np.stack([ds[i][0] for i in range(4)]).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
    masks = np.stack([ds[i][1] for i in range(4)])
    return mts.tensor(images), mts.tensor(masks)


@pytest.mark.parametrize("name", list(OVERFIT))
def test_small_model_overfits_one_batch(name, shapes_batch):
    images, masks = shapes_batch
    mts.manual_seed(0)
    build, lr = OVERFIT[name]
    model = build()
    opt = Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(images), masks)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < LOSS_BELOW:
            break
    assert losses[-1] < LOSS_BELOW, f"{name}: loss {losses[0]:.3f} → {losses[-1]:.3f} after {len(losses)} steps"
