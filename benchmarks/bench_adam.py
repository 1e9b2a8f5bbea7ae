"""One Adam step over the CamVid U-Net's parameters, ours against torch.optim.Adam, same process.

The U-Net of the README's CamVid recipe (base 16, depth 4, 11 classes: 64
parameter tensors, 1.94 M numbers), float32, fixed random gradients; each call
is ``optimizer.step()`` (the moments already initialised by a first step).
torch runs its default CPU path (``foreach`` off on the CPU: one tensor at a time).

Work is bytes (GB/s): the step reads the parameter, gradient and both moments
and writes the parameter and both moments: seven parameter-sized arrays.

::

    python -m benchmarks.run --ops adam
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases"]


def cases(device: str = "cpu") -> list[Case]:
    import torch

    import minitorchseg as mts
    from minitorchseg.export import to_torch
    from minitorchseg.models import get_model

    torch_device, sync = torch_device_and_sync(device)
    mts.manual_seed(0)
    model = get_model("unet", num_classes=11, base_channels=16, depth=4)
    twin = to_torch(model).to(torch_device)
    model = model.to(device)
    rng = np.random.default_rng(0)
    ours_params = list(model.parameters())
    ref_params = list(twin.parameters())
    for p, q in zip(ours_params, ref_params):
        g = rng.standard_normal(p.shape).astype(np.float32)
        p.grad = mts.tensor(g, device=device)
        q.grad = torch.tensor(g, device=torch_device)
    ours_opt = mts.optim.Adam(ours_params, lr=1e-4)
    ref_opt = torch.optim.Adam(ref_params, lr=1e-4)
    ours_opt.step()
    ref_opt.step()
    n = sum(int(np.prod(p.shape)) for p in ours_params)
    shape = f"U-Net base16 depth4: {len(ours_params)} tensors, {n / 1e6:.2f} M"
    return [Case("adam", shape, "step", ours_opt.step, ref_opt.step, 7.0 * 4 * n, "GB/s", sync)]
