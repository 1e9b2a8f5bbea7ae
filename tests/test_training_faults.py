"""The training loop under the faults real runs meet: all-ignored batches, diverging losses, logs that are
not terminals, a best epoch followed by a worse one, and a crash in the middle of writing any of its files.

Every run is a U-Net with 4 base channels and one level on 16x16 images held in memory.
"""

import builtins
import csv
import io
import json
import os
import re
import warnings

import numpy as np
import pytest
from PIL import Image

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.models import get_model
from minitorchseg.serialization import atomic_write
from minitorchseg.train import loop, progress
from minitorchseg.train.progress import LineProgress, progress_bar

NUM_CLASSES = 3
MODEL_KWARGS = {"num_classes": NUM_CLASSES, "base_channels": 4, "depth": 1}
FILES = ("checkpoint.npz", "best.npz", "metrics.csv", "metrics.json", "curve.png")
EVALUATE = loop.evaluate


class Memory:
    """A data set of ``(image (16, 16, 3) uint8, mask (16, 16) int64)`` items held in lists."""

    def __init__(self, masks, ignore_index=255, seed=0):
        rng = np.random.default_rng(seed)
        self.masks = [np.asarray(m, dtype=np.int64) for m in masks]
        self.images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in self.masks]
        self.num_classes, self.ignore_index = NUM_CLASSES, ignore_index
        self.class_names = tuple(f"c{i}" for i in range(NUM_CLASSES))
        self.palette = np.arange(NUM_CLASSES * 3, dtype=np.uint8).reshape(NUM_CLASSES, 3)

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        return self.images[i], self.masks[i]


def labelled(seed):
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, (16, 16))


def run(out, train_data, val_data=None, epochs=1, **kwargs):
    mts.manual_seed(0)
    model = get_model("unet", **MODEL_KWARGS)
    options = dict(batch_size=1, progress=False, log=lambda *a: None, flip=False)
    options.update(kwargs)
    return model, loop.train(model, train_data, val_data, epochs=epochs, out_dir=out, model_name="unet",
                             model_kwargs=MODEL_KWARGS, **options)


# ----------------------------------------------------------------------------------------- all-ignored batches
def test_an_all_ignored_batch_is_skipped_with_a_warning_that_counts_it(tmp_path):
    masks = [labelled(1), np.full((16, 16), 255), labelled(2), labelled(3)]
    with pytest.warns(UserWarning) as caught:
        model, history = run(tmp_path / "run", Memory(masks), epochs=2)
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert messages == [
        f"train: epoch {e}: skipped 1 of 4 batch(es) with no labelled pixel (every pixel is ignore_index=255); "
        f"their mean loss would be 0/0" for e in (1, 2)
    ]
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())
    assert all(np.isfinite(row["train_loss"]) for row in history)


def test_a_batch_whose_labelled_classes_all_weigh_zero_is_skipped_too(tmp_path):
    masks = [labelled(1), np.zeros((16, 16)), labelled(2)]
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 batch\(es\) with no labelled pixel \(every pixel is "
                                         r"ignore_index=255 or of a class with weight 0\)"):
        model, _ = run(tmp_path / "run", Memory(masks), class_weights=[0.0, 1.0, 2.0])
    assert all(np.isfinite(p.numpy()).all() for p in model.parameters())


def test_a_training_set_without_any_labelled_pixel_is_an_error(tmp_path):
    masks = [np.full((16, 16), 255)] * 3
    with pytest.raises(ValueError, match=r"train: epoch 1: all 3 training batch\(es\) have no labelled pixel "
                                         r"\(every pixel is ignore_index=255\): nothing to learn from"):
        run(tmp_path / "run", Memory(masks))
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")


def test_batches_with_some_labelled_pixels_are_kept(tmp_path):
    one_pixel = np.full((16, 16), 255)
    one_pixel[3, 4] = 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = run(tmp_path / "run", Memory([one_pixel, labelled(5)]))
    assert np.isfinite(history[0]["train_loss"]) and history[0]["train_loss"] > 0


# ----------------------------------------------------------------------------------------- non-finite losses
def _nan_from_call(monkeypatch, first_nan_call):
    real, calls = F.cross_entropy, []

    def cross_entropy(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) >= first_nan_call else loss

    monkeypatch.setattr(F, "cross_entropy", cross_entropy)


def test_a_nan_loss_before_any_update_does_not_blame_the_learning_rate(tmp_path, monkeypatch):
    _nan_from_call(monkeypatch, 1)
    with pytest.raises(FloatingPointError) as info:
        run(tmp_path / "run", Memory([labelled(1), labelled(2)]))
    message = str(info.value)
    assert message.startswith("train: the loss became nan in epoch 1, on the first batch, before any weight update")
    assert "the learning rate is not the cause" in message and "--lr" not in message


