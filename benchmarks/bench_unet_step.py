"""One U-Net training step, ours against the same network in PyTorch, in the same process.

The CamVid recipe: U-Net with 16 base channels, depth 4, batch norm, transposed-conv
upsampling; class-weighted cross-entropy with an ignore label; Adam. A step is
forward, loss, backward and the optimiser update on a batch of ``N x 3 x H x W``.
PyTorch runs the twin of our model, :func:`minitorchseg.export.to_torch` (plain
``torch.nn`` code, the same layers, starting from the same weights).

::

    python -m benchmarks.bench_unet_step                     # N=8, 176x240, 11 classes, 5 timed steps
    python -m benchmarks.bench_unet_step --batch 4 --steps 3

or through the harness: ``python -m benchmarks.run --ops unet_step``.
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

from benchmarks.common import Case, run_case, torch_device_and_sync

__all__ = ["cases", "main"]


def _batch(n: int, h: int, w: int, num_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
    y = rng.integers(0, num_classes + 1, size=(n, h, w)).astype(np.int64)   # label num_classes = ignored
    weights = rng.uniform(0.1, 10.0, size=num_classes).astype(np.float32)
    return x, y, weights


def _step_flops(h: int, w: int, n: int, base: int, depth: int, in_channels: int, num_classes: int) -> float:
    """Multiply-adds x 2 x 3 (forward, input gradient, weight gradient) of the convolutions of one step."""
    macs = 0.0
    widths = [base * 2**level for level in range(depth)] + [base * 2**depth]
    cin = in_channels
    for level, cout in enumerate(widths):
        pixels = (h // 2**level) * (w // 2**level)
        macs += 9 * pixels * (cin * cout + cout * cout)
        cin = cout
    for level in range(depth - 1, -1, -1):
        pixels = (h // 2**level) * (w // 2**level)
        below, skip = widths[level + 1], widths[level]
        macs += (pixels / 4) * 4 * below * (below // 2)   # 2x2 transposed conv, stride 2, from the level below
        macs += 9 * pixels * ((below // 2 + skip) * skip + skip * skip)
    macs += h * w * base * num_classes
    return 2.0 * 3.0 * n * macs


def cases(device: str = "cpu", batch: int | None = None, height: int = 176, width: int = 240,
          num_classes: int = 11, base: int = 16, depth: int = 4) -> list[Case]:
    """The step at ``batch`` images; with None, two cases: 4 and 8 images."""
    if batch is None:
        return [case for n in (4, 8) for case in cases(device, n, height, width, num_classes, base, depth)]
    import torch

    import minitorchseg as mts
    import minitorchseg.functional as F
    from minitorchseg.export import to_torch
    from minitorchseg.models import get_model

    x, y, weights = _batch(batch, height, width, num_classes)
    mts.manual_seed(0)
    ours = get_model("unet", num_classes=num_classes, base_channels=base, depth=depth)
    torch_device, sync = torch_device_and_sync(device)
    ref = to_torch(ours).to(torch_device)
    ours = ours.to(device)
    ours.train()
    opt = mts.optim.Adam(ours.parameters(), lr=1e-3)
    xt, yt, wt = (mts.tensor(a, device=device) for a in (x, y, weights))

    def ours_step():
        loss = F.cross_entropy(ours(xt), yt, weight=wt, ignore_index=num_classes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    ref.train()
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    rx, ry, rw = (torch.from_numpy(a).to(torch_device) for a in (x, y, weights))

    def ref_step():
        loss = torch.nn.functional.cross_entropy(ref(rx), ry, weight=rw, ignore_index=num_classes)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        return loss.item()

    shape = f"N{batch} 3x{height}x{width} base{base} depth{depth} K{num_classes}"
    flops = _step_flops(height, width, batch, base, depth, 3, num_classes)
    return [Case("unet_step", shape, "forward+backward+adam", ours_step, ref_step, flops, "GFLOP/s", sync)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="U-Net training step: minitorchseg vs PyTorch, same run")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--height", type=int, default=176)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each (median reported)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args(argv)
    import torch

    (case,) = cases(args.device, args.batch, args.height, args.width)
    result = run_case(case, repeat=args.steps, warmup=1)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    print(f"U-Net training step, {case.shape}, {case.work / 1e9:.1f} GFLOP of convolutions per step")
    print(f"  first call (with Numba compile): {result.first_call_s:.2f} s")
    print(f"  ours : {result.ours_ms:8.1f} ms/step  ({result.ours_rate:.1f} GFLOP/s, "
          f"{1e3 * args.batch / result.ours_ms:.2f} images/s)")
    print(f"  torch: {result.torch_ms:8.1f} ms/step  ({result.torch_rate:.1f} GFLOP/s, "
          f"{1e3 * args.batch / result.torch_ms:.2f} images/s)")
    print(f"  ours / torch time: {result.ours_ms / result.torch_ms:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
