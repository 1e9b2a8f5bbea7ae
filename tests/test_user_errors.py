"""Mistakes a new user makes, each a clear error (found by trying the README from a fresh clone)."""

from __future__ import annotations

import pytest

import minitorchseg as mts
from minitorchseg.cli import build_parser, main
from minitorchseg.serialization import CheckpointError
from minitorchseg.train import load_checkpoint


def test_a_text_file_is_not_a_checkpoint_and_the_message_does_not_talk_of_pickles(tmp_path, capsys):
    path = tmp_path / "notes.npz"
    path.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"is not a minitorchseg checkpoint \(not a NumPy .npz archive"):
        mts.load(path)
    assert main(["eval", str(path)]) == 1
    err = capsys.readouterr().err
    assert "not a NumPy .npz archive" in err and "pickle" not in err


def test_the_semantic_loader_refuses_an_instance_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    mts.save({"format": "minitorchseg-train-v1", "task": "instance", "model": {"name": "maskrcnn", "kwargs": {}},
              "model_state": {}, "data": {}, "epoch": 1}, path)
    with pytest.raises(ValueError, match="instance segmentation model.*load_instance_checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("argv, folder", [
    (["demo"], "runs/demo"), (["demo", "--quick"], "runs/demo-quick"),
    (["demo", "--task", "instance"], "runs/demo-instance"),
    (["demo", "--task", "instance", "--quick"], "runs/demo-instance-quick"),
])
def test_each_demo_writes_its_own_folder(argv, folder, monkeypatch):
    import minitorchseg.cli as cli
    import minitorchseg.cli_instance as cli_instance

    seen = []
    monkeypatch.setattr(cli_instance, "cmd_demo_instance", lambda args: seen.append(args.out) or 0)
    monkeypatch.setattr(cli, "DEMO_SETTINGS", None)  # the semantic demo stops right after choosing its folder
    args = build_parser().parse_args(argv)
    try:
        cli.cmd_demo(args)
    except TypeError:
        seen.append(args.out)
    assert seen == [folder]


def test_a_crop_larger_than_the_images_is_an_error_before_the_run_folder_is_made(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "unet", "--model-arg", "base_channels=2", "--model-arg", "depth=1", "--data",
            "shapes:size=16,train=2,val=1", "--crop", "24,16", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "crop (h, w) = (24, 16) is larger than the training images (16x16" in err
    assert "pad_if_needed" not in err  # a Python argument, not a command-line option
    assert not out.exists()
    assert main(argv[:argv.index("--crop")] + ["--crop", "16,8"] + argv[argv.index("--epochs"):]) == 0
