"""Train, evaluate, predict: the loops of semantic segmentation (one epoch: see :mod:`minitorchseg.train`)."""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

from minitorchseg import functional as F
from minitorchseg.autograd import no_grad
from minitorchseg.data.loader import DataLoader
from minitorchseg.data.palettes import colorize
from minitorchseg.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize
from minitorchseg.metrics import ConfusionMatrix
from minitorchseg.serialization import save
from minitorchseg.tensor import Tensor

from .checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    check_checkpoint_model,
    make_checkpoint,
    read_checkpoint,
    restore_run,
)
from .config import IMAGENET_MEAN, IMAGENET_STD, TrainConfig, make_optimizer, scheduled_lr
from .progress import progress_bar
from .reporting import json_value, plot_curves, write_metrics

__all__ = ["train", "evaluate", "predict", "overlay"]


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
    bar = progress_bar(total=len(data), desc=desc, unit="img", enabled=progress, leave=False)
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


def _check_crop_fits(crop, resize, ignore_index, train_data) -> None:
    """ValueError, before any file is written, when random crops cannot be cut from the first training image.

    Crops larger than an image are padded with the ignore label when the data set has one; without one they
    cannot be, so a crop larger than the (resized) first image fails here rather than in the first batch.
    """
    if crop is None or ignore_index is not None:
        return
    size = tuple(resize) if resize is not None else tuple(np.asarray(train_data[0][0]).shape[:2])
    if crop[0] > size[0] or crop[1] > size[1]:
        raise ValueError(f"train: crop (h, w) = {tuple(crop)} is larger than the training images ({size[0]}x{size[1]}"
                         f"{' after resize' if resize is not None else ', the first one'}), and this data set has no "
                         f"ignore label to pad them with; give a crop no larger than the images")


def _labelled_weight(masks: np.ndarray, ignore, class_weights) -> float:
    """The mean-loss denominator of a batch: its labelled pixels (not ``ignore``), each with its class weight."""
    labelled = masks != ignore if ignore is not None else np.ones(masks.shape, dtype=bool)
    if class_weights is None:
        return float(np.count_nonzero(labelled))
    return float(class_weights[masks[labelled]].sum())


def _non_finite_loss(value: float, epoch: int, steps: int, lr: float) -> str:
    """The error for a NaN/inf loss; the learning rate is blamed only after weight updates that were finite."""
    where = f"train: the loss became {value} in epoch {epoch}"
    if steps == 0:
        return (f"{where}, on the first batch, before any weight update of this run, so the learning rate is not "
                f"the cause: check the model's weights (a resumed checkpoint) and the class weights for "
                f"NaN/inf values")
    return (f"{where} after {steps} finite update(s): the weights diverged, usually because the learning rate is "
            f"too high; lower it (--lr {lr})")


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


_DEFAULTS = TrainConfig()


