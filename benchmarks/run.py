"""Run the benchmarks: ``python -m benchmarks.run [--ops conv2d,max_pool2d] [--device cpu|cuda]``.

Prints the machine (CPU model, usable cores, NumPy's BLAS and the kernel it
selected, as threadpoolctl reports it, and the sgemm rate measured in this run),
then a table (median times, speedup vs torch, GFLOP/s or GB/s, first-call
compile time), and writes it to ``--out`` as ``results.json`` and ``results.md``.
``unet_memory`` is not a timing: the peak resident set of a U-Net training step,
ours and torch's, each in its own process (:mod:`benchmarks.bench_memory`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import asdict

from benchmarks.common import Result, run_case
from benchmarks.machine import machine_header

# op name -> module with ``cases(device)``; one module per op family.
MODULES: dict[str, str] = {
    "conv2d": "benchmarks.bench_conv",
    "conv_transpose2d": "benchmarks.bench_conv",
    "roi_align": "benchmarks.bench_roi",
    "roi_pool": "benchmarks.bench_roi",
    "max_pool2d": "benchmarks.bench_pool",
    "max_unpool2d": "benchmarks.bench_pool",
    "interpolate": "benchmarks.bench_interpolate",
    "batch_norm": "benchmarks.bench_norm",
    "cross_entropy": "benchmarks.bench_cross_entropy",
    "adam": "benchmarks.bench_adam",
    "unet_step": "benchmarks.bench_unet_step",
    "fcn8s_step": "benchmarks.bench_model_step",
    "segnet_step": "benchmarks.bench_model_step",
    "maskrcnn_step": "benchmarks.bench_maskrcnn",
    "maskrcnn_infer": "benchmarks.bench_maskrcnn",
    "unet_memory": "benchmarks.bench_memory",
}
# ops measured by something other than run_case (memory: separate processes)
MEMORY_OPS = ("unet_memory",)


def _markdown(results: list[Result], header: str) -> str:
    lines = [
        header,
        "",
        "| op | shape | pass | ours (ms) | torch (ms) | speedup | ours rate | torch rate | first call (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.op} | {r.shape} | {r.pass_} | {r.ours_ms:.2f} | {r.torch_ms:.2f} | {r.speedup:.2f}x | "
            f"{r.ours_rate:.1f} {r.unit} | {r.torch_rate:.1f} {r.unit} | {r.first_call_s:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default=",".join(MODULES), help="comma-separated: " + ", ".join(MODULES))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per case (median reported)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for results.json / results.md")
    args = parser.parse_args(argv)

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("No CUDA GPU here: no GPU numbers are reported (nothing was measured).")
            return 0
        from minitorchseg.backend import cuda_simulated, get_backend

        if cuda_simulated():
            print("NUMBA_ENABLE_CUDASIM=1 is set: the kernels would run in Numba's simulator, not on the GPU. "
                  "Unset it to time the GPU; nothing was measured.")
            return 1
        try:
            get_backend("cuda")
        except RuntimeError as exc:
            print(f"{exc}; nothing was measured.")
            return 1

    import torch

    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    unknown = [op for op in ops if op not in MODULES]
    if unknown:
        parser.error(f"--ops: unknown {unknown}; known: {sorted(MODULES)}")

    header = (
        f"# minitorchseg benchmarks ({args.device})\n\n"
        f"{machine_header()} torch {torch.__version__} ({torch.get_num_threads()} threads). "
        f"Medians of {args.repeat} interleaved calls."
    )
    if args.device == "cuda":
        header += f" GPU: {torch.cuda.get_device_name()}; every timed call ends with torch.cuda.synchronize()."
    print(header)
    results: list[Result] = []
    memory: list[str] = []
    for op in ops:
        module = importlib.import_module(MODULES[op])
        if op in MEMORY_OPS:
            if args.device != "cpu":
                continue
            ours, theirs = module.peak_growth_mib("ours"), module.peak_growth_mib("torch")
            memory.append(f"{op}: U-Net step N4 3x176x240, peak resident set growth (separate processes): "
                          f"ours {ours['growth_mib']:.0f} MiB, torch {theirs['growth_mib']:.0f} MiB, "
                          f"ours / torch {ours['growth_mib'] / theirs['growth_mib']:.2f}x")
            print(memory[-1], flush=True)
            continue
        for case in module.cases(args.device):
            if case.op != op:  # a module may serve several ops
                continue
            result = run_case(case, repeat=args.repeat)
            results.append(result)
            print(
                f"{result.op:>18} {result.shape:<34} {result.pass_:<17} ours {result.ours_ms:9.2f} ms  "
                f"torch {result.torch_ms:9.2f} ms  x{result.speedup:5.2f}  "
                f"{result.ours_rate:7.1f} {result.unit}  first call {result.first_call_s:.2f} s",
                flush=True,
            )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump({"header": header, "results": [asdict(r) for r in results], "memory": memory}, fh, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write(_markdown(results, header) + "".join(f"\n{line}\n" for line in memory))
    print(f"wrote {args.out}/results.json and results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
