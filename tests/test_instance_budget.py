"""train_instance's wall-time budget (max_seconds) and sparse validation (val_every), on the fake detector."""

import pytest

from minitorchseg.data.instances import InstanceShapes
from minitorchseg.serialization import load
from minitorchseg.train.instance import train_instance
from tests.instance_fakes import FakeMaskRCNN


def tiny(n=6, seed=0):
    return InstanceShapes(n, size=24, seed=seed, min_size=6, max_size=12, max_objects=2)


def _kwargs(**extra):
    return dict(model_name="maskrcnn", model_kwargs={"num_classes": 4}, batch_size=2, lr=0.05, warmup_steps=0,
                progress=False, log=lambda *a: None, **extra)


def test_max_seconds_ends_the_epoch_after_the_step_that_reaches_it(tmp_path):
    # Any step takes longer than 1 ns: the first epoch stops after its first step, is validated and saved.
    history = train_instance(FakeMaskRCNN(4), tiny(6), tiny(3, seed=1), epochs=3, out_dir=tmp_path,
                             **_kwargs(max_seconds=1e-9))
    assert len(history) == 1
    row = history[0]
    assert row["stopped"] == "max_seconds" and row["epoch"] == 1
    assert row["train_seconds"] > 0 and row["images_per_second"] == pytest.approx(2 / row["train_seconds"])
    assert row["mask_AP"] is not None
    assert load(tmp_path / "checkpoint.npz")["epoch"] == 1
    assert "stopped" in (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")


def test_without_a_budget_every_epoch_runs_and_nothing_is_stopped(tmp_path):
    history = train_instance(FakeMaskRCNN(4), tiny(6), tiny(3, seed=1), epochs=2, out_dir=tmp_path,
                             **_kwargs(max_seconds=3600))
    assert [row["epoch"] for row in history] == [1, 2]
    assert all("stopped" not in row and row["train_seconds"] > 0 for row in history)


def test_val_every_validates_every_nth_epoch_and_the_last(tmp_path):
    history = train_instance(FakeMaskRCNN(4), tiny(6), tiny(3, seed=1), epochs=5, out_dir=tmp_path,
                             **_kwargs(val_every=2))
    assert [row.get("mask_AP") is not None for row in history] == [False, True, False, True, True]


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "60"])
def test_bad_max_seconds_is_refused_before_any_work(tmp_path, bad):
    with pytest.raises(ValueError, match=r"train_instance: max_seconds must be a positive finite number"):
        train_instance(FakeMaskRCNN(4), tiny(6), None, epochs=1, out_dir=tmp_path / "run", **_kwargs(max_seconds=bad))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_bad_val_every_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="val_every"):
        train_instance(FakeMaskRCNN(4), tiny(6), None, epochs=1, out_dir=tmp_path / "run", **_kwargs(val_every=bad))
    assert not (tmp_path / "run").exists()


SHAPES = "shapes:size=24,train=6,val=3,test=3,min_size=6,max_size=12,max_objects=2"


@pytest.fixture
def fake_registry(monkeypatch):
    from minitorchseg.models import registry
    from tests.instance_fakes import fake_maskrcnn

    monkeypatch.setitem(registry._MODELS, "maskrcnn", fake_maskrcnn)


def test_cli_max_minutes_and_val_every(tmp_path, capsys, fake_registry):
    from minitorchseg.cli import main

    out = tmp_path / "run"
    code = main(["train", "--model", "maskrcnn", "--data", SHAPES, "--epochs", "3", "--out", str(out), "--batch-size",
                 "2", "--max-minutes", "1e-9", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "epoch 1/3" in text and "val mask AP" in text and "reached max_seconds" in text
    assert load(out / "checkpoint.npz")["epoch"] == 1
    code = main(["train", "--model", "maskrcnn", "--data", SHAPES, "--epochs", "3", "--out", str(tmp_path / "sparse"),
                 "--batch-size", "2", "--val-every", "2", "--quiet"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert code == 0 and ["val mask AP" in line for line in lines] == [False, True, True]
    code = main(["train", "--model", "unet", "--data", SHAPES, "--val-every", "2", "--out", str(tmp_path / "u")])
    assert code != 0 and "--val-every: only for instance models" in capsys.readouterr().err
