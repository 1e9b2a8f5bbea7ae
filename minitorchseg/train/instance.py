"""Instance segmentation: train, evaluate and predict with a detector of torchvision's API (Mask R-CNN).

The model follows ``torchvision.models.detection``'s contract:

* training: ``model(images, targets)`` → ``{"loss_classifier", "loss_box_reg", "loss_mask",
  "loss_objectness", "loss_rpn_box_reg"}``, with ``images`` a list of ``(3, H, W)``
  float32 Tensors in ``[0, 1]`` (the model normalises them itself) and one target per
  image ``{"boxes" (K, 4) float32 xyxy, "labels" (K,) int64, "masks" (K, H, W) uint8}``;
* eval: ``model(images)`` → per image ``{"boxes", "labels", "scores", "masks" (D, 1, H, W)
  probabilities}`` at the image's own size.

One epoch of :func:`train_instance`:

1. the training set is visited in the order ``np.random.default_rng([seed, epoch]).permutation(n)``,
   item ``i`` transformed with ``np.random.default_rng([seed, epoch, i, 1])`` (optional
   resize, random crop, horizontal/vertical flips, colour jitter:
   :mod:`minitorchseg.data.instance_transforms`), ``batch_size`` images per step;
2. per step: the five losses, their sum backpropagated, one optimiser step. The learning
   rate of global step ``s`` (counted over the whole run) is the epoch's rate
   (``constant`` or ``poly``) times the linear warm-up factor of torchvision's
   ``references/detection`` (``LinearLR(start_factor=warmup_factor, total_iters=warmup_steps)``)::

       f(s) = warmup_factor + (1 − warmup_factor) · s / warmup_steps   for s < warmup_steps, else 1

   A progress bar (:func:`~minitorchseg.train.progress.progress_bar`: tqdm on a terminal, whole
   lines elsewhere) shows each loss's running mean and images per second;
3. validation (:func:`evaluate_instance`): COCO box and mask AP/AR by pycocotools and the
   nuclei score;
4. ``out_dir/checkpoint.npz`` is written atomically (``best.npz`` when the validation
   mask AP improved), then ``metrics.csv``, ``metrics.json`` and ``curve.png`` (the losses
   per epoch; validation AP against minutes of the run, validation included).

The checkpoint is :func:`~minitorchseg.train.checkpoint.make_checkpoint`'s dict with
``task = "instance"``; semantic checkpoints have no ``task``. :func:`load_instance_checkpoint`
refuses a semantic checkpoint, and the command line refuses an instance checkpoint
where a semantic one is needed. With ``resume=True`` a run continues from
``out_dir/checkpoint.npz``: two epochs equal one epoch resumed for one more.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from minitorchseg.autograd import no_grad
from minitorchseg.checks import check_positive_int
from minitorchseg.data.coco import coco_detections, coco_ground_truth
from minitorchseg.data.instance_transforms import (
    ColorJitter,
    InstanceCompose,
    InstanceHorizontalFlip,
    InstanceRandomCrop,
    InstanceResize,
    InstanceVerticalFlip,
)
from minitorchseg.data.instances import instance_palette
from minitorchseg.metrics_instance import COCO_STAT_NAMES, coco_evaluate, nuclei_score
from minitorchseg.serialization import atomic_write, save
from minitorchseg.tensor import Tensor

from .checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    build_model,
    check_checkpoint_model,
    load_weights,
    make_checkpoint,
    read_checkpoint,
    restore_run,
)
from .config import TrainConfig, make_optimizer, scheduled_lr
from .progress import progress_bar
from .reporting import json_value, write_text

__all__ = [
    "INSTANCE_TASK",
    "INSTANCE_MODELS",
    "LOSS_NAMES",
    "InstanceTrainConfig",
    "is_instance_model",
    "checkpoint_task",
    "warmup_factor_at",
    "instance_transform",
    "instance_batches",
    "model_inputs",
    "train_instance",
    "evaluate_instance",
    "predict_instance",
    "draw_instances",
    "display_scale",
    "load_instance_checkpoint",
    "plot_instance_curves",
]

INSTANCE_TASK = "instance"
INSTANCE_MODELS = ("maskrcnn",)
LOSS_NAMES = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")
_SHORT = {"loss_classifier": "cls", "loss_box_reg": "box", "loss_mask": "mask", "loss_objectness": "obj",
          "loss_rpn_box_reg": "rpn"}


def is_instance_model(name) -> bool:
    """Whether the registry name ``name`` is an instance segmentation model (``maskrcnn`` and its variants)."""
    return isinstance(name, str) and any(name == m or name.startswith(m + "_") for m in INSTANCE_MODELS)


def checkpoint_task(ckpt: dict) -> str:
    """``"instance"`` or ``"semantic"`` (a checkpoint without ``task``)."""
    return str(ckpt.get("task", "semantic"))


@dataclass
class InstanceTrainConfig(TrainConfig):
    """:class:`~minitorchseg.train.config.TrainConfig` with detection defaults (SGD 0.01, momentum 0.9, weight
    decay 1e-4, 2 images per step, as torchvision's ``references/detection`` per GPU) plus ``vflip``,
    ``color_jitter`` (brightness = contrast = saturation amount; 0 = off), ``warmup_steps`` and
    ``warmup_factor`` (the linear warm-up of the module docstring; 0 steps = none)."""

    batch_size: int = 2
    lr: float = 0.01
    optimizer: str = "sgd"
    weight_decay: float = 1e-4
    vflip: bool = False
    color_jitter: float = 0.0
    warmup_steps: int = 100
    warmup_factor: float = 0.001

    def check(self, owner: str = "train_instance") -> InstanceTrainConfig:
        super().check(owner)
        check_positive_int(owner, "warmup_steps", self.warmup_steps, minimum=0)
        if not 0.0 < self.warmup_factor <= 1.0:
            raise ValueError(f"{owner}: warmup_factor must be in (0, 1], got {self.warmup_factor!r}")
        if not (isinstance(self.color_jitter, (int, float)) and 0.0 <= self.color_jitter < 1.0):
            raise ValueError(f"{owner}: color_jitter must be in [0, 1), got {self.color_jitter!r}")
        return self


def warmup_factor_at(step: int, warmup_steps: int, warmup_factor: float) -> float:
    """torchvision's linear warm-up: ``warmup_factor + (1 − warmup_factor) · step / warmup_steps`` before
    ``warmup_steps``, then 1."""
    if step >= warmup_steps:
        return 1.0
    return warmup_factor + (1.0 - warmup_factor) * step / warmup_steps


def instance_transform(resize=None, crop=None, flip: bool = True, vflip: bool = False, color_jitter: float = 0.0):
    """The training transform: [resize] → [random crop] → [h-flip 0.5] → [v-flip 0.5] → [colour jitter]."""
    steps = []
    if resize is not None:
        steps.append(InstanceResize(tuple(resize)))
    if crop is not None:
        steps.append(InstanceRandomCrop(tuple(crop)))
    if flip:
        steps.append(InstanceHorizontalFlip(0.5))
    if vflip:
        steps.append(InstanceVerticalFlip(0.5))
    if color_jitter:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter))
    return InstanceCompose(steps)


def instance_batches(data, batch_size: int, transform=None, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                     drop_last: bool = False):
    """Lists of ``(image, target)`` of epoch ``epoch``: the order and per-item generators of the module docstring."""
    n = len(data)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        batch = []
        for i in order[start:start + batch_size]:
            image, target = data[int(i)]
            if transform is not None:
                image, target = transform(image, target, np.random.default_rng([seed, epoch, int(i), 1]))
            batch.append((image, target))
        yield batch


def model_inputs(batch, device: str = "cpu", with_targets: bool = True):
    """``(images, targets)`` for the model: ``(3, H, W)`` float32 Tensors in ``[0, 1]`` and target dicts of Tensors
    (``boxes`` float32, ``labels`` int64, ``masks`` uint8); ``targets`` is None without ``with_targets``."""
    images, targets = [], []
    for image, target in batch:
        x = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) * np.float32(1.0 / 255.0)
        images.append(Tensor(x, device=device))
        if with_targets:
            targets.append({"boxes": Tensor(target["boxes"], dtype=np.float32, device=device),
                            "labels": Tensor(target["labels"], dtype=np.int64, device=device),
                            "masks": Tensor(target["masks"], dtype=np.uint8, device=device)})
    return images, (targets if with_targets else None)


def _host(value) -> np.ndarray:
    return np.asarray(value.numpy()) if hasattr(value, "numpy") else np.asarray(value)


def predict_instance(model, image: np.ndarray, device: str = "cpu") -> dict:
    """Detections on one ``(H, W, 3)`` uint8 image as NumPy arrays: ``boxes`` (D, 4) float32 xyxy, ``labels`` (D,)
    int64, ``scores`` (D,) float32, ``masks`` (D, H, W) float32 probabilities. The model is put in eval mode."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"predict_instance: image must be (H, W, 3) uint8, got shape {image.shape} "
                         f"dtype {image.dtype}")
    model.eval()
    with no_grad():
        images, _ = model_inputs([(image, None)], device, with_targets=False)
        (output,) = model(images)
    h, w = image.shape[:2]
    masks = _host(output["masks"]).astype(np.float32).reshape(-1, h, w)
    return {"boxes": _host(output["boxes"]).astype(np.float32).reshape(-1, 4),
            "labels": _host(output["labels"]).astype(np.int64).reshape(-1),
            "scores": _host(output["scores"]).astype(np.float32).reshape(-1), "masks": masks}


