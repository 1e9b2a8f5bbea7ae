"""Cross-entropy over a segmentation network's logits, ours against torch, same process.

The CamVid U-Net's output at batch 4 and 8, ``(N, 11, 176, 240)`` float32, with
median-frequency-like class weights and about 5% of the pixels ignored (void, label
11), the mean reduction the training step uses. Both sides run through their
autograd (``F.cross_entropy``); forward+backward back-propagates into the logits
(the leaf gradient reset before every call).

Work is bytes (GB/s): the forward reads the logits (and the int64 targets), the
backward writes the logits' gradient: counted as the logits twice plus the targets.

::

    python -m benchmarks.run --ops cross_entropy
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases"]

SHAPES = [(4, 11, 176, 240), (8, 11, 176, 240)]
IGNORE = 11


def cases(device: str = "cpu") -> list[Case]:
    import torch

    import minitorchseg as mts
    import minitorchseg.functional as F

    torch_device, sync = torch_device_and_sync(device)
    rng = np.random.default_rng(0)
    out = []
    for shape in SHAPES:
        n, c, h, w = shape
        x = (rng.standard_normal(shape) * 2.0).astype(np.float32)
        t = rng.integers(0, c, (n, h, w))
        t[rng.random(t.shape) < 0.05] = IGNORE
        weight = rng.uniform(0.2, 5.0, c).astype(np.float32)
        ours_x = mts.tensor(x, device=device, requires_grad=True)
        ours_t, ours_w = mts.tensor(t, device=device), mts.tensor(weight, device=device)
        ref_x = torch.tensor(x, device=torch_device, requires_grad=True)
        ref_t, ref_w = torch.tensor(t, device=torch_device), torch.tensor(weight, device=torch_device)

        def ours_forward(a=ours_x, b=ours_t, wt=ours_w):
            return F.cross_entropy(a, b, wt, ignore_index=IGNORE)

        def ref_forward(a=ref_x, b=ref_t, wt=ref_w):
            return torch.nn.functional.cross_entropy(a, b, wt, ignore_index=IGNORE)

        def ours_backward(a=ours_x, f=ours_forward):
            a.grad = None
            f().backward()

        def ref_backward(a=ref_x, f=ref_forward):
            a.grad = None
            f().backward()

        label = "N{} C{} {}x{} weighted, ignore".format(*shape)
        out += [
            Case("cross_entropy", label, "forward", ours_forward, ref_forward, work=x.nbytes + t.nbytes,
                 unit="GB/s", sync=sync),
            Case("cross_entropy", label, "forward+backward", ours_backward, ref_backward,
                 work=2.0 * x.nbytes + t.nbytes, unit="GB/s", sync=sync),
        ]
    return out
