"""Batch norm in training mode followed by ReLU (how every model here uses it), ours against torch, same process.

Two U-Net shapes: level 0 of the CamVid step, ``(4, 16, 176, 240)``, and a wider,
smaller map, ``(8, 64, 88, 120)``, float32. Both sides run through their autograd
(ours ``F.batch_norm_relu(..., training=True)``, the fused call ``nn.Sequential`` makes for a
``BatchNorm2d`` followed by a ``ReLU``; torch ``F.batch_norm`` then ``F.relu``; running statistics updated):
the forward alone, and forward plus the backward of a fixed non-uniform upstream
gradient into x, weight and bias (leaf gradients reset before every call).

Work is bytes (GB/s): the forward reads x and writes the output (batch norm's
output is ReLU's input, not counted); the backward reads the upstream gradient,
the saved activations and writes the input gradient: counted as four
activation-sized arrays for forward+backward.

::

    python -m benchmarks.run --ops batch_norm
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases"]

SHAPES = [(4, 16, 176, 240), (8, 64, 88, 120)]


def cases(device: str = "cpu") -> list[Case]:
    import torch

    import minitorchseg as mts
    import minitorchseg.functional as F

    tf = torch.nn.functional
    torch_device, sync = torch_device_and_sync(device)
    rng = np.random.default_rng(0)
    out = []
    for shape in SHAPES:
        c = shape[1]
        x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(np.float32)
        w = rng.uniform(0.5, 1.5, c).astype(np.float32)
        b = rng.standard_normal(c).astype(np.float32)
        go = rng.uniform(0.5, 1.5, shape).astype(np.float32) * rng.choice([-1.0, 1.0], shape).astype(np.float32)
        ours = {k: mts.tensor(v, device=device, requires_grad=True) for k, v in (("x", x), ("w", w), ("b", b))}
        ref = {k: torch.tensor(v, device=torch_device, requires_grad=True) for k, v in (("x", x), ("w", w), ("b", b))}
        stats_ours = [mts.tensor(np.zeros(c, np.float32), device=device), mts.tensor(np.ones(c, np.float32),
                                                                                      device=device)]
        stats_ref = [torch.zeros(c, device=torch_device), torch.ones(c, device=torch_device)]
        go_ours, go_ref = mts.tensor(go, device=device), torch.tensor(go, device=torch_device)

        def ours_forward(t=ours, s=stats_ours):
            return F.batch_norm_relu(t["x"], s[0], s[1], t["w"], t["b"], training=True)

        def ref_forward(t=ref, s=stats_ref):
            return tf.relu(tf.batch_norm(t["x"], s[0], s[1], t["w"], t["b"], training=True))

        def ours_backward(t=ours, f=ours_forward, g=go_ours):
            for v in t.values():
                v.grad = None
            f().backward(g)

        def ref_backward(t=ref, f=ref_forward, g=go_ref):
            for v in t.values():
                v.grad = None
            f().backward(g)

        label = "N{} C{} {}x{} +relu".format(*shape)
        out += [
            Case("batch_norm", label, "forward", ours_forward, ref_forward, work=2.0 * x.nbytes, unit="GB/s",
                 sync=sync),
            Case("batch_norm", label, "forward+backward", ours_backward, ref_backward, work=4.0 * x.nbytes,
                 unit="GB/s", sync=sync),
        ]
    return out
