"""conv2d and conv_transpose2d, ours (``minitorchseg.functional``) against torch, in the same process.

U-Net's layers, float32, batch 8: the 3x3 padding-1 convolutions of the encoder
(C64 at 128x128, C128 at 64x64, the C3→32 stem at 128x128, C256 at 16x16) and the
2x2 stride-2 transposed convolutions of the decoder (C128→64 at 64x64, C256→128
at 32x32). Both sides run through their autograd with input, weight and bias
requiring gradients: the forward alone, and forward plus the backward of a fixed
non-uniform upstream gradient (input, weight and bias gradients).

Work is FLOPs (GFLOP/s): ``2·N·Cout·(Cin/groups)·kh·kw·Ho·Wo`` multiply-adds for
a conv2d (``Ho·Wo`` its output), ``2·N·Cin·(Cout/groups)·kh·kw·H·W`` for a
transposed conv (``H·W`` its input); the backward does the same product twice
(input and weight gradient), so forward+backward counts three times the forward.

::

    python -m benchmarks.run --ops conv2d,conv_transpose2d
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases", "CONV2D_SHAPES", "CONV_TRANSPOSE2D_SHAPES"]

N = 8
# (Cin, Cout, H=W), 3x3 kernel, stride 1, padding 1
CONV2D_SHAPES = [(64, 64, 128), (128, 128, 64), (3, 32, 128), (256, 256, 16)]
# (Cin, Cout, H=W) of the input, 2x2 kernel, stride 2
CONV_TRANSPOSE2D_SHAPES = [(128, 64, 64), (256, 128, 32)]


def _tensors(shapes, device, torch_device, seed):
    """The same random float32 arrays as (ours, torch) leaf tensors requiring grad, and the upstream gradient."""
    import torch

    import minitorchseg as mts

    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes[:-1]]
    go = rng.uniform(0.5, 1.5, size=shapes[-1]).astype(np.float32)
    ours = [mts.tensor(a, device=device, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, device=torch_device, requires_grad=True) for a in arrays]
    return ours, ref, mts.tensor(go, device=device), torch.tensor(go, device=torch_device)


def _pair_of_cases(op, shape, ours_fn, ref_fn, ours_in, ref_in, go_ours, go_ref, flops, sync) -> list[Case]:
    import torch

    import minitorchseg as mts

    def ours_forward():
        with mts.no_grad():
            return ours_fn(*ours_in)

    def ref_forward():
        with torch.no_grad():
            return ref_fn(*ref_in)

    def ours_backward():
        for t in ours_in:
            t.grad = None
        ours_fn(*ours_in).backward(go_ours)

    def ref_backward():
        for t in ref_in:
            t.grad = None
        ref_fn(*ref_in).backward(go_ref)

    return [
        Case(op, shape, "forward", ours_forward, ref_forward, work=flops, sync=sync),
        Case(op, shape, "forward+backward", ours_backward, ref_backward, work=3 * flops, sync=sync),
    ]


def cases(device: str = "cpu") -> list[Case]:
    import torch

    import minitorchseg.functional as F

    torch_device, sync = torch_device_and_sync(device)
    result: list[Case] = []
    for cin, cout, size in CONV2D_SHAPES:
        ours_in, ref_in, go_ours, go_ref = _tensors(
            [(N, cin, size, size), (cout, cin, 3, 3), (cout,), (N, cout, size, size)], device, torch_device, cin
        )
        flops = 2.0 * N * cout * cin * 9 * size * size
        result += _pair_of_cases(
            "conv2d", f"N{N} C{cin}->{cout} {size}x{size} k3 p1",
            lambda x, w, b: F.conv2d(x, w, b, 1, 1),
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, 1, 1),
            ours_in, ref_in, go_ours, go_ref, flops, sync,
        )
    for cin, cout, size in CONV_TRANSPOSE2D_SHAPES:
        ours_in, ref_in, go_ours, go_ref = _tensors(
            [(N, cin, size, size), (cin, cout, 2, 2), (cout,), (N, cout, 2 * size, 2 * size)],
            device, torch_device, cin,
        )
        flops = 2.0 * N * cin * cout * 4 * size * size
        result += _pair_of_cases(
            "conv_transpose2d", f"N{N} C{cin}->{cout} {size}x{size} k2 s2",
            lambda x, w, b: F.conv_transpose2d(x, w, b, 2),
            lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, 2),
            ours_in, ref_in, go_ours, go_ref, flops, sync,
        )
    return result
