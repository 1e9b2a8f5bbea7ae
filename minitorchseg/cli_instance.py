"""The instance segmentation side of the ``minitorchseg`` command (see :mod:`minitorchseg.cli`).

::

    minitorchseg train --model maskrcnn --data dsb2018:PATH --epochs 20 --out runs/nuclei
    minitorchseg train --out runs/nuclei --resume --epochs 30
    minitorchseg eval runs/nuclei/checkpoint.npz            # COCO box/mask AP table and the nuclei score
    minitorchseg predict runs/nuclei/checkpoint.npz cells.png --out predictions
    minitorchseg demo --task instance [--quick]

``train`` goes here when ``--model`` names an instance model, or on ``--resume`` when
the checkpoint holds one; ``eval`` and ``predict`` when the checkpoint does. A
semantic checkpoint where an instance one is needed, or the reverse, is an error.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from minitorchseg.data.base import read_image
from minitorchseg.data.coco import coco_detections
from minitorchseg.data.spec import SPLITS, open_instance_split, parse_data_spec
from minitorchseg.metrics_instance import format_coco_table
from minitorchseg.models import list_models
from minitorchseg.random import manual_seed
from minitorchseg.serialization import atomic_write
from minitorchseg.train import CHECKPOINT_NAME, build_model, check_checkpoint_model, read_checkpoint
from minitorchseg.train.instance import (
    INSTANCE_TASK,
    InstanceTrainConfig,
    checkpoint_task,
    display_scale,
    draw_instances,
    evaluate_instance,
    is_instance_model,
    load_instance_checkpoint,
    predict_instance,
    train_instance,
)

__all__ = ["INSTANCE_DEMO_SETTINGS", "INSTANCE_OPTIONS", "wants_instance_training", "is_instance_checkpoint",
           "refuse_instance_options", "cmd_train_instance", "cmd_eval_instance", "cmd_predict_instance",
           "cmd_demo_instance", "demo_instance_figure"]

INSTANCE_OPTIONS = ("vflip", "color_jitter", "warmup_steps", "val_every")
_RESUMABLE = ("model", "data", "batch_size", "lr", "optimizer", "lr_schedule", "momentum", "weight_decay", "crop",
              "resize", "flip", "seed", "vflip", "color_jitter", "warmup_steps")
# The demo's recipe. "full": 48×48 shapes (objects 10-24 px, up to 3) enlarged twice by the model
# (min_size = max_size = 96), so that an object spans 5-12 cells of the stride-4 level its RoIs are
# pooled from; a proposal budget for ≤ 3 objects (RPN 300/150 in training, 150/50 in evaluation,
# 64 sampled RoIs = at most 16 positives per image for the mask head, 20 detections); Adam 1e-3
# (from scratch it learns in fewer steps than SGD 0.02 here), warm-up 50 steps, poly decay per epoch;
# validation only at epochs 4 and 8; a 240 s budget for the training steps keeps the whole demo
# within about 5 minutes on a slower machine. "quick": seconds, for tests.
_DEMO_MODEL = {"min_size": 96, "max_size": 96, "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 150,
               "rpn_pre_nms_top_n_test": 150, "rpn_post_nms_top_n_test": 50, "box_batch_size_per_image": 64,
               "box_detections_per_img": 20}
INSTANCE_DEMO_SETTINGS = {
    "full": {"size": 48, "min_size": 10, "max_size": 24, "max_objects": 3, "train": 512, "val": 16, "test": 32,
             "epochs": 8, "batch_size": 4, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
             "lr_schedule": "poly", "warmup_steps": 50, "vflip": True, "max_seconds": 240.0, "val_every": 4,
             "model_kwargs": _DEMO_MODEL},
    "quick": {"size": 32, "min_size": 8, "max_size": 14, "max_objects": 2, "train": 4, "val": 2, "test": 2,
              "epochs": 1, "batch_size": 2, "optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4,
              "lr_schedule": "constant", "warmup_steps": 2, "vflip": False, "max_seconds": None, "val_every": 1,
              "model_kwargs": {"min_size": 32, "max_size": 32}},
}


def _error(message: str):
    from minitorchseg.cli import CommandError

    return CommandError(message)


def _checkpoint_path(args) -> str | None:
    return None if args.out is None else os.path.join(args.out, CHECKPOINT_NAME)


def wants_instance_training(args) -> bool:
    """Whether ``minitorchseg train`` ``args`` describe an instance run: ``--model`` an instance model, or on
    ``--resume`` a checkpoint of one (the checkpoint decides; ``--model`` must then agree)."""
    path = _checkpoint_path(args)
    if args.resume and path is not None and os.path.isfile(path):
        ckpt = read_checkpoint(path)
        instance = checkpoint_task(ckpt) == INSTANCE_TASK
        if args.model is not None and is_instance_model(args.model) != instance:
            kind = "an instance" if instance else "a semantic"
            raise _error(f"{path!r} holds {kind} segmentation model ({ckpt['model']['name']!r}), not {args.model!r}")
        return instance
    return is_instance_model(args.model)


def _resolve(args) -> dict:
    """The run's settings: the command line's over :class:`InstanceTrainConfig`'s defaults, or on ``--resume`` the
    checkpoint's (explicit values must agree)."""
    if getattr(args, "class_weights", None) not in (None, "none"):
        raise _error("--class-weights is for semantic models; Mask R-CNN's losses take no class weights")
    from minitorchseg.cli import fresh_settings, resumed_settings

    if not args.resume:
        skipped = ("epochs", "warmup_factor")
        return fresh_settings(args, {k: v for k, v in vars(InstanceTrainConfig()).items() if k not in skipped})
    if args.out is None:
        raise _error("train --resume needs --out, the folder holding checkpoint.npz")
    path = _checkpoint_path(args)
    ckpt = read_checkpoint(path)
    if checkpoint_task(ckpt) != INSTANCE_TASK:
        raise _error(f"{path!r} holds a semantic segmentation model; it cannot resume an instance run")
    check_checkpoint_model(ckpt, path, args.model)
    saved = dict(ckpt["config"])
    saved["model"] = ckpt["model"]["name"]
    return resumed_settings(args, ckpt, path, saved, _RESUMABLE, "--epochs and --device")


