"""Training, evaluation and prediction for segmentation models.

::

    model = get_model("unet", num_classes=4, base_channels=8, depth=2)
    history = train(model, train_set, val_set, epochs=5, out_dir="runs/shapes",
                    model_name="unet", model_kwargs=dict(num_classes=4, base_channels=8, depth=2))
    model, ckpt = load_checkpoint("runs/shapes/checkpoint.npz")     # rebuilt from the file alone
    results = evaluate(model, val_set, mean=ckpt["data"]["mean"], std=ckpt["data"]["std"])
    labels = predict(model, image, mean=..., std=...)               # (H, W) int64

One epoch of :func:`train`:

1. the training set is visited in the order of ``DataLoader(seed)`` for that epoch,
   each item randomly cropped (``crop``) and flipped (``flip``), then normalised
   ``(image / 255 - mean) / std``;
2. per batch: logits = model(x); loss = cross_entropy(logits, y, class weights,
   ignore_index); backward; optimiser step. A tqdm bar shows the running loss and
   images per second;
3. the model is evaluated on the validation set (:func:`evaluate`: a confusion
   matrix over every pixel, :class:`~minitorchseg.metrics.ConfusionMatrix`);
4. the checkpoint ``out_dir/checkpoint.npz`` is written atomically with
   :func:`minitorchseg.save` (and ``best.npz`` when the validation mIoU improved),
   then ``metrics.csv``, ``metrics.json`` and ``curve.png`` (loss and mIoU per epoch).

A checkpoint is a dict (see :func:`make_checkpoint`) holding the weights, the
optimiser state, the epochs done, the model's name and constructor arguments, the
data's classes, palette, ignore label and normalisation, the training settings,
the metric history and the state of the global random generator. With
``resume=True`` training continues from ``out_dir/checkpoint.npz``: a run of 2
epochs equals a run of 1 epoch resumed for 1 more, weight for weight.

Every file is written to a temporary name in its folder and renamed into place,
so a crash (or Ctrl-C) at any moment leaves the previous version of each file
or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time

import numpy as np
from tqdm.auto import tqdm

from minitorchseg import functional as F
from minitorchseg import optim
from minitorchseg.autograd import no_grad
from minitorchseg.data.loader import DataLoader
from minitorchseg.data.palettes import colorize
from minitorchseg.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize
from minitorchseg.metrics import ConfusionMatrix
from minitorchseg.random import default_generator, manual_seed
from minitorchseg.serialization import CheckpointError, load, save
from minitorchseg.tensor import Tensor

__all__ = [
    "CHECKPOINT_FORMAT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_model",
    "known_models",
    "make_optimizer",
    "scheduled_lr",
    "make_checkpoint",
    "load_checkpoint",
    "check_checkpoint_model",
    "train",
    "evaluate",
    "predict",
    "overlay",
    "atomic_write",
    "write_metrics",
    "plot_curves",
]

CHECKPOINT_FORMAT = "minitorchseg-train-v1"
CHECKPOINT_NAME = "checkpoint.npz"
BEST_NAME = "best.npz"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "poly")
POLY_POWER = 0.9


# ---------------------------------------------------------------------------------------------- models
def known_models() -> list[str]:
    """The names :func:`build_model` accepts (``minitorchseg.models.list_models()``)."""
    from minitorchseg.models import list_models

    return list(list_models())


def build_model(name: str, kwargs: dict | None = None):
    """``minitorchseg.models.get_model(name, **kwargs)``.

    An unknown name is a ValueError listing the known ones; an argument the model
    does not take is a ValueError listing the ones it does.
    """
    from minitorchseg.models import get_model

    names = known_models()
    if name not in names:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(names)}")
    try:
        return get_model(name, **(kwargs or {}))
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """``adam`` → Adam(lr, weight_decay); ``sgd`` → SGD(lr, momentum, weight_decay)."""
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def scheduled_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (from 0): ``lr``, or ``lr (1 - epoch / epochs)^0.9`` for ``poly``."""
    if schedule == "poly":
        return float(lr) * (1.0 - epoch / epochs) ** POLY_POWER
    return float(lr)


