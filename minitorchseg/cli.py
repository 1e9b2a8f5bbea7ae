"""The ``minitorchseg`` command: train, eval, predict, kmeans, demo, export and import.

::

    minitorchseg demo                                   # small U-Net on synthetic shapes, ~2-3 minutes on 2 cores
    minitorchseg train --model unet --data camvid:data/CamVid --epochs 30 --crop 176,240 --out runs/camvid
    minitorchseg train ... --resume                     # continue runs/camvid/checkpoint.npz
    minitorchseg eval runs/camvid/checkpoint.npz --split val
    minitorchseg predict runs/camvid/checkpoint.npz street.png --out predictions
    minitorchseg kmeans photo.jpg --k 5 --out clusters
    minitorchseg export runs/camvid/checkpoint.npz camvid.pt     # continue in PyTorch (needs minitorchseg[torch])
    minitorchseg import camvid.pt runs/camvid-torch/checkpoint.npz
    minitorchseg train --model maskrcnn --data dsb2018:data/dsb2018 --out runs/nuclei   # instance segmentation
    minitorchseg demo --task instance                   # Mask R-CNN on synthetic shapes (see cli_instance)

eval and predict recognise an instance checkpoint and print COCO AP / draw instances
(:mod:`minitorchseg.cli_instance`).

Each subcommand checks its inputs (data spec, model name, checkpoint, image files)
before it writes anything; a problem is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import time

import numpy as np

from minitorchseg.data.base import read_image
from minitorchseg.data.palettes import colorize
from minitorchseg.data.spec import SPLITS, open_split, parse_data_spec
from minitorchseg.data.weights import median_frequency_weights
from minitorchseg.metrics import format_table
from minitorchseg.models import list_models
from minitorchseg.random import manual_seed
from minitorchseg.serialization import CheckpointError, atomic_write
from minitorchseg.train import (
    CHECKPOINT_NAME,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LR_SCHEDULES,
    OPTIMIZERS,
    TrainConfig,
    build_model,
    check_checkpoint_model,
    evaluate,
    load_checkpoint,
    overlay,
    predict,
    read_checkpoint,
    train,
)

__all__ = ["main", "build_parser", "DEMO_SETTINGS"]

DEMO_SETTINGS = {
    "full": {"size": 32, "min_size": 12, "max_size": 24, "max_objects": 2, "train": 3072, "val": 64, "test": 128,
             "epochs": 8, "batch_size": 16, "lr": 4e-3, "model_kwargs": {"base_channels": 8, "depth": 3}},
    "quick": {"size": 16, "min_size": 4, "max_size": 8, "max_objects": 2, "train": 8, "val": 4, "test": 4,
              "epochs": 1, "batch_size": 4, "lr": 4e-3, "model_kwargs": {"base_channels": 4, "depth": 1}},
}
_SHAPES_STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
_RESUMABLE = ("model", "data", "batch_size", "lr", "optimizer", "lr_schedule", "momentum", "weight_decay",
              "class_weights", "crop", "resize", "flip", "seed")


class CommandError(Exception):
    """A user error found by the command line itself (printed without a traceback)."""


# ---------------------------------------------------------------------------------------------- argument types
def _size(text: str):
    """``S``, ``H,W`` or ``HxW`` → ``(H, W)`` of positive ints."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected S, H,W or HxW with positive integers, got {text!r}")
    return tuple(values)


