"""Max-pooling with indices and max-unpooling, ours (``minitorchseg.functional``) against torch, same process.

SegNet's and U-Net's pooling: 2×2 windows, stride 2, on an ``(8, 64, 128, 128)``
float32 map; unpooling takes the pooled ``(8, 64, 64, 64)`` values and their
indices back to 128×128. Both sides run through their autograd: the forward
alone, and forward plus the backward of a fixed non-uniform upstream gradient
(leaf gradients reset before every call, so nothing accumulates).

Work is bytes (GB/s): every array the pass must read or write, once. max_pool2d
forward reads x and writes the output and the int64 indices; its backward reads
the upstream gradient and the indices and writes the input gradient.
max_unpool2d forward reads values and indices and writes the output; its
backward reads the upstream gradient and the indices and writes the values'
gradient. (max_unpool2d's forward also checks every index, in the same read.)

::

    python -m benchmarks.run --ops max_pool2d,max_unpool2d
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
    values, indices = tf.max_pool2d(torch.tensor(x), 2, return_indices=True)
    values, indices = values.numpy(), indices.numpy()
    go_pool = rng.uniform(0.5, 1.5, size=values.shape).astype(np.float32)
    go_unpool = rng.uniform(0.5, 1.5, size=x.shape).astype(np.float32)

    x_ours, x_ref = mts.tensor(x, device=device), torch.tensor(x, device=torch_device)
    x_ours_grad = mts.tensor(x, device=device, requires_grad=True)
    x_ref_grad = torch.tensor(x, device=torch_device, requires_grad=True)
    v_ours, v_ref = mts.tensor(values, device=device), torch.tensor(values, device=torch_device)
    v_ours_grad = mts.tensor(values, device=device, requires_grad=True)
    v_ref_grad = torch.tensor(values, device=torch_device, requires_grad=True)
    i_ours, i_ref = mts.tensor(indices, device=device), torch.tensor(indices, device=torch_device)
    gp_ours, gp_ref = mts.tensor(go_pool, device=device), torch.tensor(go_pool, device=torch_device)
    gu_ours, gu_ref = mts.tensor(go_unpool, device=device), torch.tensor(go_unpool, device=torch_device)

    def pool_ours_backward():
        x_ours_grad.grad = None
        F.max_pool2d(x_ours_grad, 2, return_indices=True)[0].backward(gp_ours)

    def pool_ref_backward():
        x_ref_grad.grad = None
        tf.max_pool2d(x_ref_grad, 2, return_indices=True)[0].backward(gp_ref)

    def unpool_ours_backward():
        v_ours_grad.grad = None
        F.max_unpool2d(v_ours_grad, i_ours, 2).backward(gu_ours)

    def unpool_ref_backward():
        v_ref_grad.grad = None
        tf.max_unpool2d(v_ref_grad, i_ref, 2).backward(gu_ref)

    big, small, index = x.nbytes, values.nbytes, indices.nbytes
    pass_bytes = float(big + small + index)  # each of the four passes moves one big, one small, one index array
    shape = f"N{N} C{C} {H}x{W} k2 s2"
    return [
        Case("max_pool2d", shape, "forward", lambda: F.max_pool2d(x_ours, 2, return_indices=True),
             lambda: tf.max_pool2d(x_ref, 2, return_indices=True), work=pass_bytes, unit="GB/s", sync=sync),
        Case("max_pool2d", shape, "forward+backward", pool_ours_backward, pool_ref_backward,
             work=2 * pass_bytes, unit="GB/s", sync=sync),
        Case("max_unpool2d", shape, "forward", lambda: F.max_unpool2d(v_ours, i_ours, 2),
             lambda: tf.max_unpool2d(v_ref, i_ref, 2), work=pass_bytes, unit="GB/s", sync=sync),
        Case("max_unpool2d", shape, "forward+backward", unpool_ours_backward, unpool_ref_backward,
             work=2 * pass_bytes, unit="GB/s", sync=sync),
    ]
