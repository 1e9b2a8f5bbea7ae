"""RoIAlign and RoIPool, ours (``minitorchseg.ops``) against torchvision, in the same process.

Mask R-CNN's box and mask heads: 512 RoIs on a ``(2, 256, 50, 50)`` float32 map
(one FPN level of an 800-pixel image), 7×7 (box head) and 14×14 (mask head)
bins, ``sampling_ratio=2``, ``spatial_scale=1``, boxes random inside the map.
Both sides run through their autograd: the forward alone, and forward plus the
backward of a fixed non-uniform upstream gradient.

Work is bytes (GB/s): every array the pass must read or write, once — the map
and the RoIs, the output (and RoIPool's int32 argmax); for the backward also
the upstream gradient and the input gradient.

::

    python -m benchmarks.run --ops roi_align,roi_pool
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Case, torch_device_and_sync

__all__ = ["cases", "make_inputs"]

N, C, H, W = 2, 256, 50, 50
K = 512


def make_inputs(seed: int = 0, dtype=np.float32):
    """The feature map ``(N, C, H, W)`` and ``K`` RoIs ``[b, x1, y1, x2, y2]`` inside the map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    corner = rng.uniform(0, [W - 1, H - 1], size=(K, 2))
    size = rng.uniform(0, 1, size=(K, 2)) * ([W - 1, H - 1] - corner)
    batch = rng.integers(0, N, size=(K, 1))
    rois = np.concatenate([batch, corner, corner + size], axis=1).astype(dtype)
    return x, rois


def _bytes(x, rois, out_elems: int, backward: bool, extra_per_out: int = 0) -> float:
    item = x.itemsize
    total = x.nbytes + rois.nbytes + out_elems * (item + extra_per_out)
    if backward:
        total += out_elems * (item + extra_per_out) + x.nbytes + rois.nbytes
    return float(total)


def cases(device: str = "cpu") -> list[Case]:
    import torch
    import torchvision

    import minitorchseg as mts
    from minitorchseg.ops import roi_align, roi_pool

    torch_device, sync = torch_device_and_sync(device)
    x, rois = make_inputs()
    x_ours = mts.tensor(x, device=device)
    x_ours_grad = mts.tensor(x, device=device, requires_grad=True)
    rois_ours = mts.tensor(rois, device=device)
    x_ref = torch.tensor(x, device=torch_device)
    x_ref_grad = torch.tensor(x, device=torch_device, requires_grad=True)
    rois_ref = torch.tensor(rois, device=torch_device)

    result: list[Case] = []
    configs = [("roi_align", 7), ("roi_align", 14), ("roi_pool", 7)]
    for op, p in configs:
        go = np.random.default_rng(1).uniform(0.5, 1.5, size=(K, C, p, p)).astype(np.float32)
        go_ours = mts.tensor(go, device=device)
        go_ref = torch.tensor(go, device=torch_device)
        if op == "roi_align":
            def ours(xt, p=p):
                return roi_align(xt, rois_ours, p, 1.0, 2, False)

            def ref(xt, p=p):
                return torchvision.ops.roi_align(xt, rois_ref, p, 1.0, 2, False)
            extra = 0
        else:
            def ours(xt, p=p):
                return roi_pool(xt, rois_ours, p, 1.0)

            def ref(xt, p=p):
                return torchvision.ops.roi_pool(xt, rois_ref, p, 1.0)
            extra = 4  # the int32 argmax, written by the forward and read by the backward

        def ours_backward(ours=ours, go_ours=go_ours):
            x_ours_grad.grad = None
            ours(x_ours_grad).backward(go_ours)

        def ref_backward(ref=ref, go_ref=go_ref):
            x_ref_grad.grad = None
            ref(x_ref_grad).backward(go_ref)

        shape = f"N{N} C{C} {H}x{W} K{K} {p}x{p}" + (" sr2" if op == "roi_align" else "")
        out_elems = K * C * p * p
        result.append(Case(op, shape, "forward", lambda ours=ours: ours(x_ours), lambda ref=ref: ref(x_ref),
                           work=_bytes(x, rois, out_elems, False, extra), unit="GB/s", sync=sync))
        result.append(Case(op, shape, "forward+backward", ours_backward, ref_backward,
                           work=_bytes(x, rois, out_elems, True, extra), unit="GB/s", sync=sync))
    return result