def _model_arg(text: str):
    """``KEY=VALUE`` with VALUE a Python literal (``16``, ``True``, ``(1, 2)``) or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. base_channels=16), got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key, parsed


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    _D = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="minitorchseg",
        description="Train, evaluate and run segmentation networks written from scratch (NumPy + Numba).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model; a checkpoint after every epoch",
                       description="Train a model. Without --resume, --model and --data are required. With "
                       "--resume the run continues from OUT/checkpoint.npz with its own settings; only --epochs "
                       "(the new total), --device and --eval-batch-size may change.")
    p.add_argument("--model", help="model name (unet, fcn8s, fcn16s, fcn32s, segnet, segnet_basic; maskrcnn for "
                   "instance segmentation)")
    p.add_argument("--model-arg", type=_model_arg, action="append", default=None, metavar="KEY=VALUE",
                   help="a model constructor argument, e.g. base_channels=16 (repeatable)")
    p.add_argument("--data", help="shapes[:key=value,...] | camvid:PATH | voc:PATH | folder:IMAGES,MASKS; instance "
                   "models: shapes | dsb2018:PATH | coco:IMAGES,ANNOTATIONS.json[,VAL_IMAGES,VAL_ANNOTATIONS.json]")
    p.add_argument("--epochs", type=_positive_int, default=None, help=f"total number of epochs (default {_D.epochs})")
    p.add_argument("--batch-size", type=_positive_int, default=None, help=f"default {_D.batch_size}")
    p.add_argument("--eval-batch-size", type=_positive_int, default=None, help="default: --batch-size")
    p.add_argument("--lr", type=_positive_float, default=None, help=f"learning rate (default {_D.lr:g})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=f"default {_D.optimizer}")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                   help=f"constant or poly: lr (1 - epoch / epochs)^0.9 (default {_D.lr_schedule})")
    p.add_argument("--momentum", type=float, default=None, help=f"SGD momentum (default {_D.momentum:g})")
    p.add_argument("--weight-decay", type=float, default=None, help=f"L2 weight decay (default {_D.weight_decay:g})")
    p.add_argument("--crop", type=_size, default=None, metavar="H,W", help="random training crops (S, H,W or HxW)")
    p.add_argument("--resize", type=_size, default=None, metavar="H,W", help="resize every image first")
    p.add_argument("--no-flip", dest="flip", action="store_false", default=None, help="no random horizontal flips")
    p.add_argument("--class-weights", choices=("none", "median", "sqrt_median"), default=None,
                   help="cross-entropy class weights: none, median-frequency balancing on the training set, or "
                        "its square root (milder)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of initialisation, order and augmentation (default {_D.seed})")
    p.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--vflip", action="store_true", default=None, help="instance models: random vertical flips too")
    p.add_argument("--color-jitter", type=float, default=None, metavar="A",
                   help="instance models: random brightness, contrast and saturation factors in [1 - A, 1 + A]")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="instance models: linear learning-rate warm-up over this many steps (default 100)")
    p.add_argument("--max-minutes", type=_positive_float, default=None, metavar="M",
                   help="stop training after the step that reaches M minutes of training steps in this call "
                        "(validation not counted); that epoch is validated and saved")
    p.add_argument("--val-every", type=_positive_int, default=None, metavar="E",
                   help="instance models: validate every E-th epoch and the last one (default 1)")

    p = sub.add_parser("eval", help="per-class metrics of a checkpoint on a data split")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="data spec (default: the one the checkpoint was trained on)")
    p.add_argument("--split", choices=SPLITS, default="val")
    p.add_argument("--model", default=None, help="fail unless the checkpoint holds this model")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--score-threshold", type=float, default=0.5,
                   help="instance models: detections scored below are left out of the nuclei score (default 0.5)")

    p = sub.add_parser("predict", help="colour masks and overlays of images, as PNG")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="fail unless the checkpoint holds this model")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the mask (default 0.5)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--score-threshold", type=float, default=0.5,
                   help="instance models: draw the detections scored at least this (default 0.5)")

    p = sub.add_parser("kmeans", help="K-means colour segmentation of a photo: one PNG per cluster")
    p.add_argument("image", nargs="?", default=None, help="an image (default: matplotlib's grace_hopper.jpg)")
    p.add_argument("--k", type=_positive_int, default=5, help="number of clusters (default 5)")
    p.add_argument("--iters", type=_positive_int, default=20, help="Lloyd iterations (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/kmeans", help="output folder (default runs/kmeans)")

    p = sub.add_parser("demo", help="train a small U-Net on synthetic shapes; figure, metrics and checkpoint")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/demo, runs/demo-instance; with --quick runs/demo-quick, "
                        "runs/demo-instance-quick)")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds) that exercises every step")
    p.add_argument("--task", choices=("semantic", "instance"), default="semantic",
                   help="semantic: U-Net (default); instance: Mask R-CNN, COCO mask AP")
    p.add_argument("--epochs", type=_positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("export", help="a training checkpoint as a PyTorch checkpoint for the model's torch twin",
                       description="Write CHECKPOINT (.npz) as a PyTorch checkpoint OUT (torch.save): the twin's "
                       "state dict, the model's name and arguments, the optimiser state in torch's format, the "
                       "epoch, the data's classes and normalisation. Needs PyTorch: pip install "
                       "\"minitorchseg[torch]\".")
    p.add_argument("checkpoint")
    p.add_argument("out", help="the PyTorch checkpoint to write, e.g. model.pt")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")

    p = sub.add_parser("import", help="a PyTorch checkpoint written by export back into a training checkpoint",
                       description="Read the PyTorch checkpoint PT (as written by export, possibly trained on in "
                       "PyTorch since) and write the training checkpoint OUT (.npz) for eval, predict and train "
                       "--resume.")
    p.add_argument("torch_checkpoint", metavar="PT")
    p.add_argument("out", help="the training checkpoint to write, e.g. runs/x/checkpoint.npz")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    return parser


# ---------------------------------------------------------------------------------------------- helpers
def _model_kwargs(pairs, num_classes: int) -> dict:
    kwargs = {}
    for key, value in pairs or []:
        kwargs[key] = value
    if "num_classes" in kwargs and kwargs["num_classes"] != num_classes:
        raise CommandError(f"--model-arg num_classes={kwargs['num_classes']} but the data have {num_classes} classes")
    kwargs["num_classes"] = num_classes
    return kwargs


def _check_model_name(name: str) -> None:
    if name not in list_models():
        raise CommandError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def fresh_settings(args, defaults: dict) -> dict:
    """A new run's settings: each of ``defaults``' keys from the command line where given, else the default."""
    if args.model is None or args.data is None:
        raise CommandError("train needs --model and --data (or --resume to continue a run)")
    settings = {key: (value if getattr(args, key, None) is None else getattr(args, key))
                for key, value in defaults.items()}
    settings.update(model=args.model, data=args.data, model_args=args.model_arg or [])
    return settings


def resumed_settings(args, ckpt: dict, path, saved: dict, keys, changeable: str) -> dict:
    """A resumed run's settings: the checkpoint's values ``saved`` of ``keys`` (each flag given on the command line
    must agree with it), ``epochs`` and the model's arguments (``--model-arg`` must agree too)."""
    for key in keys:
        value = args.model if key == "model" else args.data if key == "data" else getattr(args, key, None)
        ours = tuple(value) if isinstance(value, (list, tuple)) else value
        theirs = saved.get(key)
        theirs = tuple(theirs) if isinstance(theirs, (list, tuple)) else theirs
        if value is not None and ours != theirs:
            raise CommandError(f"--{key.replace('_', '-')} {value!r} differs from the checkpoint's {theirs!r}; a "
                               f"resumed run keeps its settings (only {changeable} may change)")
    settings = {key: saved.get(key) for key in keys}
    settings["epochs"] = saved.get("epochs")
    settings["model_kwargs"] = dict(ckpt["model"]["kwargs"])
    if args.model_arg is not None:
        asked = _model_kwargs(args.model_arg, settings["model_kwargs"]["num_classes"])
        check_checkpoint_model(ckpt, path, None, asked)
    return settings


