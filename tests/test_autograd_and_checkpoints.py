"""The engine's rules (accumulation, reuse, freed graphs, clear errors) and atomic checkpoints."""

import os

import numpy as np
import pytest

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.serialization import CheckpointError


def test_tensor_used_twice_receives_both_contributions():
    x = mts.tensor(np.array([3.0]), requires_grad=True)
    y = x * x + x  # x reaches y along three paths
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [7.0])


def test_leaf_gradients_accumulate_until_zero_grad():
    layer = mts.nn.Linear(2, 1)
    x = mts.tensor(np.ones((1, 2), dtype=np.float32))
    layer(x).sum().backward()
    first = layer.weight.grad.numpy().copy()
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), 2 * first)
    layer.zero_grad()
    assert layer.weight.grad is None


def test_defaults_float32_ints_int64_and_float64_kept():
    assert mts.tensor([1.0, 2.0]).dtype == np.float32
    assert mts.tensor([1, 2]).dtype == np.int64
    assert mts.tensor(np.zeros(2)).dtype == np.float64
    assert (mts.tensor(np.zeros(2)) * 2.0).dtype == np.float64
    assert mts.zeros(2, 3).shape == (2, 3)


def test_no_grad_records_nothing():
    x = mts.tensor([1.0], requires_grad=True)
    with mts.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert (x * 2).requires_grad


def test_detach_and_item():
    x = mts.tensor([2.5], requires_grad=True)
    assert x.detach().grad_fn is None and not x.detach().requires_grad
    assert (x * 2).item() == 5.0
    with pytest.raises(ValueError, match="expected a tensor with one element, got shape \\(2,\\)"):
        mts.tensor([1.0, 2.0]).item()


def test_backward_on_non_scalar_needs_gradient():
    x = mts.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs, got shape \\(2,\\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="gradient has shape \\(3,\\), expected the tensor's shape \\(2,\\)"):
        (x * 2).backward(mts.tensor([1.0, 1.0, 1.0]))


def test_backward_twice_through_freed_graph_is_a_clear_error():
    x = mts.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * np.array([1.0, 2.0])) + 2 * np.array([1.0, 2.0]))


def test_mismatched_shapes_and_wrong_dtypes_are_clear_errors():
    a, b = mts.zeros(2, 3), mts.zeros(4)
    with pytest.raises(ValueError, match="add: shapes \\(2, 3\\) and \\(4,\\) cannot be broadcast"):
        a + b
    with pytest.raises(ValueError, match="matmul: shapes \\(2, 3\\) and \\(4,\\) do not align"):
        a @ b
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        mts.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="target must hold integer class indices"):
        F.cross_entropy(mts.zeros(2, 3), mts.zeros(2))
    with pytest.raises(ValueError, match="target value 5 is out of range"):
        F.cross_entropy(mts.zeros(2, 3), mts.tensor([0, 5]))
    with pytest.raises(ValueError, match="target has shape \\(3,\\), expected \\(2,\\)"):
        F.cross_entropy(mts.zeros(2, 3), mts.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="reshape: shape \\(4, 4\\) is invalid for input of shape \\(2, 3\\)"):
        a.reshape(4, 4)
    with pytest.raises(ValueError, match="cat: tensor 1 has shape \\(4, 2\\); expected \\(2, 3\\) except in dim"):
        F.cat([mts.zeros(2, 3), mts.zeros(4, 2)], 0)


def test_checkpoint_round_trip_nested(tmp_path):
    state = {"model": {"conv.weight": np.arange(6.0).reshape(2, 3), "bn.num_batches_tracked": np.array(3)},
             "optimizer": {"state": {0: {"step": 4, "exp_avg": np.ones(2, np.float32)}},
                           "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]},
             "epoch": 7, "name": "unet", "args": {"base_channels": 16, "bilinear": False, "extra": None}}
    path = tmp_path / "ckpt.npz"
    mts.save(state, path)
    back = mts.load(path)
    np.testing.assert_array_equal(back["model"]["conv.weight"], state["model"]["conv.weight"])
    assert back["optimizer"]["state"][0]["step"] == 4
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["epoch"] == 7 and back["name"] == "unet" and back["args"]["extra"] is None
    assert back["optimizer"]["state"][0]["exp_avg"].dtype == np.float32


def test_checkpoint_write_is_atomic_when_the_writer_crashes(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mts.save({"version": 1, "w": np.zeros(3)}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        mts.save({"version": 2, "w": np.ones(3)}, path)
    monkeypatch.undo()
    assert mts.load(path)["version"] == 1  # the old checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # and no temporary file is left behind


def test_corrupt_truncated_and_foreign_files_are_clear_errors(tmp_path):
    path = tmp_path / "ckpt.npz"
    mts.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        mts.load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        mts.load(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a minitorchseg checkpoint"):
        mts.load(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __structure__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        mts.load(pickled)  # allow_pickle=False refuses object arrays
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        mts.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="cannot save an object of type"):
        mts.save({"f": lambda: 0}, tmp_path / "x.npz")
