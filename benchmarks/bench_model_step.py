"""FCN-8s and SegNet training steps at compact widths, ours against their PyTorch twins, same process.

The twin of each model is :func:`minitorchseg.export.to_torch` of ours: plain
``torch.nn`` code with the same layers, the same weights and the same
``state_dict`` keys, so both sides compute the same network from the same start.
A step is the U-Net benchmark's (:mod:`benchmarks.bench_unet_step`): forward,
class-weighted cross-entropy with an ignore label, backward, Adam, on a batch of
``4 x 3 x 176 x 240`` with 11 classes. Width 0.125 scales every stage's channels
(VGG16's 64..512 become 8..64), the size the README's CPU runs use.

::

    python -m benchmarks.run --ops fcn8s_step,segnet_step
"""

from __future__ import annotations

from benchmarks.bench_unet_step import _batch
from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases", "MODELS"]

# op name -> (registered model name, constructor arguments)
MODELS = {
    "fcn8s_step": ("fcn8s", {"width": 0.125}),
    "segnet_step": ("segnet", {"width": 0.125}),
}


def cases(device: str = "cpu", batch: int = 4, height: int = 176, width: int = 240,
          num_classes: int = 11) -> list[Case]:
    import torch

    import minitorchseg as mts
    import minitorchseg.functional as F
    from minitorchseg.export import to_torch
    from minitorchseg.models import get_model

    x, y, weights = _batch(batch, height, width, num_classes)
    torch_device, sync = torch_device_and_sync(device)
    out = []
    for op, (name, kwargs) in MODELS.items():
        mts.manual_seed(0)
        ours = get_model(name, num_classes=num_classes, **kwargs)
        twin = to_torch(ours).to(torch_device)
        ours = ours.to(device)
        ours.train()
        twin.train()
        opt = mts.optim.Adam(ours.parameters(), lr=1e-3)
        ref_opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
        xt, yt, wt = (mts.tensor(a, device=device) for a in (x, y, weights))
        rx, ry, rw = (torch.from_numpy(a).to(torch_device) for a in (x, y, weights))

        def ours_step(model=ours, opt=opt, xt=xt, yt=yt, wt=wt):
            loss = F.cross_entropy(model(xt), yt, weight=wt, ignore_index=num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        def ref_step(model=twin, opt=ref_opt, rx=rx, ry=ry, rw=rw):
            loss = torch.nn.functional.cross_entropy(model(rx), ry, weight=rw, ignore_index=num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        args = ",".join(f"{k}={v}" for k, v in kwargs.items())
        out.append(Case(op, f"N{batch} 3x{height}x{width} {name}({args}) K{num_classes}", "forward+backward+adam",
                        ours_step, ref_step, sync=sync))
    return out