def cmd_train_instance(args) -> int:
    from minitorchseg.cli import _model_kwargs

    settings = _resolve(args)
    spec = parse_data_spec(settings["data"])
    out = args.out if args.out is not None else os.path.join("runs", settings["model"])
    if not args.resume:
        if settings["model"] not in list_models():
            raise _error(f"unknown model {settings['model']!r}; known models: {', '.join(list_models())}")
        if os.path.exists(os.path.join(out, CHECKPOINT_NAME)):
            raise _error(f"{os.path.join(out, CHECKPOINT_NAME)!r} exists already: pass --resume to continue that "
                         f"run, or choose another --out")
    train_set = open_instance_split(spec, "train")
    val_set = open_instance_split(spec, "val")
    if len(train_set) == 0:
        raise _error(f"--data {spec.text!r}: the training split is empty")
    if tuple(val_set.category_ids) != tuple(train_set.category_ids):
        raise _error(f"--data {spec.text!r}: the validation set's categories {list(val_set.category_ids)} differ "
                     f"from the training set's {list(train_set.category_ids)}")
    model_kwargs = settings.get("model_kwargs") or _model_kwargs(settings["model_args"], train_set.num_classes)
    if model_kwargs["num_classes"] != train_set.num_classes:
        raise _error(f"the checkpoint's model has {model_kwargs['num_classes']} classes (background counted) but "
                     f"--data {spec.text!r} has {train_set.num_classes}")
    manual_seed(int(settings["seed"]))
    model = build_model(settings["model"], model_kwargs)
    epochs = args.epochs if args.epochs is not None else int(settings.get("epochs") or InstanceTrainConfig.epochs)
    print(f"training {settings['model']}({', '.join(f'{k}={v!r}' for k, v in model_kwargs.items())}) on "
          f"{spec.text}: {len(train_set)} training, {len(val_set)} validation images; output in {out}")
    train_instance(model, train_set, val_set, epochs=epochs, out_dir=out, model_name=settings["model"],
                   model_kwargs=model_kwargs, batch_size=int(settings["batch_size"]), lr=float(settings["lr"]),
                   optimizer=settings["optimizer"], momentum=float(settings["momentum"]),
                   weight_decay=float(settings["weight_decay"]), lr_schedule=settings["lr_schedule"],
                   crop=settings["crop"], resize=settings["resize"], flip=bool(settings["flip"]),
                   vflip=bool(settings["vflip"]), color_jitter=float(settings["color_jitter"]),
                   warmup_steps=int(settings["warmup_steps"]), device=args.device, seed=int(settings["seed"]),
                   resume=args.resume, data_spec=spec.text,
                   max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
                   val_every=args.val_every or 1, progress=not args.quiet)
    return 0


