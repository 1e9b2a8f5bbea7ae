"""``FrozenBatchNorm2d`` and ``Conv2dNormActivation`` (torchvision's ``ops/misc.py``)."""

from __future__ import annotations

import numpy as np

from ..nn import BatchNorm2d, Conv2d, Module, ReLU, Sequential
from ..tensor import Tensor

__all__ = ["FrozenBatchNorm2d", "Conv2dNormActivation"]


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


class Conv2dNormActivation(Sequential):
    """``Sequential(conv, norm, activation)``, torchvision's block, with its child names ``0``, ``1``, ``2``.

    ``Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)``
    with ``padding=None`` meaning ``(kernel_size − 1)//2 · dilation`` (size kept at
    stride 1) and ``bias=None`` meaning "a bias only without a norm layer";
    ``norm_layer(out_channels)`` and ``activation_layer()`` follow unless None.
    E.g. the FPN's lateral ``Conv2dNormActivation(c, 256, 1, padding=0, norm_layer=None,
    activation_layer=None)`` is one biased 1×1 conv with key ``0.weight``, ``0.bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding=None,
                 groups: int = 1, norm_layer=BatchNorm2d, activation_layer=ReLU, dilation: int = 1,
                 inplace: bool | None = True, bias: bool | None = None):
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers = [Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups,
                         bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)
        self.out_channels = out_channels
