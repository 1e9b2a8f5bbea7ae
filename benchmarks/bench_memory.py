"""Peak memory of a training step, ours and torch's, each library in its own process.

Each library runs in a fresh child process (so neither sees the other's
allocator state): import, build the model, run one warm-up step on a tiny batch
(1x3x32x32: our first step compiles or loads the Numba kernels, whose compiler
memory is not the step's, and both libraries set up their allocators), read the
resident set, reset the peak (Linux: ``5`` written to ``/proc/self/clear_refs``
resets ``VmHWM``), run ``--steps`` training steps on the real batch (the recipe of
:mod:`benchmarks.bench_unet_step`) and read the peak (``VmHWM``). Reported: the
growth of the peak over the resident set before the measured steps, in MiB, and ours / torch.

::

    python -m benchmarks.bench_memory                        # U-Net, N=4, 176x240
    python -m benchmarks.bench_memory --batch 8 --model unet

or through the harness: ``python -m benchmarks.run --ops unet_memory``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys

__all__ = ["peak_growth_mib", "main"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_mib(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``: now, ``VmHWM``: the peak), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current resident set (Linux ≥ 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _child(library: str, batch: int, height: int, width: int, steps: int) -> dict:
    """Run in the child: one library's training steps; the resident set after setup and the peak."""
    from benchmarks.bench_unet_step import _batch

    num_classes, base, depth = 11, 16, 4
    batches = [_batch(1, 32, 32, num_classes), _batch(batch, height, width, num_classes)]
    if library == "torch":
        import torch

        from minitorchseg.export import to_torch
        from minitorchseg.models import get_model

        model = to_torch(get_model("unet", num_classes=num_classes, base_channels=base, depth=depth))  # the twin
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        tensors = [[torch.from_numpy(a) for a in arrays] for arrays in batches]

        def step(xt, yt, wt):
            loss = torch.nn.functional.cross_entropy(model(xt), yt, weight=wt, ignore_index=num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()
    else:
        import minitorchseg as mts
        import minitorchseg.functional as F
        from minitorchseg.models import get_model

        mts.manual_seed(0)
        model = get_model("unet", num_classes=num_classes, base_channels=base, depth=depth)
        model.train()
        opt = mts.optim.Adam(model.parameters(), lr=1e-3)
        tensors = [[mts.tensor(a) for a in arrays] for arrays in batches]

        def step(xt, yt, wt):
            loss = F.cross_entropy(model(xt), yt, weight=wt, ignore_index=num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()

    step(*tensors[0])
    gc.collect()
    before = _status_mib("VmRSS")
    _reset_peak()
    for _ in range(steps):
        step(*tensors[1])
    peak = _status_mib("VmHWM")
    return {"library": library, "before_mib": before, "peak_mib": peak, "growth_mib": peak - before}


def peak_growth_mib(library: str, batch: int = 4, height: int = 176, width: int = 240, steps: int = 2) -> dict:
    """Start a child process for ``library`` ("ours" or "torch") and return its measurements."""
    cmd = [sys.executable, "-m", "benchmarks.bench_memory", "--child", library, "--batch", str(batch),
           "--height", str(height), "--width", str(width), "--steps", str(steps)]
    out = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="U-Net training step: peak resident set growth, ours vs torch")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=176)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--child", choices=["ours", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.batch, args.height, args.width, args.steps)))
        return 0
    ours = peak_growth_mib("ours", args.batch, args.height, args.width, args.steps)
    theirs = peak_growth_mib("torch", args.batch, args.height, args.width, args.steps)
    print(f"U-Net training step N{args.batch} 3x{args.height}x{args.width}, {args.steps} steps, peak resident set "
          f"growth over the process before the steps (each library in its own process):")
    print(f"  ours : {ours['growth_mib']:7.1f} MiB   torch: {theirs['growth_mib']:7.1f} MiB   "
          f"ours / torch: {ours['growth_mib'] / theirs['growth_mib']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
