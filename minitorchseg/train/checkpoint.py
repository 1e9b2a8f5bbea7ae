"""The training checkpoint: what :func:`~minitorchseg.train.train` saves after each epoch, and how it is read back.

A checkpoint is a :func:`minitorchseg.save` archive (``.npz``, no pickle) holding
a dict with ``format`` = ``"minitorchseg-train-v1"``; :func:`load_checkpoint`
rebuilds the model from the file alone through the model registry
(:func:`minitorchseg.models.get_model`).
"""

from __future__ import annotations

import json
import os

from minitorchseg.random import default_generator, manual_seed
from minitorchseg.serialization import CheckpointError, load

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "BEST_NAME", "build_model", "make_checkpoint", "read_checkpoint",
           "check_checkpoint_model", "load_checkpoint", "load_weights", "restore_run"]

CHECKPOINT_FORMAT = "minitorchseg-train-v1"
CHECKPOINT_NAME = "checkpoint.npz"
BEST_NAME = "best.npz"


def build_model(name: str, kwargs: dict | None = None):
    """``get_model(name, **kwargs)`` with an argument the model does not take reported as a ValueError
    (a user's error on the command line or in a checkpoint, not a programming error)."""
    from minitorchseg.models import get_model

    try:
        return get_model(name, **(kwargs or {}))
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def make_checkpoint(model, optimizer, epoch: int, model_name: str, model_kwargs: dict, data_info: dict,
                    config: dict, history: list[dict]) -> dict:
    """The dict :func:`train` saves after each epoch.

    Keys: ``format``, ``model`` (``{"name", "kwargs"}``), ``model_state`` (the state
    dict), ``optimizer_state``, ``epoch`` (epochs done), ``data`` (``num_classes``,
    ``class_names``, ``palette``, ``ignore_index``, ``mean``, ``std``, ``spec``),
    ``config`` (the training settings), ``history`` (one dict per epoch) and ``rng``
    (the global generator's state).
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "model": {"name": model_name, "kwargs": dict(model_kwargs)},
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "epoch": int(epoch),
        "data": data_info,
        "config": config,
        "history": history,
        "rng": json.dumps(default_generator().bit_generator.state),
    }


def read_checkpoint(path) -> dict:
    """Load ``path`` and check that it is a training checkpoint; ``CheckpointError`` otherwise."""
    ckpt = load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a minitorchseg training checkpoint (no format {CHECKPOINT_FORMAT!r}); "
            "write one with `minitorchseg train`"
        )
    for key in ("model", "model_state", "data", "epoch"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} has no {key!r} entry")
    return ckpt


def check_checkpoint_model(ckpt: dict, path, model_name: str | None, model_kwargs: dict | None = None) -> None:
    """ValueError when the checkpoint at ``path`` was written for another model (name or arguments)."""
    saved_name, saved_kwargs = ckpt["model"]["name"], dict(ckpt["model"]["kwargs"])
    if model_name is not None and model_name != saved_name:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} holds a {saved_name!r} model ({_kwargs_text(saved_kwargs)}), "
            f"not {model_name!r}"
        )
    if model_kwargs is not None:
        given = {k: v for k, v in model_kwargs.items()}
        if _normal(given) != _normal(saved_kwargs):
            raise ValueError(
                f"checkpoint {os.fspath(path)!r} holds {saved_name!r} with arguments ({_kwargs_text(saved_kwargs)}), "
                f"but ({_kwargs_text(given)}) were asked"
            )


def _normal(kwargs: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))


def load_checkpoint(path, device: str = "cpu", model_name: str | None = None):
    """``(model, checkpoint)``: the model rebuilt from the file alone, weights loaded, in eval mode.

    Errors: a missing file (FileNotFoundError), a corrupt or foreign file
    (:class:`~minitorchseg.serialization.CheckpointError`), a checkpoint of another
    model than ``model_name``, of an instance segmentation model, or whose weights
    do not fit the model it names (ValueError).
    """
    ckpt = read_checkpoint(path)
    if ckpt.get("task", "semantic") != "semantic":
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} holds an instance segmentation model ({ckpt['model']['name']!r}); "
            "load it with minitorchseg.train.instance.load_instance_checkpoint"
        )
    check_checkpoint_model(ckpt, path, model_name)
    name, kwargs = ckpt["model"]["name"], dict(ckpt["model"]["kwargs"])
    model = build_model(name, kwargs)
    load_weights(model, ckpt, path)
    model.to(device)
    model.eval()
    return model, ckpt


def load_weights(model, ckpt: dict, path) -> None:
    try:
        model.load_state_dict(ckpt["model_state"])
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise ValueError(
            f"checkpoint {os.fspath(path)!r}: its weights do not fit the model it names "
            f"({ckpt['model']['name']!r}, {_kwargs_text(dict(ckpt['model']['kwargs']))}): {message}"
        ) from None


def restore_run(ckpt: dict | None, path, model, optimizer, log=print, seed: int = 0) -> tuple[int, list[dict]]:
    """Start a run: a new one seeds the global generator with ``seed``; a resumed one (``ckpt`` read from ``path``)
    restores the weights, the optimiser state and the global generator.

    Returns ``(epochs done, history)``; the loop continues with the epoch after
    them, so a run of ``a + b`` epochs equals one of ``a`` resumed for ``b``.
    """
    if ckpt is None:
        manual_seed(seed)
        return 0, []
    load_weights(model, ckpt, path)
    optimizer.load_state_dict(ckpt["optimizer_state"])
    default_generator().bit_generator.state = json.loads(ckpt["rng"])
    done = int(ckpt["epoch"])
    log(f"resuming from {os.fspath(path)} after epoch {done}")
    return done, [dict(row) for row in ckpt.get("history", [])]