def _resolve_train_settings(args) -> dict:
    """The settings of a run: the command line's, or on --resume the checkpoint's (explicit values must agree)."""
    if not args.resume:
        defaults = {key: value for key, value in vars(TrainConfig()).items() if key != "epochs"}
        return fresh_settings(args, {**defaults, "class_weights": "none"})
    if args.out is None:
        raise CommandError("train --resume needs --out, the folder holding checkpoint.npz")
    path = os.path.join(args.out, CHECKPOINT_NAME)
    ckpt = read_checkpoint(path)
    check_checkpoint_model(ckpt, path, args.model)
    saved = dict(ckpt["config"])
    saved["resize"] = saved.get("resize")
    saved["class_weights"] = saved.get("class_weights_mode", "none")
    saved["model"] = ckpt["model"]["name"]
    settings = resumed_settings(args, ckpt, path, saved, _RESUMABLE, "--epochs, --device and --eval-batch-size")
    settings["done"] = int(ckpt["epoch"])
    return settings


def _normalisation(spec) -> tuple:
    return _SHAPES_STATS if spec.kind == "shapes" else (IMAGENET_MEAN, IMAGENET_STD)


# ---------------------------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from minitorchseg.cli_instance import cmd_train_instance, refuse_instance_options, wants_instance_training

    if wants_instance_training(args):
        return cmd_train_instance(args)
    refuse_instance_options(args)
    settings = _resolve_train_settings(args)
    spec = parse_data_spec(settings["data"])
    out = args.out if args.out is not None else os.path.join("runs", settings["model"])
    if not args.resume:
        _check_model_name(settings["model"])
        if os.path.exists(os.path.join(out, CHECKPOINT_NAME)):
            raise CommandError(
                f"{os.path.join(out, CHECKPOINT_NAME)!r} exists already: pass --resume to continue that run, "
                f"or choose another --out"
            )
    train_set = open_split(spec, "train")
    val_set = open_split(spec, "val", num_classes=train_set.num_classes)
    if len(train_set) == 0:
        raise CommandError(f"--data {spec.text!r}: the training split is empty")
    model_kwargs = settings.get("model_kwargs") or _model_kwargs(settings["model_args"], train_set.num_classes)
    if model_kwargs["num_classes"] != train_set.num_classes:
        raise CommandError(
            f"the checkpoint's model has {model_kwargs['num_classes']} classes but --data {spec.text!r} has "
            f"{train_set.num_classes}"
        )
    weights = None
    if settings["class_weights"] in ("median", "sqrt_median"):
        weights = median_frequency_weights(train_set, train_set.num_classes, train_set.ignore_index,
                                           power=1.0 if settings["class_weights"] == "median" else 0.5)
    manual_seed(int(settings["seed"]))
    model = build_model(settings["model"], model_kwargs)
    epochs = args.epochs if args.epochs is not None else int(settings.get("epochs") or TrainConfig.epochs)
    mean, std = _normalisation(spec)
    print(f"training {settings['model']}({', '.join(f'{k}={v!r}' for k, v in model_kwargs.items())}) on "
          f"{spec.text}: {len(train_set)} training, {len(val_set)} validation images; output in {out}")
    train(model, train_set, val_set, epochs=epochs, out_dir=out, model_name=settings["model"],
          model_kwargs=model_kwargs, batch_size=int(settings["batch_size"]), lr=float(settings["lr"]),
          optimizer=settings["optimizer"], lr_schedule=settings["lr_schedule"], momentum=float(settings["momentum"]),
          weight_decay=float(settings["weight_decay"]), class_weights=weights, crop=settings["crop"],
          flip=bool(settings["flip"]), resize=settings["resize"], mean=mean, std=std, device=args.device,
          seed=int(settings["seed"]), resume=args.resume, eval_batch_size=args.eval_batch_size,
          data_spec=spec.text, extra_config={"class_weights_mode": settings["class_weights"]},
          max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes, progress=not args.quiet)
    return 0


