"""The lecture's comparison, measured: the same Mask R-CNN training with RoIPool and with RoIAlign.

::

    python -m benchmarks.roi_op_comparison                        # synthetic shapes, 10 minutes of training each
    python -m benchmarks.roi_op_comparison --minutes 20 --data dsb2018:../shared/data/dsb2018
    python -m benchmarks.roi_op_comparison --epochs 3             # a fixed number of epochs instead of minutes
    python -m benchmarks.roi_op_comparison --quick                # tiny data, seconds; writes to a temporary folder

Two runs of :func:`minitorchseg.train.instance.train_instance` that differ only in the
builder keyword ``roi_op`` of :func:`minitorchseg.models.detection.maskrcnn_resnet_fpn`
(``"pool"``: :func:`minitorchseg.ops.roi_pool`, which rounds the box to feature cells and
its bins again; ``"align"``: :func:`minitorchseg.ops.roi_align`, ``sampling_ratio=2``,
bilinear samples, nothing rounded), for both the box head (7×7) and the mask head
(14×14). Everything else is equal and checked equal:

* the model: built after ``manual_seed(seed)``; the two ops have no parameters, so both
  runs start from the same weights (the script asserts it, tensor by tensor);
* the data, its order and augmentation (``train_instance``'s generators derive from
  ``seed`` and the epoch only), the recipe (optimiser, learning rate, warm-up, batch);
* the budget: the same number of epochs, hence the same steps on the same images.
  With ``--minutes M`` the RoIAlign run goes first, one epoch at a time (resumed from its
  checkpoint, which continues the run exactly), and starts another epoch only while the
  training time so far plus the last epoch's still fits in ``M`` minutes; the RoIPool run
  then trains exactly as many epochs. ``--epochs E`` fixes the number instead.

After every epoch both are validated with pycocotools' COCOeval (validation split; for
DSB2018 its 50 ``val`` images): the table reports the last epoch's COCO mask AP
(IoU 0.50:0.95), AP50 and AP75 (where RoIPool's rounding should show most: a mask
misplaced by a feature cell still overlaps at IoU 0.5, less often at 0.75), box AP and
AP75, and the training minutes of each run (validation not counted).

Written to ``--out``: ``roi_op_comparison.md`` (the table, the per-epoch validation
curve, the data, the recipe, date, machine load and the command). A full run writes to
``docs/`` by default; ``--quick`` writes to a new temporary folder unless ``--out`` is
given, so that the docs page only ever holds a full run. Checkpoints and
``metrics.json`` of both runs go to ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

__all__ = ["ROI_OPS", "Plan", "full_plan", "quick_plan", "build", "run_comparison", "write_report", "main"]

ROI_OPS = ("pool", "align")
PAGE_NAME = "roi_op_comparison.md"
DEFAULT_MINUTES = 10.0
# The instance demo's data (minitorchseg.cli_instance.INSTANCE_DEMO_SETTINGS["full"]) with a larger validation split.
SHAPES_DATA = "shapes:size=48,train=256,val=64,test=32,max_objects=3,min_size=10,max_size=24"
SHAPES_RECIPE = {"batch_size": 4, "lr": 0.02, "warmup_steps": 20, "flip": True}
SHAPES_MODEL = {"num_classes": 4, "min_size": 48, "max_size": 48}
QUICK_DATA = "shapes:size=32,train=4,val=2,test=1,max_objects=2,min_size=8,max_size=14"
QUICK_RECIPE = {"batch_size": 2, "lr": 0.01, "warmup_steps": 2, "flip": True}
QUICK_MODEL = {"num_classes": 4, "min_size": 32, "max_size": 32}
REPORTED = ("mask_AP", "mask_AP50", "mask_AP75", "box_AP", "box_AP75")


@dataclass
class Plan:
    """One comparison: the data spec, the model's keywords (without ``roi_op``), the recipe and the budget
    (``minutes`` of training per run, or a fixed ``epochs``; one of them is None)."""

    quick: bool
    data: str
    model_kwargs: dict
    recipe: dict
    seed: int = 0
    minutes: float | None = DEFAULT_MINUTES
    epochs: int | None = None
    max_epochs: int = 1000
    extra: dict = field(default_factory=dict)


def full_plan(data: str | None = None, minutes: float | None = DEFAULT_MINUTES, epochs: int | None = None,
              seed: int = 0) -> Plan:
    """Synthetic shapes (the instance demo's data and recipe) by default; ``dsb2018:PATH`` with the compact
    model's defaults (256x256, one class) and the instance command line's recipe (SGD 0.01, batch 2, warm-up 100)."""
    from minitorchseg.data.spec import parse_data_spec

    if data is None:
        return Plan(False, SHAPES_DATA, dict(SHAPES_MODEL), dict(SHAPES_RECIPE), seed, minutes, epochs)
    spec = parse_data_spec(data)
    if spec.kind == "shapes":
        return Plan(False, spec.text, dict(SHAPES_MODEL), dict(SHAPES_RECIPE), seed, minutes, epochs)
    from minitorchseg.data.spec import open_instance_split

    classes = open_instance_split(spec, "train").num_classes
    return Plan(False, spec.text, {"num_classes": int(classes)}, {"flip": True}, seed, minutes, epochs)


def quick_plan(seed: int = 0) -> Plan:
    """Four 32x32 training images, one epoch per run: the whole script in seconds (what the test runs)."""
    return Plan(True, QUICK_DATA, dict(QUICK_MODEL), dict(QUICK_RECIPE), seed, None, 1)


def build(plan: Plan, roi_op: str):
    """The compact Mask R-CNN of ``plan`` with ``roi_op``, built after ``manual_seed(plan.seed)``; returns
    ``(model, model_kwargs)``."""
    from minitorchseg.random import manual_seed
    from minitorchseg.train.checkpoint import build_model

    kwargs = {**plan.model_kwargs, "roi_op": roi_op}
    manual_seed(plan.seed)
    return build_model("maskrcnn", kwargs), kwargs


def _array(value) -> np.ndarray:
    return np.asarray(value.numpy()) if hasattr(value, "numpy") else np.asarray(value)


def _check_same_start(models: dict) -> int:
    """Both models hold the same tensors under the same keys at the start; returns the number of tensors."""
    states = {op: m.state_dict() for op, m in models.items()}
    pool, align = states["pool"], states["align"]
    if list(pool) != list(align):
        raise AssertionError("roi_op changed the state_dict keys: "
                             f"{sorted(set(pool) ^ set(align))}")
    for key in pool:
        if not np.array_equal(_array(pool[key]), _array(align[key])):
            raise AssertionError(f"the two runs would start from different weights at {key!r}")
    return len(pool)


def _train_seconds(row: dict, images: int) -> float:
    """Training seconds of one history row (``images`` seen at ``images_per_second``; validation excluded)."""
    return images / row["images_per_second"]


def _train(plan: Plan, roi_op: str, model, kwargs: dict, train_set, val_set, runs_dir: str, epochs: int | None,
           log) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs, or (``epochs`` None) epoch by epoch within ``plan.minutes``."""
    from minitorchseg.train.instance import train_instance

    out_dir = os.path.join(runs_dir, roi_op)
    settings = {**plan.recipe, "seed": plan.seed}
    batch = settings.get("batch_size", 2)
    images = len(train_set) // batch * batch if len(train_set) > batch else len(train_set)

    def one_call(total_epochs: int, resume: bool) -> list[dict]:
        return train_instance(model, train_set, val_set, epochs=total_epochs, out_dir=out_dir, model_name="maskrcnn",
                              model_kwargs=kwargs, data_spec=plan.data, resume=resume, progress=False,
                              log=lambda m: log(f"  {roi_op}: {m}"), **settings)

    if epochs is not None:
        return one_call(epochs, False)
    budget = 60.0 * plan.minutes
    spent, epoch, history = 0.0, 0, []
    while epoch < plan.max_epochs:
        epoch += 1
        history = one_call(epoch, epoch > 1)
        last = _train_seconds(history[-1], images)
        spent += last
        if spent + last > budget:
            break
    return history


def _summary(history: list[dict], images: int) -> dict:
    last = history[-1]
    out = {name: last.get(name) for name in REPORTED}
    out["epochs"] = len(history)
    out["train_minutes"] = sum(_train_seconds(r, images) for r in history) / 60.0
    out["curve"] = [[r["epoch"], r.get("mask_AP"), r.get("mask_AP75")] for r in history]
    return out


def run_comparison(plan: Plan, out_dir: str, runs_dir: str, command: str, log=print) -> dict:
    """Train both runs of ``plan`` (RoIAlign first), write ``out_dir/roi_op_comparison.md``; returns the report."""
    from minitorchseg.data.spec import open_instance_split

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    train_set = open_instance_split(plan.data, "train")
    val_set = open_instance_split(plan.data, "val")
    models, kwargs = {}, {}
    for op in ROI_OPS:
        models[op], kwargs[op] = build(plan, op)
    tensors = _check_same_start(models)
    log(f"both runs start from the same weights ({tensors} tensors compared)")
    batch = plan.recipe.get("batch_size", 2)
    images = len(train_set) // batch * batch if len(train_set) > batch else len(train_set)
    results = {}
    log(f"align: training on {plan.data}" + (f" for {plan.minutes:g} minutes of training steps"
                                              if plan.epochs is None else f" for {plan.epochs} epoch(s)"))
    history = _train(plan, "align", models["align"], kwargs["align"], train_set, val_set, runs_dir, plan.epochs, log)
    results["align"] = _summary(history, images)
    epochs = len(history)
    log(f"pool: training on {plan.data} for the same {epochs} epoch(s)")
    history = _train(plan, "pool", models["pool"], kwargs["pool"], train_set, val_set, runs_dir, epochs, log)
    results["pool"] = _summary(history, images)
    from minitorchseg.train.reporting import json_value

    report = json_value({
        "command": command, "date": date, "quick": plan.quick, "data": plan.data, "seed": plan.seed,
        "model_kwargs": plan.model_kwargs, "recipe": plan.recipe, "minutes": plan.minutes, "epochs": epochs,
        "train_images": len(train_set), "val_images": len(val_set), "steps_per_epoch": images // batch,
        "same_start_tensors": tensors, "load_before": load_before, "load_after": os.getloadavg()[0],
        "wall_minutes": (time.perf_counter() - started) / 60.0, "results": results,
    })
    os.makedirs(runs_dir, exist_ok=True)
    with open(os.path.join(runs_dir, "roi_op_comparison.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    write_report(report, out_dir)
    return report


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(report: dict, out_dir: str) -> str:
    """``out_dir/roi_op_comparison.md`` from ``report`` (see :func:`run_comparison`); returns its path."""
    r = report["results"]
    lines = ["# RoIPool vs RoIAlign in the same Mask R-CNN training, measured", ""]
    if report["quick"]:
        lines += ["**Quick mode**: four tiny training images and one epoch. The numbers below show that the script "
                  "runs, not which op is better.", ""]
    lines += [
        "The compact Mask R-CNN (`maskrcnn_resnet_fpn`) trained twice, with `roi_op=\"pool\"` and "
        "`roi_op=\"align\"` for both its box head (7×7) and its mask head (14×14); same seed, same starting "
        f"weights ({report['same_start_tensors']} tensors checked equal), same data order and augmentation, "
        f"same recipe, the same {report['epochs']} epoch(s) of {report['steps_per_epoch']} steps each. "
        "COCO AP by pycocotools on the validation split after the last epoch "
        f"({report['val_images']} images). See [Mask R-CNN](mask_rcnn.md) and [RoIAlign vs RoIPool](roi_align.md) "
        "for what the two ops do.", "",
        "| roi_op | mask AP | mask AP50 | mask AP75 | box AP | box AP75 | epochs | training minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, name in (("pool", "RoIPool (`pool`)"), ("align", "RoIAlign (`align`)")):
        x = r[op]
        lines.append(f"| {name} | {_f(x['mask_AP'])} | {_f(x['mask_AP50'])} | {_f(x['mask_AP75'])} | "
                     f"{_f(x['box_AP'])} | {_f(x['box_AP75'])} | {x['epochs']} | {x['train_minutes']:.1f} |")
    diff = {k: (None if r["align"][k] is None or r["pool"][k] is None else r["align"][k] - r["pool"][k])
            for k in REPORTED}
    lines.append("| align − pool | " + " | ".join("–" if diff[k] is None else f"{diff[k]:+.3f}" for k in REPORTED)
                 + " | | |")
    lines += ["", "Validation mask AP (AP75) after each epoch:", "", "| epoch | pool | align |", "|---:|---:|---:|"]
    for (epoch, p_ap, p_75), (_, a_ap, a_75) in zip(r["pool"]["curve"], r["align"]["curve"]):
        lines.append(f"| {epoch} | {_f(p_ap)} ({_f(p_75)}) | {_f(a_ap)} ({_f(a_75)}) |")
    budget = (f"{report['minutes']:g} minutes of training steps for the RoIAlign run (whole epochs), the same "
              f"epochs for RoIPool" if report["minutes"] is not None and not report["quick"]
              else f"{report['epochs']} epoch(s), fixed")
    lines += [
        "", "## How it was run", "",
        f"* data: `{report['data']}` ({report['train_images']} training images)",
        f"* model: `maskrcnn_resnet_fpn(**{report['model_kwargs']}, roi_op=...)`",
        f"* recipe: {report['recipe']} (others: `InstanceTrainConfig`'s defaults), seed {report['seed']}",
        f"* budget: {budget}",
        f"* {report['date']}; load average {report['load_before']:.1f} before, {report['load_after']:.1f} after; "
        f"{report['wall_minutes']:.1f} minutes in all (validation included)",
        "", "```bash", report["command"], "```", "",
        "A single seed: differences of a few points of AP are within what another seed would change.", "",
    ]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, PAGE_NAME)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Mask R-CNN trained with RoIPool and with RoIAlign: mask AP, "
                                                 "AP50, AP75 of each")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data, one epoch (seconds)")
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"minutes of training steps for the RoIAlign run; RoIPool trains as many epochs "
                             f"(default {DEFAULT_MINUTES:g})")
    parser.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs for both (not with "
                                                                  "--minutes)")
    parser.add_argument("--data", default=None, help=f"instance data spec (default {SHAPES_DATA}; "
                                                     f"e.g. dsb2018:../shared/data/dsb2018)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where roi_op_comparison.md goes (default docs; --quick: a new "
                                                    "temporary folder)")
    parser.add_argument("--runs", default=None, help="where the runs and roi_op_comparison.json go "
                                                     "(default runs/roi_op_comparison; --quick: inside --out)")
    args = parser.parse_args(argv)
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        parser.error(f"--minutes must be a positive number of minutes, got {args.minutes}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive integer, got {args.epochs}")
    if args.minutes is not None and args.epochs is not None:
        parser.error("give --minutes or --epochs, not both")
    if args.quick and (args.minutes is not None or args.epochs is not None or args.data is not None):
        parser.error("--quick fixes its data and budget (one epoch on four 32x32 images); drop --minutes, "
                     "--epochs and --data")
    if args.quick:
        plan = quick_plan(args.seed)
        out = args.out or tempfile.mkdtemp(prefix="roi_op_comparison_")
        runs = args.runs or os.path.join(out, "runs")
    else:
        if args.data is not None and args.data.startswith("dsb2018:") and not os.path.isdir(args.data[8:]):
            parser.error(f"--data {args.data!r}: {args.data[8:]!r} is not a folder (the Kaggle nuclei layout)")
        minutes = None if args.epochs is not None else (args.minutes or DEFAULT_MINUTES)
        plan = full_plan(args.data, minutes, args.epochs, args.seed)
        out = args.out or "docs"
        runs = args.runs or os.path.join("runs", "roi_op_comparison")
    command = "python -m benchmarks.roi_op_comparison" + "".join(
        f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]))
    report = run_comparison(plan, out, runs, command)
    r = report["results"]
    for op in ROI_OPS:
        print(f"{op:>5}: mask AP {_f(r[op]['mask_AP'])}, AP50 {_f(r[op]['mask_AP50'])}, AP75 "
              f"{_f(r[op]['mask_AP75'])} after {r[op]['epochs']} epoch(s), {r[op]['train_minutes']:.1f} min training")
    print(f"wrote {os.path.join(out, PAGE_NAME)} ({report['wall_minutes']:.1f} minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