def train(model, train_data, val_data=None, *, epochs: int, out_dir, model_name: str, model_kwargs: dict,
          batch_size: int = _DEFAULTS.batch_size, lr: float = _DEFAULTS.lr, optimizer: str = _DEFAULTS.optimizer,
          momentum: float = _DEFAULTS.momentum, weight_decay: float = _DEFAULTS.weight_decay,
          lr_schedule: str = _DEFAULTS.lr_schedule, class_weights=None, crop=_DEFAULTS.crop,
          flip: bool = _DEFAULTS.flip, resize=_DEFAULTS.resize, mean=IMAGENET_MEAN, std=IMAGENET_STD,
          device: str = "cpu", seed: int = _DEFAULTS.seed, resume: bool = False,
          eval_batch_size: int | None = None, data_spec: str | None = None, extra_config: dict | None = None,
          max_seconds: float | None = None, progress: bool = True, log=print) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones); returns the metric history.

    ``model_name`` and ``model_kwargs`` must rebuild ``model`` through
    :func:`minitorchseg.models.get_model` (they go into the checkpoint). ``class_weights``:
    ``(num_classes,)`` or None; ``crop``: ``(h, w)`` random training crops;
    ``resize``: ``(h, w)`` applied to every image first. ``lr_schedule``: ``constant``,
    or ``poly``: epoch ``e`` (from 0) uses ``lr (1 - e / epochs)^0.9``. With ``resume`` the run
    continues from ``out_dir/checkpoint.npz`` (which must hold the same model):
    weights, optimiser state, epoch, history and random state come from it.
    ``max_seconds``: a wall-time budget for the training steps of this call (batches
    loaded, forward, backward, update; validation and file writing not counted), or
    None: the epoch in progress ends after the first step that reaches it, is validated
    and saved as any epoch (it counts as done: a resumed run starts the next one), its
    row gets ``"stopped": "max_seconds"``, and training stops. Every row records its
    ``train_seconds``. See the module docstring for one epoch's steps and the files written.
    """
    settings = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
                           weight_decay=weight_decay, lr_schedule=lr_schedule, crop=crop, resize=resize, flip=flip,
                           seed=seed).check("train")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not max_seconds > 0 or not math.isfinite(max_seconds)):
        raise ValueError(f"train: max_seconds must be a positive finite number of seconds or None, got "
                         f"{max_seconds!r}")
    if len(train_data) == 0:
        raise ValueError("train: the training set is empty")
    num_classes, ignore = train_data.num_classes, train_data.ignore_index
    _check_crop_fits(crop, resize, ignore, train_data)
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
    config = {"model": model_name, "model_kwargs": dict(model_kwargs), "data": data_spec, **settings.as_dict(),
              "class_weights": class_weights, "device": device, **(extra_config or {})}
    data_info = _data_info(train_data, mean, std, resize, data_spec)
    start_epoch, history = restore_run(ckpt, checkpoint_path, model, opt, log, seed=seed)
    if start_epoch >= epochs:
        log(f"the checkpoint has already done {start_epoch} epoch(s) of {epochs}: nothing to train")
        return history
    os.makedirs(out_dir, exist_ok=True)

    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=len(train_data) > batch_size,
                        transform=_train_transform(crop, flip, ignore, mean, std, resize), seed=seed)
    loader.epoch = start_epoch
    weight = None if class_weights is None else Tensor(class_weights.astype(np.float32), device=device)
    ignore_arg = -100 if ignore is None else ignore
    best = max((row["miou"] for row in history if row.get("miou") is not None), default=-math.inf)
    steps = 0
    trained_seconds, out_of_time = 0.0, False

    for epoch in range(start_epoch, epochs):
        for group in opt.param_groups:
            group["lr"] = scheduled_lr(lr, lr_schedule, epoch, epochs)
        model.train()
        started = time.perf_counter()
        seen, loss_sum, skipped = 0, 0.0, 0
        bar = progress_bar(loader, total=len(loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                           enabled=progress)
        for images, masks in bar:
            if _labelled_weight(masks, ignore, class_weights) == 0:
                skipped += 1  # its mean loss is 0/0: no pixel to learn from
                continue
            x = Tensor(images, device=device)
            y = Tensor(masks, device=device)
            logits = model(x)
            loss = F.cross_entropy(logits, y, weight=weight, ignore_index=ignore_arg)
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(_non_finite_loss(value, epoch + 1, steps, lr))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            seen += len(images)
            loss_sum += value * len(images)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", img_s=f"{seen / (time.perf_counter() - started):.1f}")
            if max_seconds is not None and trained_seconds + time.perf_counter() - started >= max_seconds:
                out_of_time = True
                break
        bar.close()
        if skipped:
            why = f"every pixel is ignore_index={ignore}" if class_weights is None else (
                f"every pixel is ignore_index={ignore} or of a class with weight 0")
            if seen == 0:
                raise ValueError(f"train: epoch {epoch + 1}: all {skipped} training batch(es) have no labelled pixel "
                                 f"({why}): nothing to learn from; check the masks and ignore_index")
            warnings.warn(f"train: epoch {epoch + 1}: skipped {skipped} of {len(loader)} batch(es) with no labelled "
                          f"pixel ({why}); their mean loss would be 0/0", UserWarning, stacklevel=2)
        train_seconds = time.perf_counter() - started
        trained_seconds += train_seconds
        row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "lr": float(opt.param_groups[0]["lr"]),
               "images_per_second": seen / train_seconds, "train_seconds": train_seconds}
        if out_of_time:
            row["stopped"] = "max_seconds"
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
        history.append(json_value(row))
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
        if out_of_time:
            log(f"stopped: {trained_seconds:.1f} s of training reached max_seconds={max_seconds}")
            break
    return history