def _check_threshold(args) -> None:
    if not 0.0 <= args.score_threshold <= 1.0:
        raise _error(f"--score-threshold must be in [0, 1], got {args.score_threshold!r}")


def cmd_eval_instance(args) -> int:
    _check_threshold(args)
    model, ckpt = load_instance_checkpoint(args.checkpoint, device=args.device, model_name=args.model)
    info = ckpt["data"]
    text = args.data if args.data is not None else info.get("spec")
    if text is None:
        raise _error(f"checkpoint {args.checkpoint!r} names no data set; pass --data")
    spec = parse_data_spec(text)
    data = open_instance_split(spec, args.split)
    if [int(c) for c in data.category_ids] != [int(c) for c in info["category_ids"]]:
        raise _error(f"--data {spec.text!r} has the categories {list(data.category_ids)} but the checkpoint's model "
                     f"predicts {list(info['category_ids'])}")
    results = evaluate_instance(model, data, device=args.device, score_threshold=args.score_threshold,
                                progress=not args.quiet)
    print(f"{ckpt['model']['name']} after {ckpt['epoch']} epoch(s), {spec.text} {args.split} ({len(data)} images)")
    print(format_coco_table(results, nuclei=results["nuclei"]))
    return 0


def cmd_predict_instance(args) -> int:
    from minitorchseg.cli import _output_stem, _save_png

    _check_threshold(args)
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise _error(f"image not found: {', '.join(repr(p) for p in missing)}")
    model, ckpt = load_instance_checkpoint(args.checkpoint, device=args.device, model_name=args.model)
    images = [read_image(p) for p in args.images]
    info = ckpt["data"]
    class_names = list(info["class_names"])
    category_ids = [int(c) for c in info["category_ids"]]
    os.makedirs(args.out, exist_ok=True)
    used: set = set()
    predictions, entries = [], []
    for image_id, (path, image) in enumerate(zip(args.images, images), start=1):
        prediction = predict_instance(model, image, device=args.device)
        stem = _output_stem(path, used)
        _save_png(os.path.join(args.out, f"{stem}_instances.png"),
                  draw_instances(image, prediction, class_names, args.score_threshold, args.alpha,
                                 scale=display_scale(image)))
        predictions.append(prediction)
        entries.append({"id": image_id, "file_name": os.path.basename(path), "path": os.fspath(path),
                        "height": int(image.shape[0]), "width": int(image.shape[1])})
        shown = int(np.count_nonzero(prediction["scores"] >= args.score_threshold))
        print(f"{path}: {shown} instance(s) with score >= {args.score_threshold:g} "
              f"({len(prediction['scores'])} detections in all) -> {stem}_instances.png")
    detections = coco_detections(predictions, [e["id"] for e in entries], category_ids)
    payload = {"images": entries, "categories": [{"id": c, "name": n} for c, n in zip(category_ids, class_names[1:])],
               "detections": detections}
    text = json.dumps(payload)
    atomic_write(os.path.join(args.out, "detections.json"), lambda fh: fh.write(text.encode("utf-8")))
    print(f"wrote {len(images)} picture(s) and detections.json (COCO results under 'detections') to {args.out}")
    return 0