# ---------------------------------------------------------------------------------------------- files
def atomic_write(path, write) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path`` (binary mode), then rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_text(path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def _json_value(value):
    """Floats NaN → None, arrays → lists: JSON that every reader accepts."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_value(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(out_dir, history: list[dict], class_names, config: dict | None = None) -> None:
    """``metrics.csv`` (one row per epoch, per-class IoU columns) and ``metrics.json`` (history and config)."""
    columns = ["epoch", "train_loss", "val_loss", "miou", "pixel_accuracy", "mean_accuracy", "fwiou", "lr",
               "seconds", "elapsed_seconds", "images_per_second"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns + [f"iou_{name}" for name in class_names])
    for row in history:
        cells = [row.get(key) for key in columns] + list(row.get("iou") or [None] * len(class_names))
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in cells])
    _write_text(os.path.join(out_dir, "metrics.csv"), buffer.getvalue())
    payload = {"class_names": list(class_names), "history": history, "config": config or {}}
    _write_text(os.path.join(out_dir, "metrics.json"), json.dumps(_json_value(payload), indent=2) + "\n")


def plot_curves(path, history: list[dict]) -> None:
    """A PNG with the training/validation loss and the validation mIoU per epoch (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    ax_loss, ax_iou = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    val = [row.get("val_loss") for row in history]
    if any(v is not None for v in val):
        ax_loss.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    miou = [row.get("miou") for row in history]
    ax_iou.plot(epochs, [np.nan if v is None else v for v in miou], "o-", color="tab:green")
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("validation mIoU")
    ax_iou.set_ylim(0, 1)
    ax_iou.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))


# ---------------------------------------------------------------------------------------------- checkpoints
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
    model than ``model_name`` or whose weights do not fit the model it names (ValueError).
    """
    ckpt = read_checkpoint(path)
    check_checkpoint_model(ckpt, path, model_name)
    name, kwargs = ckpt["model"]["name"], dict(ckpt["model"]["kwargs"])
    model = build_model(name, kwargs)
    _load_weights(model, ckpt, path)
    model.to(device)
    model.eval()
    return model, ckpt


def _load_weights(model, ckpt: dict, path) -> None:
    try:
        model.load_state_dict(ckpt["model_state"])
    except (KeyError, ValueError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise ValueError(
            f"checkpoint {os.fspath(path)!r}: its weights do not fit the model it names "
            f"({ckpt['model']['name']!r}, {_kwargs_text(dict(ckpt['model']['kwargs']))}): {message}"
        ) from None


# ---------------------------------------------------------------------------------------------- inference
def _normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 → ``(N, 3, H, W)`` float32 ``(x / 255 - mean) / std``."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2) * np.float32(1.0 / 255.0)
    mean = np.asarray(mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(std, dtype=np.float32)[None, :, None, None]
    return np.ascontiguousarray((x - mean) / std)


def _same_size_batches(data, batch_size: int):
    """Consecutive items of ``data`` grouped into batches of at most ``batch_size`` items of one size."""
    images, masks = [], []
    for i in range(len(data)):
        image, mask = data[i]
        if images and (len(images) == batch_size or image.shape != images[0].shape):
            yield np.stack(images), np.stack(masks)
            images, masks = [], []
        images.append(image)
        masks.append(np.asarray(mask, dtype=np.int64))
    if images:
        yield np.stack(images), np.stack(masks)


def evaluate(model, data, *, batch_size: int = 8, device: str = "cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD,
             resize=None, class_weights=None, progress: bool = False, desc: str = "eval") -> dict:
    """Metrics of ``model`` on every pixel of ``data`` (items ``(image (H, W, 3) uint8, mask (H, W))``).

    Returns :meth:`ConfusionMatrix.compute`'s dict plus ``loss`` (the mean
    cross-entropy per labelled pixel, with ``class_weights`` when given) and
    ``matrix`` (the confusion matrix). ``data`` needs ``num_classes`` and
    ``ignore_index``. Items are batched in order, consecutive items of one size
    together; ``resize = (h, w)`` resizes every item first. The model is put in
    eval mode and left there.
    """
    ignore = data.ignore_index
    matrix = ConfusionMatrix(data.num_classes, ignore)
    weight = None if class_weights is None else Tensor(np.asarray(class_weights, np.float32), device=device)
    resizer = Resize(resize) if resize is not None else None
    total_loss, total_weight = 0.0, 0.0
    model.eval()
    bar = tqdm(total=len(data), desc=desc, unit="img", disable=not progress, leave=False)
    with no_grad():
        for images, masks in _same_size_batches(_Resized(data, resizer), batch_size):
            x = Tensor(_normalize(images, mean, std), device=device)
            logits = model(x)
            y = Tensor(masks, device=device)
            loss = F.cross_entropy(logits, y, weight=weight, ignore_index=-100 if ignore is None else ignore,
                                   reduction="sum")
            total_loss += float(loss.item())
            counted = masks != ignore if ignore is not None else np.ones(masks.shape, dtype=bool)
            w = np.asarray(class_weights, np.float64)[masks[counted]] if class_weights is not None else None
            total_weight += float(w.sum()) if w is not None else float(counted.sum())
            matrix.update(logits.argmax(dim=1).numpy(), masks)
            bar.update(len(images))
    bar.close()
    results = matrix.compute()
    results["loss"] = total_loss / total_weight if total_weight else math.nan
    results["matrix"] = matrix.matrix.copy()
    return results


class _Resized:
    """``data`` with every item passed through ``resizer`` (or unchanged when it is None)."""

    def __init__(self, data, resizer):
        self.data, self.resizer = data, resizer

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image, mask = self.data[i]
        return self.resizer(image, mask) if self.resizer is not None else (image, mask)


def predict(model, image: np.ndarray, *, device: str = "cpu", mean=IMAGENET_MEAN, std=IMAGENET_STD,
            resize=None) -> np.ndarray:
    """The label map ``(H, W)`` int64 that ``model`` predicts for one ``(H, W, 3)`` uint8 image.

    With ``resize = (h, w)`` (the size the model was trained at) the image is
    resized for the network and the labels are resized back to ``(H, W)`` by
    nearest neighbour.
    """
    from minitorchseg.data.transforms import resize_image, resize_mask

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"predict: image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
    height, width = image.shape[:2]
    if resize is not None and tuple(resize) != (height, width):
        image = resize_image(image, tuple(resize))
    model.eval()
    with no_grad():
        logits = model(Tensor(_normalize(image[None], mean, std), device=device))
        labels = logits.argmax(dim=1).numpy()[0]
    if labels.shape != (height, width):
        labels = resize_mask(labels, (height, width))
    return labels.astype(np.int64)


def overlay(image: np.ndarray, labels: np.ndarray, palette, alpha: float = 0.5, ignore_index=None) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colorize(labels)``, ``(H, W, 3)`` uint8."""
    colours = colorize(labels, palette, ignore_index=ignore_index).astype(np.float32)
    mixed = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- training