def _metrics_text(results: dict, class_names) -> str:
    return format_table(results, class_names)


def cmd_eval(args) -> int:
    from minitorchseg.cli_instance import cmd_eval_instance, is_instance_checkpoint

    if is_instance_checkpoint(args.checkpoint):
        return cmd_eval_instance(args)
    model, ckpt = load_checkpoint(args.checkpoint, device=args.device, model_name=args.model)
    info = ckpt["data"]
    text = args.data if args.data is not None else info.get("spec")
    if text is None:
        raise CommandError(f"checkpoint {args.checkpoint!r} names no data set; pass --data")
    spec = parse_data_spec(text)
    data = open_split(spec, args.split, num_classes=int(info["num_classes"]))
    if data.num_classes != int(info["num_classes"]):
        raise CommandError(
            f"--data {spec.text!r} has {data.num_classes} classes but the checkpoint's model predicts "
            f"{info['num_classes']}"
        )
    resize = info.get("resize")
    results = evaluate(model, data, batch_size=args.batch_size, device=args.device, mean=info["mean"],
                       std=info["std"], resize=None if resize is None else tuple(resize), progress=not args.quiet)
    print(f"{ckpt['model']['name']} after {ckpt['epoch']} epoch(s), {spec.text} {args.split} ({len(data)} images)")
    print(_metrics_text(results, info["class_names"]))
    return 0


def _output_stem(path: str, used: set) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def _save_png(path: str, array: np.ndarray) -> None:
    from PIL import Image

    atomic_write(path, lambda fh: Image.fromarray(np.ascontiguousarray(array)).save(fh, format="PNG"))