def evaluate_instance(model, data, *, device: str = "cpu", score_threshold: float = 0.5, mask_threshold: float = 0.5,
                      progress: bool = False, desc: str = "eval") -> dict:
    """COCO box and mask AP/AR and the nuclei score of ``model`` on the instance data set ``data``.

    Each image is run alone at its own size (:func:`predict_instance`). Returns
    ``{"bbox": {name: value}, "segm": {...}}`` (names
    :data:`~minitorchseg.metrics_instance.COCO_STAT_NAMES`, by pycocotools' COCOeval on
    :func:`~minitorchseg.data.coco.coco_ground_truth` and
    :func:`~minitorchseg.data.coco.coco_detections` with masks at ``mask_threshold``),
    ``"nuclei"`` (mean score) and ``"nuclei_per_image"`` (detections with
    ``score >= score_threshold``, class-agnostic), and the exported ``"ground_truth"``
    and ``"detections"``. The model is put in eval mode and left there.
    """
    if len(data) == 0:
        raise ValueError("evaluate_instance: the data set is empty")
    outputs, truths = [], []
    bar = progress_bar(total=len(data), desc=desc, unit="img", enabled=progress, leave=False)
    for i in range(len(data)):
        image, _ = data[i]
        outputs.append(predict_instance(model, image, device))
        truths.append(data.ground_truth(i))
        bar.update(1)
    bar.close()
    ground_truth = coco_ground_truth(data, truths)
    detections = coco_detections(outputs, [int(t["image_id"]) for t in truths], data.category_ids, mask_threshold)
    results = coco_evaluate(ground_truth, detections)
    mean, per_image = nuclei_score(truths, outputs, score_threshold, mask_threshold)
    results.update(nuclei=mean, nuclei_per_image=per_image, ground_truth=ground_truth, detections=detections)
    return results


