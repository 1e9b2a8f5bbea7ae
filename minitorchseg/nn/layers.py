"""Basic layers: Identity, Linear, ReLU, Dropout, BatchNorm2d, GroupNorm, CrossEntropyLoss."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Identity", "Linear", "ReLU", "Sigmoid", "Dropout", "BatchNorm2d", "GroupNorm", "CrossEntropyLoss"]


class Identity(Module):
    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """y = x Wᵀ + b; weight (out_features, in_features), torch's init U(±1/sqrt(in_features))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        self.bias = Parameter(np.empty(out_features, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalisation over (N, C, H, W), torch's parameters, buffers and momentum rule.

    Buffers ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked``;
    ``momentum=None`` uses the cumulative average 1/num_batches_tracked, as torch.
    The running statistics follow the parameters' dtype: ``.double()``,
    ``.float()`` and ``.to(dtype)`` convert them with the weights, as torch's
    floating-point buffers. An input whose dtype differs from the layer's
    (weights or running statistics) is a ``TypeError`` naming both dtypes,
    as torch's "mixed dtype" error, instead of statistics silently kept in
    the lower precision.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, input: Tensor) -> Tensor:
        return self.forward_relu(input, relu=False)

    def forward_relu(self, input: Tensor, relu: bool = True) -> Tensor:
        """This layer then a ReLU, in one pass (:func:`minitorchseg.functional.batch_norm_relu`), with every
        check and running-statistics update of :meth:`forward`; ``relu=False`` is :meth:`forward` itself."""
        if input.ndim != 4 or input.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: expected input (N, {self.num_features}, H, W), got shape {input.shape}"
            )
        for name in ("weight", "bias", "running_mean", "running_var"):
            tensor = getattr(self, name)
            if tensor is not None and tensor.dtype != input.dtype:
                raise TypeError(
                    f"BatchNorm2d: {name}: expected dtype {input.dtype} (the input's), got {tensor.dtype}; "
                    f"convert the layer with .to(np.{input.dtype}) (or .double() / .float())"
                )
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        use_batch_stats = self.training or not self.track_running_stats
        return (F.batch_norm_relu if relu else F.batch_norm)(
            input,
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            self.weight, self.bias, use_batch_stats, momentum, self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class GroupNorm(Module):
    """Group normalisation of (N, C, *) over groups of C/G channels per sample (``F.group_norm``), torch's layer.

    Parameters ``weight`` (ones) and ``bias`` (zeros) of shape (C,) when ``affine``;
    no buffers and no train/eval difference, so it works with a batch of one.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError(f"GroupNorm: num_groups: expected a positive int, got {num_groups!r}")
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels must be divisible by num_groups, got num_channels={num_channels} and "
                f"num_groups={num_groups}"
            )
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.weight = Parameter(np.ones(num_channels, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=np.float32)) if affine else None

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got shape {input.shape}")
        if self.weight is not None and self.weight.dtype != input.dtype:
            raise TypeError(
                f"GroupNorm: weight: expected dtype {input.dtype} (the input's), got {self.weight.dtype}; "
                f"convert the layer with .to(np.{input.dtype}) (or .double() / .float())"
            )
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class CrossEntropyLoss(Module):
    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction)