def cmd_predict(args) -> int:
    from minitorchseg.cli_instance import cmd_predict_instance, is_instance_checkpoint

    if is_instance_checkpoint(args.checkpoint):
        return cmd_predict_instance(args)
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise CommandError(f"image not found: {', '.join(repr(p) for p in missing)}")
    model, ckpt = load_checkpoint(args.checkpoint, device=args.device, model_name=args.model)
    images = [read_image(p) for p in args.images]
    info = ckpt["data"]
    resize = info.get("resize")
    os.makedirs(args.out, exist_ok=True)
    used: set = set()
    from minitorchseg.train.progress import progress_bar

    pairs = list(zip(args.images, images))
    for path, image in progress_bar(pairs, total=len(pairs), desc="predict", unit="img", enabled=len(images) >= 2):
        labels = predict(model, image, device=args.device, mean=info["mean"], std=info["std"],
                         resize=None if resize is None else tuple(resize))
        stem = _output_stem(path, used)
        palette = np.asarray(info["palette"], dtype=np.uint8)
        _save_png(os.path.join(args.out, f"{stem}_mask.png"), colorize(labels, palette))
        _save_png(os.path.join(args.out, f"{stem}_overlay.png"), overlay(image, labels, palette, args.alpha))
        if int(info["num_classes"]) <= 256:
            _save_png(os.path.join(args.out, f"{stem}_labels.png"), labels.astype(np.uint8))
        counts = np.bincount(labels.ravel(), minlength=int(info["num_classes"]))
        share = ", ".join(f"{info['class_names'][c]} {100 * counts[c] / labels.size:.1f}%"
                          for c in np.argsort(-counts)[:4] if counts[c])
        print(f"{path}: {share}")
    print(f"wrote {len(images)} mask(s) and overlay(s) to {args.out}")
    return 0


