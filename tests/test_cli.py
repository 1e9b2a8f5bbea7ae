"""The training loop and the ``minitorchseg`` command end to end, on tiny runs.

Every run trains a U-Net with 4 base channels and one down/up level on 16x16
synthetic images, so an epoch takes well under a second once the kernels are
compiled.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minitorchseg as mts
from minitorchseg import optim
from minitorchseg.cli import main
from minitorchseg.data.spec import Subset, open_split, parse_data_spec
from minitorchseg.train import CHECKPOINT_FORMAT, load_checkpoint

DATA = "shapes:size=16,train=12,val=4,test=4"
MODEL = ["--model", "unet", "--model-arg", "base_channels=4", "--model-arg", "depth=1"]


def run(argv, capsys):
    """``main(argv)`` → ``(status, stdout, stderr)``."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def train_args(out, epochs=1, *extra):
    return ["train", *MODEL, "--data", DATA, "--epochs", epochs, "--batch-size", 4, "--out", out, "--quiet", *extra]


def leftovers(folder) -> list:
    """Temporary files of an interrupted atomic write."""
    return [name for name in os.listdir(folder) if name.startswith(".tmp-")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 1-epoch run shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run")
    assert main([str(a) for a in train_args(out)]) == 0
    return out


# ---------------------------------------------------------------------------------------------- train
def test_train_writes_checkpoint_metrics_and_curve(trained):
    names = set(os.listdir(trained))
    assert {"checkpoint.npz", "best.npz", "metrics.csv", "metrics.json", "curve.png"} <= names
    assert not leftovers(trained)
    ckpt = mts.load(trained / "checkpoint.npz")
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert ckpt["epoch"] == 1
    assert ckpt["model"]["name"] == "unet"
    assert ckpt["model"]["kwargs"] == {"base_channels": 4, "depth": 1, "num_classes": 4}
    assert ckpt["data"]["class_names"] == ["background", "circle", "square", "triangle"]
    assert ckpt["data"]["spec"] == DATA
    assert ckpt["optimizer_state"]["state"], "Adam's moments are saved"
    assert ckpt["config"]["batch_size"] == 4 and ckpt["config"]["seed"] == 0
    history = json.loads((trained / "metrics.json").read_text())["history"]
    assert len(history) == 1 and 0.0 <= history[0]["miou"] <= 1.0
    rows = (trained / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,val_loss,miou") and rows[0].endswith("iou_triangle")
    assert len(rows) == 2
    assert Image.open(trained / "curve.png").format == "PNG"


def test_checkpoint_rebuilds_the_model_from_the_file_alone(trained):
    model, ckpt = load_checkpoint(trained / "checkpoint.npz")
    state = model.state_dict()
    assert set(state) == set(ckpt["model_state"])
    for key, value in state.items():
        np.testing.assert_array_equal(value, ckpt["model_state"][key])
    assert not model.training


def test_resume_continues_exactly_where_it_stopped(tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(train_args(straight, 2), capsys)[0] == 0
    assert run(train_args(resumed, 1), capsys)[0] == 0
    status, out, _ = run(["train", "--epochs", 2, "--out", resumed, "--resume", "--quiet"], capsys)
    assert status == 0
    assert "resuming from" in out and "after epoch 1" in out
    a, b = mts.load(straight / "checkpoint.npz"), mts.load(resumed / "checkpoint.npz")
    assert a["epoch"] == b["epoch"] == 2
    for key in a["model_state"]:
        np.testing.assert_array_equal(a["model_state"][key], b["model_state"][key], err_msg=key)
    assert [row["train_loss"] for row in a["history"]] == [row["train_loss"] for row in b["history"]]
    assert len((resumed / "metrics.csv").read_text().splitlines()) == 3


def test_resume_when_already_done_trains_nothing(trained, capsys):
    before = (trained / "checkpoint.npz").read_bytes()
    status, out, _ = run(["train", "--epochs", 1, "--out", trained, "--resume", "--quiet"], capsys)
    assert status == 0 and "nothing to train" in out
    assert (trained / "checkpoint.npz").read_bytes() == before


def test_same_seed_same_run_other_seed_other_run(tmp_path, capsys):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert run(train_args(tmp_path / name, 1, "--seed", seed), capsys)[0] == 0
    a, b, c = (mts.load(tmp_path / name / "checkpoint.npz")["model_state"] for name in "abc")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_poly_learning_rate_schedule(tmp_path, capsys):
    assert run(train_args(tmp_path, 2, "--lr-schedule", "poly", "--lr", "0.01"), capsys)[0] == 0
    history = mts.load(tmp_path / "checkpoint.npz")["history"]
    assert [row["lr"] for row in history] == pytest.approx([0.01, 0.01 * 0.5**0.9], rel=1e-12)



def test_class_weight_modes_train_differently_and_resume_keeps_theirs(tmp_path, capsys):
    """none, median and sqrt_median give three different runs from one seed; the mode is saved and resumed."""
    states = {}
    for mode in ("none", "median", "sqrt_median"):
        assert run(train_args(tmp_path / mode, 1, "--class-weights", mode), capsys)[0] == 0
        ckpt = mts.load(tmp_path / mode / "checkpoint.npz")
        assert ckpt["config"]["class_weights_mode"] == mode
        states[mode] = ckpt["model_state"]
    for a, b in (("none", "median"), ("median", "sqrt_median"), ("none", "sqrt_median")):
        assert not all(np.array_equal(states[a][k], states[b][k]) for k in states[a]), (a, b)
    status, out, _ = run(["train", "--epochs", 2, "--out", tmp_path / "sqrt_median", "--resume", "--quiet"], capsys)
    assert status == 0
    assert mts.load(tmp_path / "sqrt_median" / "checkpoint.npz")["config"]["class_weights_mode"] == "sqrt_median"

# ---------------------------------------------------------------------------------------------- crashes
def test_a_crash_in_training_keeps_the_last_complete_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run(train_args(out, 1), capsys)[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    steps = []

    def failing_step(self):
        steps.append(1)
        if len(steps) == 2:
            raise RuntimeError("simulated crash in the middle of an epoch")

    monkeypatch.setattr(optim.Adam, "step", failing_step)
    status, _, err = run(["train", "--epochs", 3, "--out", out, "--resume", "--quiet"], capsys)
    assert status == 1 and "simulated crash" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    assert mts.load(out / "checkpoint.npz")["epoch"] == 1
    assert not leftovers(out)


def test_a_crash_while_writing_the_checkpoint_leaves_the_old_one(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run(train_args(out, 1), capsys)[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    real_savez = np.savez

    def savez_then_crash(file, *args, **kwargs):
        real_savez(file, *args, **kwargs)
        file.truncate(100)
        raise OSError("simulated disk failure while writing")

    monkeypatch.setattr(np, "savez", savez_then_crash)
    status, _, err = run(["train", "--epochs", 2, "--out", out, "--resume", "--quiet"], capsys)
    assert status == 1 and "simulated disk failure" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    assert not leftovers(out)
    monkeypatch.setattr(np, "savez", real_savez)
    model, ckpt = load_checkpoint(out / "checkpoint.npz")
    assert ckpt["epoch"] == 1


def test_a_diverging_loss_stops_the_run_before_its_checkpoint(tmp_path, capsys, monkeypatch):
    import minitorchseg.functional as F

    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *args, **kwargs: real(*args, **kwargs) * float("nan"))
    status, _, err = run(train_args(tmp_path / "run", 1), capsys)
    assert status == 1 and "the loss became nan in epoch 1" in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
    assert not leftovers(tmp_path / "run")


# ---------------------------------------------------------------------------------------------- eval / predict
def test_eval_prints_the_per_class_table(trained, capsys):
    status, out, _ = run(["eval", trained / "checkpoint.npz", "--split", "test", "--quiet"], capsys)
    assert status == 0
    for word in ("background", "circle", "square", "triangle", "mIoU", "pixel accuracy", "IoU", "precision"):
        assert word in out
    assert "test (4 images)" in out


def test_eval_on_a_folder_of_mixed_sizes(trained, tmp_path, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(1)
    for i, size in enumerate([(16, 16), (16, 16), (20, 12), (16, 16), (24, 16)]):
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(images / f"p{i}.png")
        Image.fromarray(rng.integers(0, 4, size=size, dtype=np.uint8)).save(masks / f"p{i}.png")
    spec = f"folder:{images},{masks}"
    status, out, _ = run(["eval", trained / "checkpoint.npz", "--data", spec, "--split", "test", "--quiet"], capsys)
    assert status == 0 and "test (5 images)" in out and "mIoU" in out


def test_sgd_run_saves_its_momentum(tmp_path, capsys):
    assert run(train_args(tmp_path, 1, "--optimizer", "sgd", "--lr", "0.05"), capsys)[0] == 0
    state = mts.load(tmp_path / "checkpoint.npz")["optimizer_state"]
    assert state["param_groups"][0]["momentum"] == 0.9
    assert all("momentum_buffer" in s for s in state["state"].values())


def test_predict_writes_masks_and_overlays(trained, tmp_path, capsys):
    rng = np.random.default_rng(0)
    paths = []
    for name, size in (("a.png", (20, 24)), ("b.jpg", (16, 16))):
        path = tmp_path / name
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    out = tmp_path / "pred"
    status, stdout, _ = run(["predict", trained / "checkpoint.npz", *paths, "--out", out], capsys)
    assert status == 0
    assert sorted(os.listdir(out)) == sorted(f"{s}_{k}.png" for s in "ab" for k in ("mask", "overlay", "labels"))
    mask = np.asarray(Image.open(out / "a_mask.png"))
    labels = np.asarray(Image.open(out / "a_labels.png"))
    assert mask.shape == (20, 24, 3) and labels.shape == (20, 24)
    palette = mts.load(trained / "checkpoint.npz")["data"]["palette"]
    np.testing.assert_array_equal(mask, palette[labels])
    assert np.asarray(Image.open(out / "b_overlay.png")).shape == (16, 16, 3)


# ---------------------------------------------------------------------------------------------- kmeans, demo
def test_kmeans_writes_one_png_per_cluster_and_the_label_map(tmp_path, capsys):
    pytest.importorskip("minitorchseg.kmeans")
    image = np.zeros((12, 10, 3), dtype=np.uint8)
    image[:, 5:] = (250, 10, 10)
    image[6:, :5] = (10, 10, 250)
    Image.fromarray(image).save(tmp_path / "three.png")
    out = tmp_path / "km"
    status, stdout, _ = run(["kmeans", tmp_path / "three.png", "--k", 3, "--out", out], capsys)
    assert status == 0
    assert sorted(os.listdir(out)) == ["cluster_0.png", "cluster_1.png", "cluster_2.png", "labels.png",
                                       "segmented.png"]
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (12, 10)
    assert len(np.unique(labels)) == 3
    for region in (labels[:6, :5], labels[6:, :5], labels[:, 5:]):
        assert len(np.unique(region)) == 1
    segmented = np.asarray(Image.open(out / "segmented.png"))
    np.testing.assert_array_equal(segmented, image)
    union = sum(np.asarray(Image.open(out / f"cluster_{c}.png")).astype(int) for c in range(3))
    np.testing.assert_array_equal(union, image)


def test_kmeans_default_photo(tmp_path, capsys):
    pytest.importorskip("minitorchseg.kmeans")
    status, stdout, _ = run(["kmeans", "--k", 2, "--iters", 3, "--out", tmp_path], capsys)
    assert status == 0 and "grace_hopper.jpg" in stdout
    assert np.asarray(Image.open(tmp_path / "labels.png")).shape == (600, 512)


def test_demo_quick(tmp_path, capsys):
    status, out, _ = run(["demo", "--quick", "--out", tmp_path, "--quiet"], capsys)
    assert status == 0
    assert {"demo.png", "metrics.txt", "checkpoint.npz", "curve.png", "metrics.csv"} <= set(os.listdir(tmp_path))
    assert "held-out mIoU" in out and "mIoU" in (tmp_path / "metrics.txt").read_text()
    assert Image.open(tmp_path / "demo.png").format == "PNG"


# ---------------------------------------------------------------------------------------------- bad input
def test_unknown_model_lists_the_known_ones(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run(["train", "--model", "resnet", "--data", DATA, "--out", out], capsys)
    assert status == 1
    assert "unknown model 'resnet'" in err and "unet" in err and "fcn8s" in err and "segnet" in err
    assert not out.exists()


def test_a_model_argument_the_model_does_not_take(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run(["train", "--model", "unet", "--model-arg", "colour=1", "--data", DATA, "--out", out], capsys)
    assert status == 1 and "colour" in err and "base_channels" in err
    assert not out.exists()


@pytest.mark.parametrize("spec, message", [
    ("shapez", "unknown data kind 'shapez'"),
    ("camvid", "camvid needs a path"),
    ("folder:only_one", "folder needs IMAGES,MASKS"),
    ("shapes:size=4", "size must be S or HxW"),
    ("shapes:colour=red", "cannot parse 'colour=red'"),
    ("shapes:train=many", "train must be an integer"),
    ("", "empty data spec"),
])
def test_a_data_spec_that_does_not_parse(tmp_path, capsys, spec, message):
    out = tmp_path / "run"
    status, _, err = run(["train", *MODEL, "--data", spec, "--out", out], capsys)
    assert status == 1 and message in err
    assert not out.exists()


def test_a_data_folder_that_does_not_exist(tmp_path, capsys):
    status, _, err = run(["train", *MODEL, "--data", f"camvid:{tmp_path / 'nowhere'}", "--out", tmp_path / "r"],
                         capsys)
    assert status == 1 and "CamVid root not found" in err and "nowhere" in err
    assert not (tmp_path / "r").exists()


def test_a_corrupt_checkpoint(trained, tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes((trained / "checkpoint.npz").read_bytes()[:500])
    status, _, err = run(["eval", broken], capsys)
    assert status == 1 and "corrupt or truncated" in err
    out = tmp_path / "pred"
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    status, _, err = run(["predict", broken, image, "--out", out], capsys)
    assert status == 1 and "corrupt or truncated" in err
    assert not out.exists()


def test_a_file_that_is_not_a_training_checkpoint(tmp_path, capsys):
    mts.save({"weights": np.zeros(3)}, tmp_path / "other.npz")
    status, _, err = run(["eval", tmp_path / "other.npz"], capsys)
    assert status == 1 and "not a minitorchseg training checkpoint" in err
    status, _, err = run(["eval", tmp_path / "missing.npz"], capsys)
    assert status == 1 and "no checkpoint at" in err


def test_a_checkpoint_for_a_different_model(trained, tmp_path, capsys):
    status, _, err = run(["eval", trained / "checkpoint.npz", "--model", "fcn8s"], capsys)
    assert status == 1 and "holds a 'unet' model" in err and "not 'fcn8s'" in err
    status, _, err = run(["train", "--model", "segnet", "--epochs", 2, "--out", trained, "--resume"], capsys)
    assert status == 1 and "holds a 'unet' model" in err
    status, _, err = run(["train", "--model", "unet", "--model-arg", "base_channels=8", "--epochs", 2,
                          "--out", trained, "--resume"], capsys)
    assert status == 1 and "base_channels=4" in err and "base_channels=8" in err
    ckpt = mts.load(trained / "checkpoint.npz")
    ckpt["model"]["kwargs"]["base_channels"] = 6
    mts.save(ckpt, tmp_path / "edited.npz")
    status, _, err = run(["eval", tmp_path / "edited.npz"], capsys)
    assert status == 1 and "weights do not fit the model it names" in err


def test_resume_needs_a_checkpoint_and_keeps_its_settings(trained, tmp_path, capsys):
    status, _, err = run(["train", "--epochs", 2, "--out", tmp_path / "empty", "--resume"], capsys)
    assert status == 1 and "no checkpoint at" in err
    status, _, err = run(["train", "--epochs", 2, "--out", trained, "--resume", "--lr", "0.5"], capsys)
    assert status == 1 and "--lr 0.5 differs from the checkpoint's 0.001" in err
    status, _, err = run(["train", "--data", "shapes", "--epochs", 2, "--out", trained, "--resume"], capsys)
    assert status == 1 and "--data 'shapes' differs" in err


def test_an_image_that_does_not_exist(trained, tmp_path, capsys):
    out = tmp_path / "pred"
    status, _, err = run(["predict", trained / "checkpoint.npz", tmp_path / "ghost.png", "--out", out], capsys)
    assert status == 1 and "image not found" in err and "ghost.png" in err
    assert not out.exists()
    status, _, err = run(["kmeans", tmp_path / "ghost.png", "--out", out], capsys)
    assert status == 1 and "image not found" in err
    assert not out.exists()


def test_train_does_not_overwrite_a_run(trained, capsys):
    before = (trained / "checkpoint.npz").read_bytes()
    status, _, err = run(train_args(trained, 1), capsys)
    assert status == 1 and "exists already: pass --resume" in err
    assert (trained / "checkpoint.npz").read_bytes() == before


def test_train_without_model_or_data(tmp_path, capsys):
    status, _, err = run(["train", "--data", DATA, "--out", tmp_path / "r"], capsys)
    assert status == 1 and "needs --model and --data" in err


# ---------------------------------------------------------------------------------------------- data specs
def test_data_spec_grammar():
    spec = parse_data_spec("shapes:size=24x32,train=10,val=3,test=2,seed=5")
    assert spec.kind == "shapes" and spec.options["size"] == (24, 32) and spec.options["seed"] == 5
    train, val, test = (open_split(spec, split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (10, 3, 2)
    assert (train.seed, val.seed, test.seed) == (5, 6, 7)
    assert train[0][0].shape == (24, 32, 3)
    sized = open_split("shapes:size=32,min_size=10,max_size=12,max_objects=1,train=2", "train")
    assert (sized.min_size, sized.max_size, sized.max_objects) == (10, 12, 1)
    assert parse_data_spec("camvid:/data/CamVid").paths == ("/data/CamVid",)
    assert parse_data_spec("folder:a,b,c,d").paths == ("a", "b", "c", "d")


def test_folder_spec_holds_out_every_fifth_image(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(images / f"im{i:02d}.png")
        Image.fromarray(np.full((8, 8), i % 3, np.uint8)).save(masks / f"im{i:02d}.png")
    spec = f"folder:{images},{masks}"
    train, val, test = (open_split(spec, split) for split in ("train", "val", "test"))
    assert isinstance(val, Subset) and val.indices == [4, 9]
    assert len(train) == 10 and len(test) == 12
    assert train.num_classes == val.num_classes == 3
    assert int(val[1][0][0, 0, 0]) == 9


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    """Run every test in its own folder, so default output folders (runs/...) never land in the repo."""
    monkeypatch.chdir(tmp_path)


def test_paths_are_strings_or_paths(tmp_path, trained):
    model, ckpt = load_checkpoint(str(Path(trained) / "checkpoint.npz"))
    assert ckpt["epoch"] == 1
