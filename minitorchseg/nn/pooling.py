"""Pooling layers: MaxPool2d (optionally returning the argmax indices) and MaxUnpool2d, as in torch."""

from __future__ import annotations

from minitorchseg.kernels.geometry import pair

from .. import functional as F
from ..tensor import Tensor
from .module import Module

__all__ = ["MaxPool2d", "MaxUnpool2d"]


class MaxPool2d(Module):
    """``torch.nn.MaxPool2d``: ``F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)``.

    ``stride`` defaults to ``kernel_size``. With ``return_indices=True`` the layer
    returns ``(out, indices)``, the indices a :class:`MaxUnpool2d` needs.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return F.max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxUnpool2d(Module):
    """``torch.nn.MaxUnpool2d``: ``forward(input, indices, output_size=None)`` → ``F.max_unpool2d``.

    Pass ``output_size`` = the shape of the tensor that was pooled whenever it had
    an odd height or width (see :func:`minitorchseg.functional.max_unpool2d`).
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "MaxUnpool2d: kernel_size")
        self.stride = pair(stride if stride is not None else kernel_size, "MaxUnpool2d: stride")
        self.padding = pair(padding, "MaxUnpool2d: padding")

    def forward(self, input: Tensor, indices: Tensor, output_size=None) -> Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