def default_kmeans_image() -> str:
    """Matplotlib's sample photo ``grace_hopper.jpg``."""
    from matplotlib import cbook

    return os.fspath(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def cmd_kmeans(args) -> int:
    path = args.image if args.image is not None else default_kmeans_image()
    if not os.path.isfile(path):
        raise CommandError(f"image not found: {path!r}")
    image = read_image(path)
    h, w = image.shape[:2]
    if args.k > h * w:
        raise CommandError(f"--k {args.k} is larger than the number of pixels ({h * w}) of {path!r}")
    from minitorchseg.kmeans import kmeans

    points = image.reshape(-1, 3).astype(np.float64)
    started = time.perf_counter()
    labels, centers = kmeans(points, args.k, iters=args.iters, seed=args.seed)
    seconds = time.perf_counter() - started
    labels = np.asarray(labels, dtype=np.int64).reshape(h, w)
    centers = np.asarray(centers, dtype=np.float64)
    os.makedirs(args.out, exist_ok=True)
    for c in range(args.k):
        cluster = np.where((labels == c)[..., None], image, 0).astype(np.uint8)
        _save_png(os.path.join(args.out, f"cluster_{c}.png"), cluster)
    _save_png(os.path.join(args.out, "labels.png"), labels.astype(np.uint8 if args.k <= 256 else np.uint16))
    segmented = np.clip(np.rint(centers), 0, 255).astype(np.uint8)[labels]
    _save_png(os.path.join(args.out, "segmented.png"), segmented)
    print(f"K-means with k={args.k} on {path} ({w}x{h}, {args.iters} iterations, {seconds:.2f} s)")
    for c in range(args.k):
        share = 100.0 * np.count_nonzero(labels == c) / labels.size
        colour = ", ".join(str(int(round(v))) for v in centers[c])
        print(f"  cluster {c}: centre RGB ({colour}), {share:.1f}% of the pixels -> cluster_{c}.png")
    print(f"wrote {args.k} cluster images, labels.png and segmented.png to {args.out}")
    return 0


def demo_figure(path, images, truths, predictions, palette, class_names) -> None:
    """A PNG grid: one row per image, columns input | truth | prediction, with a class legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = len(images)
    fig = Figure(figsize=(7.5, 2.4 * rows + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    for r in range(rows):
        for c, (title, picture) in enumerate((("input", images[r]), ("truth", colorize(truths[r], palette)),
                                              ("prediction", colorize(predictions[r], palette)))):
            ax = axes[r][c]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
    handles = [Patch(color=np.asarray(palette[c]) / 255.0, label=name) for c, name in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))


def cmd_demo(args) -> int:
    if args.out is None:  # each demo its own folder, so a quick run never replaces a full run's checkpoint
        args.out = os.path.join("runs", "demo" + ("-instance" if args.task == "instance" else "")
                                + ("-quick" if args.quick else ""))
    if args.task == "instance":
        from minitorchseg.cli_instance import cmd_demo_instance

        return cmd_demo_instance(args)
    started = time.perf_counter()
    preset = DEMO_SETTINGS["quick" if args.quick else "full"]
    epochs = args.epochs if args.epochs is not None else preset["epochs"]
    options = ("size", "train", "val", "test", "min_size", "max_size", "max_objects")
    spec = parse_data_spec("shapes:" + ",".join(f"{key}={preset[key]}" for key in options) + f",seed={args.seed}")
    train_set, val_set, test_set = (open_split(spec, split) for split in SPLITS)
    model_kwargs = {"num_classes": train_set.num_classes, **preset["model_kwargs"]}
    _check_model_name("unet")
    manual_seed(args.seed)
    model = build_model("unet", model_kwargs)
    mean, std = _SHAPES_STATS
    n_params = sum(p.numel() for p in model.parameters())
    print(f"minitorchseg demo: a U-Net ({n_params} parameters) learns to segment circles, squares and triangles")
    print(f"data: {len(train_set)} training, {len(val_set)} validation and {len(test_set)} held-out test images, "
          f"{preset['size']}x{preset['size']} (synthetic, generated on the fly); {epochs} epochs; output in {args.out}")
    print("(the first run compiles the Numba kernels, which takes a little while)")
    train(model, train_set, val_set, epochs=epochs, out_dir=args.out, model_name="unet", model_kwargs=model_kwargs,
          batch_size=preset["batch_size"], lr=preset["lr"], lr_schedule="poly", crop=None, flip=True, mean=mean,
          std=std, device=args.device, seed=args.seed, data_spec=spec.text, progress=not args.quiet)
    results = evaluate(model, test_set, batch_size=preset["batch_size"], device=args.device, mean=mean, std=std,
                       progress=not args.quiet, desc="test")
    table = format_table(results, train_set.class_names)
    header = f"held-out test set: {len(test_set)} images never seen in training"
    atomic_write(os.path.join(args.out, "metrics.txt"), lambda fh: fh.write(f"{header}\n{table}\n".encode()))
    shown = list(range(min(4, len(test_set))))
    images = [test_set[i][0] for i in shown]
    truths = [test_set[i][1] for i in shown]
    predictions = [predict(model, image, device=args.device, mean=mean, std=std) for image in images]
    demo_figure(os.path.join(args.out, "demo.png"), images, truths, predictions, train_set.palette,
                train_set.class_names)
    print(header)
    print(table)
    print(f"held-out mIoU {results['miou']:.4f} in {time.perf_counter() - started:.0f} s")
    print(f"wrote {os.path.join(args.out, 'demo.png')} (input | truth | prediction), metrics.txt, checkpoint.npz, "
          f"metrics.csv, metrics.json and curve.png")
    return 0


def _export_module():
    """``minitorchseg.export``, or a CommandError naming the install command when PyTorch is missing."""
    try:
        from minitorchseg import export
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    return export


def _check_output(path: str, force: bool) -> None:
    if os.path.exists(path) and not force:
        raise CommandError(f"{path!r} exists already: pass --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"the folder of {path!r} does not exist")


def cmd_export(args) -> int:
    _check_output(args.out, args.force)
    export = _export_module()
    obj = export.export_checkpoint(args.checkpoint, args.out)
    optimizer = obj["optimizer"]["name"] if obj["optimizer"] is not None else "none"
    print(f"wrote {args.out}: {obj['model']['name']} after {obj['epoch']} epoch(s), {len(obj['state_dict'])} "
          f"tensors, optimizer {optimizer}; the model is minitorchseg.export.TWINS[{obj['model']['name']!r}]"
          f"(**model_kwargs)")
    return 0


def cmd_import(args) -> int:
    _check_output(args.out, args.force)
    export = _export_module()
    ckpt = export.import_checkpoint(args.torch_checkpoint, args.out)
    print(f"wrote {args.out}: {ckpt['model']['name']} after {ckpt['epoch']} epoch(s)"
          f"{'' if 'optimizer_state' in ckpt else ' (no optimizer state: eval and predict only)'}")
    return 0


_COMMANDS = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict, "kmeans": cmd_kmeans, "demo": cmd_demo,
             "export": cmd_export, "import": cmd_import}


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (CommandError, CheckpointError, OSError, ValueError, RuntimeError, FloatingPointError) as exc:
        if os.environ.get("MINITORCHSEG_TRACEBACK"):
            raise
        print(f"minitorchseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minitorchseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