def demo_instance_figure(path, images, truths, predictions, class_names) -> None:
    """A PNG grid: one row per image, columns input | truth | prediction (instances drawn by :func:`draw_instances`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(images)
    fig = Figure(figsize=(9.6, 3.2 * rows + 0.3))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    for r in range(rows):
        truth = {"boxes": truths[r]["boxes"], "labels": truths[r]["labels"],
                 "scores": np.ones(len(truths[r]["labels"])), "masks": truths[r]["masks"].astype(np.float32)}
        s = display_scale(images[r])
        pictures = (("input", images[r]), ("truth", draw_instances(images[r], truth, class_names, scale=s)),
                    ("prediction", draw_instances(images[r], predictions[r], class_names, scale=s)))
        for c, (title, picture) in enumerate(pictures):
            ax = axes[r][c]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))


def cmd_demo_instance(args) -> int:
    started = time.perf_counter()
    preset = INSTANCE_DEMO_SETTINGS["quick" if args.quick else "full"]
    if "maskrcnn" not in list_models():
        raise _error("demo --task instance needs the model 'maskrcnn' in the model registry; known models: "
                     f"{', '.join(list_models())}")
    epochs = args.epochs if args.epochs is not None else preset["epochs"]
    options = ("size", "train", "val", "test", "min_size", "max_size", "max_objects")
    spec = parse_data_spec("shapes:" + ",".join(f"{key}={preset[key]}" for key in options) + f",seed={args.seed}")
    train_set, val_set, test_set = (open_instance_split(spec, split) for split in SPLITS)
    model_kwargs = {"num_classes": train_set.num_classes, **preset["model_kwargs"]}
    manual_seed(args.seed)
    model = build_model("maskrcnn", model_kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"minitorchseg demo --task instance: Mask R-CNN ({n_params} parameters) finds each circle, square and "
          f"triangle with its own mask")
    print(f"data: {len(train_set)} training, {len(val_set)} validation and {len(test_set)} held-out test images, "
          f"{preset['size']}x{preset['size']}; {epochs} epochs; output in {args.out}")
    train_instance(model, train_set, val_set, epochs=epochs, out_dir=args.out, model_name="maskrcnn",
                   model_kwargs=model_kwargs, batch_size=preset["batch_size"], lr=preset["lr"],
                   optimizer=preset["optimizer"], weight_decay=preset["weight_decay"],
                   lr_schedule=preset["lr_schedule"], warmup_steps=preset["warmup_steps"], flip=True,
                   vflip=preset["vflip"], device=args.device, seed=args.seed, data_spec=spec.text,
                   max_seconds=preset["max_seconds"], val_every=preset["val_every"], progress=not args.quiet)
    results = evaluate_instance(model, test_set, device=args.device, progress=not args.quiet, desc="test")
    header = f"held-out test set: {len(test_set)} images never seen in training"
    table = format_coco_table(results, nuclei=results["nuclei"])
    atomic_write(os.path.join(args.out, "metrics.txt"), lambda fh: fh.write(f"{header}\n{table}\n".encode()))
    shown = list(range(min(4, len(test_set))))
    images = [test_set[i][0] for i in shown]
    truths = [test_set[i][1] for i in shown]
    predictions = [predict_instance(model, image, device=args.device) for image in images]
    demo_instance_figure(os.path.join(args.out, "demo.png"), images, truths, predictions, train_set.class_names)
    print(header)
    print(table)
    print(f"held-out mask AP {results['segm']['AP']:.4f} (AP50 {results['segm']['AP50']:.4f}) in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"wrote {os.path.join(args.out, 'demo.png')} (input | truth | prediction), metrics.txt, checkpoint.npz, "
          f"metrics.csv, metrics.json and curve.png")
    return 0


def is_instance_checkpoint(path) -> bool:
    """Whether ``path`` is a training checkpoint of an instance model (False for a missing file: the semantic
    command then reports it)."""
    return os.path.isfile(path) and checkpoint_task(read_checkpoint(path)) == INSTANCE_TASK


def refuse_instance_options(args) -> None:
    """A CommandError when a semantic ``train`` is given an option that only instance training takes."""
    given = [f"--{key.replace('_', '-')}" for key in INSTANCE_OPTIONS if getattr(args, key, None) is not None]
    if given:
        raise _error(f"{', '.join(given)}: only for instance models (--model maskrcnn)")
