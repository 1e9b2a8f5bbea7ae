"""Bilinear ×2 upsampling, ours (``minitorchseg.functional.interpolate``) against torch, same process.

U-Net's decoder upsampling: ``interpolate(x, scale_factor=2, mode='bilinear',
align_corners=False)`` on an ``(8, 64, 128, 128)`` float32 map → 256×256. Both
sides run through their autograd: the forward alone, and forward plus the
backward of a fixed non-uniform upstream gradient (leaf gradient reset before
every call).

Work is bytes (GB/s): the forward reads x and writes the 4× larger output; the
backward reads the upstream gradient and writes the input gradient.

::

    python -m benchmarks.run --ops interpolate
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases"]

N, C, H, W = 8, 64, 128, 128


def cases(device: str = "cpu") -> list[Case]:
    import torch

    import minitorchseg as mts
    import minitorchseg.functional as F

    tf = torch.nn.functional
    torch_device, sync = torch_device_and_sync(device)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    go = rng.uniform(0.5, 1.5, size=(N, C, 2 * H, 2 * W)).astype(np.float32)

    x_ours, x_ref = mts.tensor(x, device=device), torch.tensor(x, device=torch_device)
    x_ours_grad = mts.tensor(x, device=device, requires_grad=True)
    x_ref_grad = torch.tensor(x, device=torch_device, requires_grad=True)
    go_ours, go_ref = mts.tensor(go, device=device), torch.tensor(go, device=torch_device)

    def ours():
        return F.interpolate(x_ours, scale_factor=2, mode="bilinear", align_corners=False)

    def ref():
        return tf.interpolate(x_ref, scale_factor=2, mode="bilinear", align_corners=False)

    def ours_backward():
        x_ours_grad.grad = None
        F.interpolate(x_ours_grad, scale_factor=2, mode="bilinear", align_corners=False).backward(go_ours)

    def ref_backward():
        x_ref_grad.grad = None
        tf.interpolate(x_ref_grad, scale_factor=2, mode="bilinear", align_corners=False).backward(go_ref)

    pass_bytes = float(x.nbytes + go.nbytes)
    shape = f"N{N} C{C} {H}x{W} x2 bilinear"
    return [
        Case("interpolate", shape, "forward", ours, ref, work=pass_bytes, unit="GB/s", sync=sync),
        Case("interpolate", shape, "forward+backward", ours_backward, ref_backward, work=2 * pass_bytes,
             unit="GB/s", sync=sync),
    ]