def _train_transform(crop, flip: bool, ignore_index, mean, std, resize):
    steps = []
    if resize is not None:
        steps.append(Resize(resize))
    if crop is not None:
        fill = ignore_index if ignore_index is not None else 0
        steps.append(RandomCrop(crop, pad_if_needed=ignore_index is not None, mask_fill=fill))
    if flip:
        steps.append(RandomHorizontalFlip(0.5))
    steps.append(Normalize(mean, std))
    return Compose(steps)


def _data_info(data, mean, std, resize, spec) -> dict:
    return {
        "num_classes": int(data.num_classes),
        "class_names": [str(n) for n in data.class_names],
        "palette": np.asarray(data.palette, dtype=np.uint8),
        "ignore_index": None if data.ignore_index is None else int(data.ignore_index),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "resize": None if resize is None else [int(v) for v in resize],
        "spec": spec,
    }


def train(model, train_data, val_data=None, *, epochs: int, out_dir, model_name: str, model_kwargs: dict,
          batch_size: int = 8, lr: float = 1e-3, optimizer: str = "adam", momentum: float = 0.9,
          weight_decay: float = 0.0, lr_schedule: str = "constant", class_weights=None, crop=None,
          flip: bool = True, resize=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, device: str = "cpu", seed: int = 0,
          resume: bool = False,
          eval_batch_size: int | None = None, data_spec: str | None = None, extra_config: dict | None = None,
          progress: bool = True, log=print) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones); returns the metric history.

    ``model_name`` and ``model_kwargs`` must rebuild ``model`` through
    :func:`build_model` (they go into the checkpoint). ``class_weights``:
    ``(num_classes,)`` or None; ``crop``: ``(h, w)`` random training crops;
    ``resize``: ``(h, w)`` applied to every image first. ``lr_schedule``: ``constant``,
    or ``poly``: epoch ``e`` (from 0) uses ``lr (1 - e / epochs)^0.9``. With ``resume`` the run
    continues from ``out_dir/checkpoint.npz`` (which must hold the same model):
    weights, optimiser state, epoch, history and random state come from it.
    See the module docstring for one epoch's steps and the files written.
    """
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"train: epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"train: batch_size must be a positive int, got {batch_size!r}")
    if len(train_data) == 0:
        raise ValueError("train: the training set is empty")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"train: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    num_classes, ignore = train_data.num_classes, train_data.ignore_index
    if class_weights is not None:
        class_weights = np.asarray(class_weights, dtype=np.float64)
        if class_weights.shape != (num_classes,):
            raise ValueError(f"train: class_weights must have shape ({num_classes},), got {class_weights.shape}")
    out_dir = os.fspath(out_dir)
    checkpoint_path = os.path.join(out_dir, CHECKPOINT_NAME)
    ckpt = None
    if resume:
        ckpt = read_checkpoint(checkpoint_path)
        check_checkpoint_model(ckpt, checkpoint_path, model_name, model_kwargs)
    model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    config = {
        "model": model_name, "model_kwargs": dict(model_kwargs), "data": data_spec, "epochs": int(epochs),
        "batch_size": int(batch_size), "lr": float(lr), "optimizer": optimizer, "momentum": float(momentum),
        "weight_decay": float(weight_decay), "lr_schedule": lr_schedule,
        "class_weights": None if class_weights is None else class_weights,
        "crop": None if crop is None else list(crop), "resize": None if resize is None else list(resize),
        "flip": bool(flip), "seed": int(seed), "device": device,
        **(extra_config or {}),
    }
    data_info = _data_info(train_data, mean, std, resize, data_spec)
    history: list[dict] = []
    start_epoch = 0
    if ckpt is not None:
        _load_weights(model, ckpt, checkpoint_path)
        opt.load_state_dict(ckpt["optimizer_state"])
        start_epoch = int(ckpt["epoch"])
        history = [dict(row) for row in ckpt.get("history", [])]
        default_generator().bit_generator.state = json.loads(ckpt["rng"])
        log(f"resuming from {checkpoint_path} after epoch {start_epoch}")
        if start_epoch >= epochs:
            log(f"the checkpoint has already done {start_epoch} epoch(s) of {epochs}: nothing to train")
            return history
    else:
        manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)

    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=len(train_data) > batch_size,
                        transform=_train_transform(crop, flip, ignore, mean, std, resize), seed=seed)
    loader.epoch = start_epoch
    weight = None if class_weights is None else Tensor(class_weights.astype(np.float32), device=device)
    ignore_arg = -100 if ignore is None else ignore
    best = max((row["miou"] for row in history if row.get("miou") is not None), default=-math.inf)

    for epoch in range(start_epoch, epochs):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, lr_schedule, epoch, epochs)
        model.train()
        started = time.perf_counter()
        seen, loss_sum = 0, 0.0
        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, dynamic_ncols=True)
        for images, masks in bar:
            x = Tensor(images, device=device)
            y = Tensor(masks, device=device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=weight, ignore_index=ignore_arg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"train: the loss became {value} in epoch {epoch + 1}; lower the learning rate (--lr {lr})"
                )
            seen += len(images)
            loss_sum += value * len(images)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / (time.perf_counter() - started):.1f}")
        bar.close()
        train_seconds = time.perf_counter() - started
        row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "lr": float(opt.param_groups[0]["lr"]),
               "images_per_second": seen / train_seconds}
        if val_data is not None and len(val_data):
            results = evaluate(model, val_data, batch_size=eval_batch_size or batch_size, device=device, mean=mean,
                               std=std, resize=resize, class_weights=class_weights, progress=progress,
                               desc="validation")
            row.update(val_loss=results["loss"], miou=results["miou"], pixel_accuracy=results["pixel_accuracy"],
                       mean_accuracy=results["mean_accuracy"], fwiou=results["fwiou"],
                       iou=[None if math.isnan(v) else float(v) for v in results["iou"]])
        row["seconds"] = time.perf_counter() - started
        previous = history[-1].get("elapsed_seconds") if history else None
        row["elapsed_seconds"] = (previous or 0.0) + row["seconds"]
        history.append(_json_value(row))
        state = make_checkpoint(model, opt, epoch + 1, model_name, model_kwargs, data_info, config, history)
        save(state, checkpoint_path)
        miou = row.get("miou")
        if miou is not None and not math.isnan(miou) and miou > best:
            best = miou
            save(state, os.path.join(out_dir, BEST_NAME))
        write_metrics(out_dir, history, data_info["class_names"], config)
        plot_curves(os.path.join(out_dir, "curve.png"), history)
        summary = f"epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f}"
        if miou is not None:
            summary += (f", val loss {row['val_loss']:.4f}, val mIoU {miou:.4f}, "
                        f"pixel accuracy {row['pixel_accuracy']:.4f}")
        log(summary + f" ({row['seconds']:.1f} s, {row['images_per_second']:.1f} img/s)")
    return history
