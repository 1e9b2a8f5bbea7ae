"""Convolution layers: Conv2d and ConvTranspose2d, with torch's parameters, layouts and initialisation.

Weights: Conv2d ``(out_channels, in_channels/groups, kh, kw)``; ConvTranspose2d
``(in_channels, out_channels/groups, kh, kw)``; bias ``(out_channels,)``.

Initialisation (torch's ``_ConvNd.reset_parameters``): ``kaiming_uniform_(weight, a=√5)``,
i.e. U(±1/√fan_in), and bias U(±1/√fan_in), where fan_in is ``weight.shape[1]·kh·kw``:
``in_channels/groups·kh·kw`` for Conv2d and ``out_channels/groups·kh·kw`` for
ConvTranspose2d (torch reads dim 1 of the weight in both cases).
"""

from __future__ import annotations

import math

import numpy as np

from minitorchseg.kernels.geometry import conv_transpose_output_size

from .. import functional as F
from ..checks import check_int_pair
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels(layer: str, in_channels, out_channels, groups) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{layer}: {name}: expected a positive int, got {value!r}")
    if in_channels % groups != 0:
        raise ValueError(f"{layer}: in_channels ({in_channels}) must be divisible by groups ({groups})")
    if out_channels % groups != 0:
        raise ValueError(f"{layer}: out_channels ({out_channels}) must be divisible by groups ({groups})")


class _ConvNd(Module):
    """Shared parameters and initialisation of the two layers."""

    def _init_parameters(self, weight_shape: tuple[int, ...], out_channels: int, bias: bool) -> None:
        self.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
        self.bias = Parameter(np.empty(out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)


class Conv2d(_ConvNd):
    """2-D convolution layer, ``torch.nn.Conv2d``: ``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``.

    ``padding``: int, pair, ``'valid'`` or ``'same'`` (stride 1 only). ``padding_mode``
    other than ``'zeros'`` pads the input with :func:`minitorchseg.functional.pad` first
    (by ``padding`` on both sides; for ``'same'`` by ``d(k−1)//2`` before and the rest
    after) and convolves without padding, as torch does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        layer = "Conv2d"
        _check_channels(layer, in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_int_pair(layer, "kernel_size", kernel_size, 1)
        self.stride = check_int_pair(layer, "stride", stride, 1)
        self.dilation = check_int_pair(layer, "dilation", dilation, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{layer}: padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(
                    f"{layer}: padding='same' is not supported for strided convolutions (stride={self.stride})"
                )
            self.padding = padding
        else:
            self.padding = check_int_pair(layer, "padding", padding, 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{layer}: padding_mode: expected one of {_PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self._init_parameters((out_channels, in_channels // groups, *self.kernel_size), out_channels, bias)

    def _pad_widths(self) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` for F.pad: the zeros that ``padding`` stands for."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            (th, tw) = (d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        ph, pw = self.padding
        return (pw, pw, ph, ph)

    def forward(self, input: Tensor) -> Tensor:
        return self.forward_relu(input, relu=False)

    def forward_relu(self, input: Tensor, relu: bool = True) -> Tensor:
        """This layer then a ReLU, ReLU applied by the convolution's kernel
        (:func:`minitorchseg.functional.conv2d_relu`); ``relu=False`` is :meth:`forward` itself."""
        conv = F.conv2d_relu if relu else F.conv2d
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._pad_widths(), mode=self.padding_mode)
            return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution layer, ``torch.nn.ConvTranspose2d``.

    ``forward(input, output_size=None)``: the output is
    ``Ho = (H − 1)·sh − 2ph + dh(kh − 1) + oph + 1``. Several output sizes map back to
    the same input size under a strided conv2d; ``output_size`` (2 spatial sizes,
    or the full 4-D / unbatched 3-D shape) picks one, which must lie in
    ``[min, min + s − 1]`` with ``min`` the size at ``output_padding = 0``; it then
    replaces ``output_padding`` by ``size − min`` (torch's ``_output_padding``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros"):
        super().__init__()
        layer = "ConvTranspose2d"
        _check_channels(layer, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f'{layer}: padding_mode: only "zeros" is supported, got {padding_mode!r}')
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_int_pair(layer, "kernel_size", kernel_size, 1)
        self.stride = check_int_pair(layer, "stride", stride, 1)
        self.dilation = check_int_pair(layer, "dilation", dilation, 1)
        if isinstance(padding, str):
            raise ValueError(f"{layer}: padding: expected an int or a pair of ints, got {padding!r}")
        self.padding = check_int_pair(layer, "padding", padding, 0)
        self.output_padding = check_int_pair(layer, "output_padding", output_padding, 0)
        self.padding_mode = padding_mode
        self._init_parameters((in_channels, out_channels // groups, *self.kernel_size), out_channels, bias)

    def _output_padding(self, input: Tensor, output_size) -> tuple[int, int]:
        """``output_padding``, or the one that makes the output ``output_size`` (torch's range rule)."""
        if output_size is None:
            return self.output_padding
        if isinstance(output_size, Tensor) or not hasattr(output_size, "__len__"):
            raise TypeError(f"ConvTranspose2d: output_size: expected a list or tuple of ints, got {output_size!r}")
        sizes = [int(s) for s in output_size]
        non_spatial = 2 if input.ndim == 4 else 1
        if len(sizes) == non_spatial + 2:
            sizes = sizes[non_spatial:]
        if len(sizes) != 2:
            raise ValueError(
                f"ConvTranspose2d: output_size: for {input.ndim}D input, output_size must have 2 or "
                f"{non_spatial + 2} elements (got {len(output_size)}: {list(output_size)})"
            )
        smallest = [
            conv_transpose_output_size(n, k, s, p, 0, d)
            for n, k, s, p, d in zip(input.shape[-2:], self.kernel_size, self.stride, self.padding, self.dilation)
        ]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride)]
        for size, lo, hi in zip(sizes, smallest, largest):
            if not lo <= size <= hi:
                raise ValueError(
                    f"ConvTranspose2d: output_size: requested an output size of {sizes}, but valid sizes range "
                    f"from {smallest} to {largest} (for an input of {list(input.shape[-2:])}): allowed heights "
                    f"{smallest[0]}..{largest[0]} and widths {smallest[1]}..{largest[1]} (inclusive)"
                )
        return (sizes[0] - smallest[0], sizes[1] - smallest[1])

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        if not isinstance(input, Tensor):
            raise TypeError(f"ConvTranspose2d: input: expected a Tensor, got {type(input).__name__}")
        if input.ndim not in (3, 4):
            raise ValueError(
                f"ConvTranspose2d: input: expected a 4-D (N, C, H, W) or 3-D (C, H, W) tensor, got shape {input.shape}"
            )
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
