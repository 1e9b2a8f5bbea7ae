"""Mask R-CNN: one training step and one inference, ours against torchvision's, same weights, same run.

Both models are torchvision's configuration ``MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18",
weights=None), num_classes=3, min_size=256, max_size=256)`` (FrozenBatchNorm2d, FPN 256 channels,
box head 1024, mask head 4 × 256), ours with torchvision's weights copied by key. A batch of 2
images of 3 × 256 × 256 with 3 objects each. The samplers of both draw from torch's generator with
the same seed, so both pick the same proposals and do the same work.

* ``maskrcnn_step``: forward (five losses), backward, SGD update;
* ``maskrcnn_infer``: eval forward without gradient (detections with pasted masks).

``--config compact`` times the compact model the command line trains instead:
``maskrcnn_resnet_fpn(3, min_size=256, max_size=256)`` (ResNet-18 at width 16, GroupNorm,
FPN 64 channels, its RPN and RoI-head sampling defaults) and its torchvision twin
``minitorchseg.export.maskrcnn_to_torchvision`` (torchvision's classes, our weights bit
for bit), the same way (``maskrcnn_compact_step``, ``maskrcnn_compact_infer``).

::

    python -m benchmarks.bench_maskrcnn                  # 3 timed calls of each, medians, stage breakdown
    python -m benchmarks.bench_maskrcnn --config compact # the compact model against its torchvision twin
    python -m benchmarks.bench_maskrcnn --steps 1        # a quick smoke run

or through the harness: ``python -m benchmarks.run --ops maskrcnn_step,maskrcnn_infer``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict

import numpy as np

from benchmarks.common import Case, run_case, torch_device_and_sync

__all__ = ["cases", "main"]

SIZE = 256
CLASSES = 3


def _data(seed: int = 0):
    """Two images and their targets: three rectangles each, with rectangular masks."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(2):
        images.append(rng.uniform(size=(3, SIZE, SIZE)).astype(np.float32))
        xy = rng.uniform(0, SIZE - 80, size=(3, 2))
        wh = rng.uniform(20, 80, size=(3, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        masks = np.zeros((3, SIZE, SIZE), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            masks[k, y1:y2, x1:x2] = 1
        targets.append({"boxes": boxes, "labels": rng.integers(1, CLASSES, 3).astype(np.int64), "masks": masks})
    return images, targets


def _models(device: str, config: str = "torchvision"):
    """The two models with the same weights (``config``: see the module docstring); our samplers replay torch's
    randperm."""
    import torch
    from torchvision.models.detection import backbone_utils, mask_rcnn

    from minitorchseg.export import maskrcnn_to_torchvision
    from minitorchseg.models.detection import MaskRCNN, maskrcnn_resnet_fpn, resnet_fpn_backbone
    from minitorchseg.random import manual_seed

    torch.manual_seed(0)
    if config == "compact":
        manual_seed(0)
        ours = maskrcnn_resnet_fpn(CLASSES, min_size=SIZE, max_size=SIZE)
        ref = maskrcnn_to_torchvision(ours)
    else:
        kwargs = dict(num_classes=CLASSES, min_size=SIZE, max_size=SIZE)
        ref = mask_rcnn.MaskRCNN(backbone_utils.resnet_fpn_backbone(backbone_name="resnet18", weights=None), **kwargs)
        ours = MaskRCNN(resnet_fpn_backbone(backbone_name="resnet18", weights=None), **kwargs)
        ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})

    def randperm(n: int) -> np.ndarray:
        return torch.randperm(n).numpy()

    ours.rpn.fg_bg_sampler.generator = randperm
    ours.roi_heads.fg_bg_sampler.generator = randperm
    ours.to(device)
    torch_device, _ = torch_device_and_sync(device)
    return ours, ref.to(torch_device)


def _setup(device: str, config: str = "torchvision"):
    """The two models and the four timed callables: (ours, ref, ours_step, ref_step, ours_infer, ref_infer, sync)."""
    import torch

    import minitorchseg as mts

    ours, ref = _models(device, config)
    torch_device, sync = torch_device_and_sync(device)
    images, targets = _data()
    m_images = [mts.tensor(i, device=device) for i in images]
    m_targets = [{k: mts.tensor(v, device=device) for k, v in t.items()} for t in targets]
    r_images = [torch.from_numpy(i).to(torch_device) for i in images]
    r_targets = [{k: torch.from_numpy(v).to(torch_device) for k, v in t.items()} for t in targets]
    opt = mts.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=1e-3)
    ref_opt = torch.optim.SGD([p for p in ref.parameters() if p.requires_grad], lr=1e-3)

    def ours_step():
        ours.train()
        torch.manual_seed(1)
        loss = sum(ours(m_images, m_targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def ref_step():
        ref.train()
        torch.manual_seed(1)
        loss = sum(ref(r_images, r_targets).values())
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        return loss.item()

    def ours_infer():
        ours.eval()
        with mts.no_grad():
            return ours(m_images)

    def ref_infer():
        ref.eval()
        with torch.no_grad():
            return ref(r_images)

    return ours, ref, ours_step, ref_step, ours_infer, ref_infer, sync


SHAPE = f"N2 3x{SIZE}x{SIZE} resnet18-FPN K{CLASSES}"
SHAPES = {"torchvision": SHAPE, "compact": f"N2 3x{SIZE}x{SIZE} resnet18/16-FPN64-GN K{CLASSES}"}
NAMES = {"torchvision": "maskrcnn", "compact": "maskrcnn_compact"}


def cases(device: str = "cpu", config: str = "torchvision") -> list[Case]:
    _, _, ours_step, ref_step, ours_infer, ref_infer, sync = _setup(device, config)
    name, shape = NAMES[config], SHAPES[config]
    return [Case(f"{name}_step", shape, "forward+backward+sgd", ours_step, ref_step, 0.0, "-", sync),
            Case(f"{name}_infer", shape, "forward (eval)", ours_infer, ref_infer, 0.0, "-", sync)]


STAGES = ("transform", "backbone", "rpn", "roi_heads")


def stage_times(model, call, repeat: int) -> dict[str, float]:
    """Median seconds of each stage's forward (``STAGES``) during ``call()``, and the rest (backward, update).

    Each stage's ``forward`` is wrapped for the measurement and restored afterwards. ``roi_heads``
    includes the mask branch; ``transform`` includes ``postprocess`` (pasting masks) in eval.
    """
    spent: dict[str, list[float]] = defaultdict(list)
    current: dict[str, float] = {}
    wrapped = []
    for name in STAGES:
        module = getattr(model, name)
        for method in ("forward", "postprocess") if name == "transform" else ("forward",):
            original = getattr(module, method)

            def timed(*args, _name=name, _original=original, **kwargs):
                start = time.perf_counter()
                out = _original(*args, **kwargs)
                current[_name] = current.get(_name, 0.0) + time.perf_counter() - start
                return out

            setattr(module, method, timed)
            wrapped.append((module, method))
    try:
        for _ in range(repeat):
            current.clear()
            start = time.perf_counter()
            call()
            total = time.perf_counter() - start
            for name in STAGES:
                spent[name].append(current.get(name, 0.0))
            spent["rest"].append(total - sum(current.values()))
    finally:
        for module, method in wrapped:
            if method in vars(module):
                delattr(module, method)
    return {name: float(np.median(v)) for name, v in spent.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Mask R-CNN step and inference: minitorchseg vs torchvision")
    parser.add_argument("--steps", type=int, default=3, help="timed calls of each (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--config", default="torchvision", choices=sorted(NAMES),
                        help="torchvision: torchvision's widths (default); compact: maskrcnn_resnet_fpn's defaults")
    args = parser.parse_args(argv)
    import torch

    shape, name = SHAPES[args.config], NAMES[args.config]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); {shape}")
    ours, ref, ours_step, ref_step, ours_infer, ref_infer, sync = _setup(args.device, args.config)
    for op, pass_, mine, theirs in ((f"{name}_step", "forward+backward+sgd", ours_step, ref_step),
                                    (f"{name}_infer", "forward (eval)", ours_infer, ref_infer)):
        result = run_case(Case(op, shape, pass_, mine, theirs, 0.0, "-", sync), repeat=args.steps, warmup=1)
        print(f"{op} ({pass_}): first call {result.first_call_s:.2f} s; ours {result.ours_ms:.0f} ms, "
              f"torch {result.torch_ms:.0f} ms, ours / torch {result.ours_ms / result.torch_ms:.2f}x")
        for who, model, call in (("ours", ours, mine), ("torch", ref, theirs)):
            times = stage_times(model, call, args.steps)
            parts = ", ".join(f"{name} {1e3 * t:.0f}" for name, t in times.items())
            print(f"  {who:>5} stages (ms, medians; rest = backward, update, glue): {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
