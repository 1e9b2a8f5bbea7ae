"""``FrozenBatchNorm2d``: batch norm with fixed statistics and affine parameters (torchvision's ``ops/misc.py``)."""

from __future__ import annotations

import numpy as np

from ..nn import Module
from ..tensor import Tensor

__all__ = ["FrozenBatchNorm2d"]


class FrozenBatchNorm2d(Module):
    """BatchNorm2d whose statistics and affine parameters are constants, torchvision's ``FrozenBatchNorm2d``.

    Four buffers of shape (C,), none learned: ``weight`` (ones), ``bias`` (zeros),
    ``running_mean`` (zeros), ``running_var`` (ones), the state dict keys of a
    BatchNorm2d less ``num_batches_tracked``, which loading a BatchNorm2d's state
    accepts and ignores. For x (N, C, H, W), with torchvision's operation order::

        scale = weight · rsqrt(running_var + eps)
        shift = bias − running_mean · scale
        y     = x · scale[c] + shift[c]

    ``scale``/``shift`` are computed in the buffers' dtype and then cast to the
    input's. Differentiable with respect to x only. The usual normalisation
    layer of a pre-trained detection backbone, whose batches of 1–2 images are
    too small for batch statistics.
    """

    _ignored_state_keys = ("num_batches_tracked",)

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", Tensor(np.ones(num_features, dtype=np.float32)))
        self.register_buffer("bias", Tensor(np.zeros(num_features, dtype=np.float32)))
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.num_features:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"FrozenBatchNorm2d: expected input (N, {self.num_features}, H, W), got {shape}")
        xp = x.backend.xp
        w, b = self.weight.data, self.bias.data
        rm, rv = self.running_mean.data, self.running_var.data
        scale = w * (1 / xp.sqrt(rv + rv.dtype.type(self.eps)))
        shift = b - rm * scale
        shape = (1, -1, 1, 1)
        scale = Tensor(scale.astype(x.dtype).reshape(shape), device=x.device)
        shift = Tensor(shift.astype(x.dtype).reshape(shape), device=x.device)
        return x * scale + shift

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