def display_scale(image: np.ndarray, short_side: int = 256) -> int:
    """The integer factor that brings ``image``'s shorter side to at least ``short_side`` pixels (1 if it is)."""
    return max(1, -(-short_side // max(1, min(image.shape[:2]))))


def _font(size: int):
    """Pillow's default font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def draw_instances(image: np.ndarray, prediction: dict, class_names, score_threshold: float = 0.5,
                   alpha: float = 0.5, mask_threshold: float = 0.5, scale: int = 1) -> np.ndarray:
    """``(H s, W s, 3)`` uint8 for ``s = scale``: the image enlarged ``s`` times (each pixel an ``s x s`` block, so
    small images leave room for text), each detection with ``score >= score_threshold`` painted in its own colour
    (``(1 − alpha) image + alpha colour`` on ``mask > mask_threshold``), its box outlined in that colour and
    ``"label score"`` written on a tab of that colour above the box's top-left corner. Lower scores are painted
    first."""
    from PIL import Image, ImageDraw

    scale = check_positive_int("draw_instances", "scale", scale)
    keep = np.flatnonzero(np.asarray(prediction["scores"]) >= score_threshold)
    keep = keep[np.argsort(np.asarray(prediction["scores"])[keep], kind="stable")]
    colours = instance_palette(len(keep))
    canvas = image.astype(np.float32)
    for colour, d in zip(colours, keep):
        inside = prediction["masks"][d] > mask_threshold
        canvas[inside] = (1.0 - alpha) * canvas[inside] + alpha * colour.astype(np.float32)
    canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
    picture = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = _font(max(10, 3 * scale))
    for colour, d in zip(colours, keep):
        x1, y1, x2, y2 = (float(v) * scale for v in prediction["boxes"][d])
        label = int(prediction["labels"][d])
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=tuple(int(c) for c in colour),
                       width=max(1, scale // 2))
        text = f"{name} {float(prediction['scores'][d]):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        corner = (x1, max(0.0, y1 - (bottom - top) - 2))
        draw.rectangle([corner[0], corner[1], corner[0] + right - left + 3, corner[1] + bottom - top + 2],
                       fill=tuple(int(c) for c in colour))
        ink = (0, 0, 0) if float(colour.astype(np.float64) @ (0.299, 0.587, 0.114)) > 128 else (255, 255, 255)
        draw.text((corner[0] + 1 - left, corner[1] + 1 - top), text, fill=ink, font=font)
    return np.asarray(picture, dtype=np.uint8)


def load_instance_checkpoint(path, device: str = "cpu", model_name: str | None = None):
    """``(model, checkpoint)`` of an instance checkpoint, rebuilt from the file alone, in eval mode.

    A semantic checkpoint is a ValueError saying so; other errors as
    :func:`~minitorchseg.train.checkpoint.load_checkpoint`.
    """
    ckpt = read_checkpoint(path)
    if checkpoint_task(ckpt) != INSTANCE_TASK:
        raise ValueError(f"checkpoint {os.fspath(path)!r} holds a semantic segmentation model "
                         f"({ckpt['model']['name']!r}), not an instance segmentation one")
    check_checkpoint_model(ckpt, path, model_name)
    model = build_model(ckpt["model"]["name"], dict(ckpt["model"]["kwargs"]))
    load_weights(model, ckpt, path)
    model.to(device)
    model.eval()
    return model, ckpt


def _data_info(data, spec) -> dict:
    return {
        "task": INSTANCE_TASK,
        "num_classes": int(data.num_classes),
        "class_names": [str(n) for n in data.class_names],
        "category_ids": [int(c) for c in data.category_ids],
        "palette": np.asarray(data.palette, dtype=np.uint8),
        "spec": spec,
    }


_COLUMNS = (["epoch", "train_loss", *LOSS_NAMES, "lr", "images_per_second", "train_seconds", "seconds",
             "elapsed_seconds", "stopped"]
            + [f"box_{name}" for name in COCO_STAT_NAMES] + [f"mask_{name}" for name in COCO_STAT_NAMES]
            + ["nuclei_score"])


def write_instance_metrics(out_dir, history: list[dict], config: dict) -> None:
    """``metrics.csv`` (one row per epoch, the columns of ``_COLUMNS``) and ``metrics.json`` (history, config)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_COLUMNS)
    for row in history:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in _COLUMNS])
    write_text(os.path.join(out_dir, "metrics.csv"), buffer.getvalue())
    payload = {"task": INSTANCE_TASK, "history": history, "config": config}
    write_text(os.path.join(out_dir, "metrics.json"), json.dumps(json_value(payload), indent=2) + "\n")