def test_a_loss_that_diverges_after_updates_suggests_a_lower_learning_rate(tmp_path, monkeypatch):
    _nan_from_call(monkeypatch, 4)
    with pytest.raises(FloatingPointError, match=r"train: the loss became nan in epoch 2 after 3 finite update\(s\): "
                                                 r"the weights diverged, .* lower it \(--lr 0\.001\)"):
        run(tmp_path / "run", Memory([labelled(1), labelled(2)]), epochs=2)
    assert mts.load(tmp_path / "run" / "checkpoint.npz")["epoch"] == 1


# ----------------------------------------------------------------------------------------- progress in logs
def test_progress_in_a_log_is_one_line_per_epoch(tmp_path, capsys):
    run(tmp_path / "run", Memory([labelled(i) for i in range(5)]), Memory([labelled(9)]), epochs=3, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 3, lines
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(rf"epoch {epoch}/3: 5/5 batch in \d+\.\d s \(\d+\.\d\d batch/s\), loss=\d\.\d{{4}}, "
                            r"img_s=\d+\.\d", line), line


def test_progress_in_a_log_also_writes_a_line_every_interval(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_INTERVAL", 0.0)  # a line at every update
    run(tmp_path / "run", Memory([labelled(i) for i in range(4)]), Memory([labelled(9), labelled(8)]),
        progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" in ")[0] for line in lines] == (
        ["epoch 1/1: 1/4 batch", "epoch 1/1: 2/4 batch", "epoch 1/1: 3/4 batch", "epoch 1/1: 4/4 batch",
         "epoch 1/1: 4/4 batch", "validation: 1/2 img", "validation: 2/2 img"]  # the 5th: the epoch's close
    )


def test_progress_on_a_terminal_is_the_redrawing_bar():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    for _ in progress_bar(range(50), total=50, desc="epoch 1/1", unit="batch", stream=screen):
        pass
    assert "\r" in screen.getvalue() and "50/50" in screen.getvalue()
    log = io.StringIO()
    for _ in progress_bar(range(50), total=50, desc="epoch 1/1", unit="batch", stream=log):
        pass
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()
    quiet = io.StringIO()
    for _ in progress_bar(range(5), total=5, enabled=False, stream=quiet):
        pass
    assert quiet.getvalue() == ""
    silent = LineProgress(range(3), total=3, desc="x", leave=False, stream=log)
    assert list(silent) == [0, 1, 2] and len(silent) == 3


# ----------------------------------------------------------------------------------------- best.npz
def _scripted_miou(monkeypatch, values):
    calls = []

    def evaluate(*args, **kwargs):
        results = EVALUATE(*args, **kwargs)
        results["miou"] = values[len(calls)]
        calls.append(1)
        return results

    monkeypatch.setattr(loop, "evaluate", evaluate)


def test_best_checkpoint_keeps_the_best_epoch_when_a_later_one_is_worse(tmp_path, monkeypatch):
    data, val = Memory([labelled(i) for i in range(3)]), Memory([labelled(7)])
    _scripted_miou(monkeypatch, [0.3, 0.5, 0.4, 0.45])
    run(tmp_path / "three", data, val, epochs=4)
    best, last = mts.load(tmp_path / "three" / "best.npz"), mts.load(tmp_path / "three" / "checkpoint.npz")
    assert best["epoch"] == 2 and last["epoch"] == 4
    assert [row["miou"] for row in best["history"]] == [0.3, 0.5]
    _scripted_miou(monkeypatch, [0.3, 0.5])
    run(tmp_path / "two", data, val, epochs=2)
    second = mts.load(tmp_path / "two" / "checkpoint.npz")["model_state"]
    for key, value in best["model_state"].items():  # the weights of epoch 2, not of a later epoch
        np.testing.assert_array_equal(value, second[key], err_msg=key)
    assert any(not np.array_equal(value, last["model_state"][key]) for key, value in best["model_state"].items())


# ----------------------------------------------------------------------------------------- crashes mid-write
class TornFile:
    """A writable file whose first ``write`` stores half of its bytes, then the power goes."""

    def __init__(self, raw):
        self._raw = raw

    def write(self, data):
        data = bytes(data)
        self._raw.write(data[: max(1, len(data) // 2)])
        self._raw.flush()
        raise KeyboardInterrupt("power cut in the middle of a write")

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._raw.close()


def tear_the_nth_write(monkeypatch, folder, n: int) -> list:
    """From now on, the ``n``-th file opened for writing under ``folder`` (by ``open`` or ``os.fdopen``) is torn.

    Returns the list of the paths opened for writing, in order.
    """
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name the file behind a descriptor")
    folder = os.path.realpath(folder)
    opened: list = []
    real_open, real_fdopen = builtins.open, os.fdopen

    def wrap(raw, path, mode):
        if not any(flag in mode for flag in "wax+") or not os.path.realpath(path).startswith(folder + os.sep):
            return raw
        opened.append(os.path.realpath(path))
        return TornFile(raw) if len(opened) == n + 1 else raw

    def fake_open(file, mode="r", *args, **kwargs):
        raw = real_open(file, mode, *args, **kwargs)
        return wrap(raw, os.fspath(file), mode) if isinstance(file, (str, bytes, os.PathLike)) else raw

    def fake_fdopen(fd, mode="r", *args, **kwargs):
        path = os.readlink(f"/proc/self/fd/{fd}")
        return wrap(real_fdopen(fd, mode, *args, **kwargs), path, mode)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "fdopen", fake_fdopen)
    return opened


def complete(path) -> bool:
    """Whether ``path`` is a whole file of its kind (a loadable checkpoint, CSV, JSON or PNG)."""
    try:
        if path.endswith(".npz"):
            return isinstance(mts.load(path)["epoch"], int)
        if path.endswith(".csv"):
            rows = list(csv.reader(open(path, newline="")))
            return rows[0][0] == "epoch" and all(len(r) == len(rows[0]) for r in rows) and len(rows) >= 2
        if path.endswith(".json"):
            return "history" in json.load(open(path))
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:
        return False


@pytest.mark.parametrize("n", range(len(FILES)))
def test_a_crash_in_the_middle_of_any_write_leaves_every_file_whole(tmp_path, monkeypatch, n):
    out = tmp_path / "run"
    data, val = Memory([labelled(i) for i in range(2)]), Memory([labelled(7)])
    _scripted_miou(monkeypatch, [0.2, 0.6])  # epoch 2 improves: it writes all five files
    run(out, data, val, epochs=1)
    before = {name: (out / name).read_bytes() for name in FILES}
    opened = tear_the_nth_write(monkeypatch, out, n)
    with pytest.raises(KeyboardInterrupt, match="power cut"):
        run(out, data, val, epochs=2, resume=True)
    monkeypatch.undo()
    assert len(opened) == n + 1, opened
    assert sorted(os.listdir(out)) == sorted(FILES), "no temporary file is left behind"
    torn = 0
    for name in FILES:
        path = os.fspath(out / name)
        assert complete(path), f"{name} is not a whole file after a crash while writing write #{n}"
        torn += (out / name).read_bytes() == before[name]
    assert torn >= len(FILES) - n, "the file being written and the ones after it keep their epoch-1 version"


def test_save_crashing_after_partial_bytes_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mts.save({"epoch": 1, "w": np.zeros(1000)}, path)
    before = path.read_bytes()
    tear_the_nth_write(monkeypatch, tmp_path, 0)
    with pytest.raises(KeyboardInterrupt, match="power cut"):
        mts.save({"epoch": 2, "w": np.ones(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and mts.load(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("kind", ["text", "png"])
def test_atomic_write_crashing_after_partial_bytes_keeps_the_old_file(tmp_path, monkeypatch, kind):
    path = tmp_path / ("a.csv" if kind == "text" else "a.png")
    if kind == "text":
        def writer(fh):
            fh.write(b"epoch,loss\n1,0.5\n2,0.25\n")
    else:
        def writer(fh):
            Image.fromarray(np.full((8, 8), 200, np.uint8)).save(fh, format="PNG")
    path.write_bytes(b"the old version\n")
    tear_the_nth_write(monkeypatch, tmp_path, 0)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, writer)
    monkeypatch.undo()
    assert path.read_bytes() == b"the old version\n" and os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("n", range(5))
def test_a_crash_in_the_middle_of_a_command_line_png_write_leaves_every_file_whole(tmp_path, monkeypatch, capsys, n):
    pytest.importorskip("minitorchseg.kmeans")
    from minitorchseg.cli import main

    image = np.zeros((12, 10, 3), dtype=np.uint8)
    image[:, 5:] = (250, 10, 10)
    image[6:, :5] = (10, 10, 250)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(image[::-1].copy()).save(tmp_path / "b.png")
    out = tmp_path / "km"
    assert main(["kmeans", str(tmp_path / "a.png"), "--k", "3", "--out", str(out)]) == 0
    names = sorted(os.listdir(out))
    before = {name: (out / name).read_bytes() for name in names}
    opened = tear_the_nth_write(monkeypatch, out, n)
    assert main(["kmeans", str(tmp_path / "b.png"), "--k", "3", "--out", str(out)]) == 130
    monkeypatch.undo()
    assert len(opened) == n + 1 and "interrupted" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == names, "no temporary file is left behind"
    assert all(complete(os.fspath(out / name)) for name in names)
    assert sum((out / name).read_bytes() == before[name] for name in names) >= len(names) - n