def plot_instance_curves(path, history: list[dict]) -> None:
    """A PNG: the total and the five losses per epoch (left); validation mask and box AP, mask AP50, against
    minutes of the run, validation included (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(fig)
    ax_loss, ax_ap = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    ax_loss.plot(epochs, [row["train_loss"] for row in history], "o-", color="black", label="total")
    for name in LOSS_NAMES:
        ax_loss.plot(epochs, [row.get(name, np.nan) for row in history], ".-", label=_SHORT[name])
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(fontsize=7)
    ax_loss.grid(alpha=0.3)
    minutes = [row["elapsed_seconds"] / 60.0 for row in history]
    for key, label in (("mask_AP", "mask AP"), ("mask_AP50", "mask AP50"), ("box_AP", "box AP")):
        values = [np.nan if row.get(key) is None else row[key] for row in history]
        ax_ap.plot(minutes, values, "o-", label=label)
    ax_ap.set_xlabel("minutes (training and validation)")
    ax_ap.set_ylabel("validation")
    ax_ap.set_ylim(0, 1)
    ax_ap.legend(fontsize=7)
    ax_ap.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))


_DEFAULTS = InstanceTrainConfig()


def train_instance(model, train_data, val_data=None, *, epochs: int, out_dir, model_name: str, model_kwargs: dict,
                   batch_size: int = _DEFAULTS.batch_size, lr: float = _DEFAULTS.lr,
                   optimizer: str = _DEFAULTS.optimizer, momentum: float = _DEFAULTS.momentum,
                   weight_decay: float = _DEFAULTS.weight_decay, lr_schedule: str = _DEFAULTS.lr_schedule,
                   crop=_DEFAULTS.crop, resize=_DEFAULTS.resize, flip: bool = _DEFAULTS.flip,
                   vflip: bool = _DEFAULTS.vflip, color_jitter: float = _DEFAULTS.color_jitter,
                   warmup_steps: int = _DEFAULTS.warmup_steps, warmup_factor: float = _DEFAULTS.warmup_factor,
                   device: str = "cpu", seed: int = _DEFAULTS.seed, resume: bool = False,
                   data_spec: str | None = None, extra_config: dict | None = None, max_seconds: float | None = None,
                   val_every: int = 1, progress: bool = True, log=print) -> list[dict]:
    """Train a detector of torchvision's API for ``epochs`` epochs in total; returns the metric history.

    ``model_name`` and ``model_kwargs`` rebuild ``model`` through the model registry (they
    go into the checkpoint). ``train_data``/``val_data``: instance data sets
    (:mod:`minitorchseg.data.instances`). See the module docstring for one epoch, the
    learning rate and the files written. Errors before any work: an empty training set,
    a setting out of range, on ``resume`` a missing, semantic or other model's checkpoint.

    ``max_seconds``: a wall-time budget for the training steps of this call, as
    :func:`minitorchseg.train.loop.train`'s (batches loaded, forward, backward, update;
    validation and file writing not counted), or None: the epoch in progress ends after the
    first step that reaches it, is validated and saved as any epoch (it counts as done), its
    row gets ``"stopped": "max_seconds"``, and training stops. Every row records its
    ``train_seconds``. ``val_every``: validate every ``val_every``-th epoch (counted from the
    run's first), the last epoch and a stopped one always; rows of the others have no AP.
    """
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not max_seconds > 0 or not math.isfinite(max_seconds)):
        raise ValueError(f"train_instance: max_seconds must be a positive finite number of seconds or None, got "
                         f"{max_seconds!r}")
    check_positive_int("train_instance", "val_every", val_every)
    settings = InstanceTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                                   momentum=momentum, weight_decay=weight_decay, lr_schedule=lr_schedule, crop=crop,
                                   resize=resize, flip=flip, seed=seed, vflip=vflip, color_jitter=color_jitter,
                                   warmup_steps=warmup_steps, warmup_factor=warmup_factor).check("train_instance")
    if len(train_data) == 0:
        raise ValueError("train_instance: the training set is empty")
    out_dir = os.fspath(out_dir)
    checkpoint_path = os.path.join(out_dir, CHECKPOINT_NAME)
    ckpt = None
    if resume:
        ckpt = read_checkpoint(checkpoint_path)
        if checkpoint_task(ckpt) != INSTANCE_TASK:
            raise ValueError(f"checkpoint {checkpoint_path!r} holds a semantic segmentation model "
                             f"({ckpt['model']['name']!r}); it cannot resume an instance segmentation run")
        check_checkpoint_model(ckpt, checkpoint_path, model_name, model_kwargs)
    model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    config = {"task": INSTANCE_TASK, "model": model_name, "model_kwargs": dict(model_kwargs), "data": data_spec,
              **settings.as_dict(), "device": device, **(extra_config or {})}
    data_info = _data_info(train_data, data_spec)
    start_epoch, history = restore_run(ckpt, checkpoint_path, model, opt, log, seed=seed)
    if start_epoch >= epochs:
        log(f"the checkpoint has already done {start_epoch} epoch(s) of {epochs}: nothing to train")
        return history
    os.makedirs(out_dir, exist_ok=True)

    transform = instance_transform(resize, crop, flip, vflip, color_jitter)
    drop_last = len(train_data) > batch_size
    steps_per_epoch = len(train_data) // batch_size if drop_last else math.ceil(len(train_data) / batch_size)
    best = max((row["mask_AP"] for row in history if row.get("mask_AP") is not None), default=-math.inf)
    trained_seconds, out_of_time = 0.0, False

    for epoch in range(start_epoch, epochs):
        epoch_lr = scheduled_lr(lr, lr_schedule, epoch, epochs)
        model.train()
        started = time.perf_counter()
        seen, sums = 0, dict.fromkeys(("total",) + LOSS_NAMES, 0.0)
        bar = progress_bar(instance_batches(train_data, batch_size, transform, seed, epoch, True, drop_last),
                           total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", enabled=progress)
        for step, batch in enumerate(bar):
            global_step = epoch * steps_per_epoch + step
            for group in opt.param_groups:
                group["lr"] = epoch_lr * warmup_factor_at(global_step, warmup_steps, warmup_factor)
            images, targets = model_inputs(batch, device)
            losses = model(images, targets)
            missing = [k for k in LOSS_NAMES if k not in losses]
            if missing:
                raise ValueError(f"train_instance: the model returned no {missing} (got {sorted(losses)}); it must "
                                 f"follow torchvision's detection API")
            total = losses[LOSS_NAMES[0]]
            for name in LOSS_NAMES[1:]:
                total = total + losses[name]
            opt.zero_grad()
            total.backward()
            opt.step()
            value = float(total.item())
            if not math.isfinite(value):
                raise FloatingPointError(f"train_instance: the loss became {value} in epoch {epoch + 1}; lower the "
                                         f"learning rate (--lr {lr}) or lengthen the warm-up")
            seen += len(batch)
            sums["total"] += value * len(batch)
            for name in LOSS_NAMES:
                sums[name] += float(losses[name].item()) * len(batch)
            shown = {_SHORT[name]: f"{sums[name] / seen:.3f}" for name in LOSS_NAMES}
            bar.set_postfix(loss=f"{sums['total'] / seen:.3f}", **shown,
                            img_s=f"{seen / (time.perf_counter() - started):.2f}")
            if max_seconds is not None and trained_seconds + time.perf_counter() - started >= max_seconds:
                out_of_time = True
                break
        bar.close()
        train_seconds = time.perf_counter() - started
        trained_seconds += train_seconds
        row = {"epoch": epoch + 1, "train_loss": sums["total"] / max(seen, 1),
               **{name: sums[name] / max(seen, 1) for name in LOSS_NAMES},
               "lr": float(opt.param_groups[0]["lr"]), "images_per_second": seen / train_seconds,
               "train_seconds": train_seconds}
        if out_of_time:
            row["stopped"] = "max_seconds"
        validate = out_of_time or epoch + 1 == epochs or (epoch + 1) % val_every == 0
        if validate and val_data is not None and len(val_data):
            results = evaluate_instance(model, val_data, device=device, progress=progress, desc="validation")
            row.update({f"box_{k}": v for k, v in results["bbox"].items()})
            row.update({f"mask_{k}": v for k, v in results["segm"].items()})
            row["nuclei_score"] = results["nuclei"]
        row["seconds"] = time.perf_counter() - started
        previous = history[-1].get("elapsed_seconds") if history else None
        row["elapsed_seconds"] = (previous or 0.0) + row["seconds"]
        history.append(json_value(row))
        state = make_checkpoint(model, opt, epoch + 1, model_name, model_kwargs, data_info, config, history)
        state["task"] = INSTANCE_TASK
        save(state, checkpoint_path)
        mask_ap = history[-1].get("mask_AP")
        if mask_ap is not None and mask_ap > best:
            best = mask_ap
            save(state, os.path.join(out_dir, BEST_NAME))
        write_instance_metrics(out_dir, history, config)
        plot_instance_curves(os.path.join(out_dir, "curve.png"), history)
        summary = (f"epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f} ("
                   + ", ".join(f"{_SHORT[n]} {row[n]:.3f}" for n in LOSS_NAMES) + ")")
        if "mask_AP" in row:
            summary += (f", val mask AP {row['mask_AP']:.4f} (AP50 {row['mask_AP50']:.4f}), "
                        f"box AP {row['box_AP']:.4f}, nuclei score {row['nuclei_score']:.4f}")
        log(summary + f" ({row['seconds']:.1f} s, {row['images_per_second']:.2f} img/s)")
        if out_of_time:
            log(f"stopped: {trained_seconds:.1f} s of training reached max_seconds={max_seconds}")
            break
    return history

