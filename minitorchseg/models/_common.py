"""Pieces shared by the model files: argument and input checks, channel scaling, He initialisation, cropping."""

from __future__ import annotations

from typing import Sequence

from ..checks import check_positive_int
from ..nn import Conv2d, Module, init
from ..tensor import Tensor

__all__ = ["check_positive_int", "scale_channels", "check_input", "he_init_", "crop"]


def scale_channels(model: str, paper: Sequence[int], width: float = 1.0, channels: Sequence[int] | None = None
                   ) -> tuple[int, ...]:
    """The channel widths of a model: ``channels`` if given, else ``max(1, round(c · width))`` for each paper width.

    ``width=1.0`` is the paper's network; ``width=1/8`` keeps every stage but with
    an eighth of the channels (64 → 8, 512 → 64), which trains on a CPU in minutes.
    """
    if channels is not None:
        channels = tuple(channels)
        if len(channels) != len(paper):
            raise ValueError(
                f"{model}: channels must have {len(paper)} entries (the paper's: {tuple(paper)}), got {channels}"
            )
        for c in channels:
            check_positive_int(model, "every entry of channels", c)
        return channels
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"{model}: width must be a positive number, got {width!r}")
    return tuple(max(1, int(round(c * width))) for c in paper)


def check_input(model: str, x, in_channels: int, min_size: int = 1, reason: str = "") -> None:
    """Raise before any work if ``x`` is not a 4-D ``(N, in_channels, H, W)`` tensor with H, W ≥ ``min_size``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{model}: expected a Tensor of shape (N, {in_channels}, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{model}: expected a 4-D input (N, {in_channels}, H, W), got shape {x.shape}")
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{model}: expected {in_channels} input channels, got input of shape {x.shape} "
            f"with {x.shape[1]} channels (build the model with in_channels={x.shape[1]}?)"
        )
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(
            f"{model}: input size {x.shape[2]}x{x.shape[3]} is too small: the minimum is {min_size}x{min_size}"
            + (f" ({reason})" if reason else "")
        )


def he_init_(module: Module) -> Module:
    """He et al. (2015) initialisation of every Conv2d: weight ~ N(0, 2 / (C_in·k_h·k_w)), bias 0.

    The initialisation of both SegNet (§4) and U-Net (§3): a ReLU network whose
    activations keep unit variance from layer to layer.
    """
    for m in module.modules():
        if isinstance(m, Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                init.zeros_(m.bias)
    return module


def crop(x: Tensor, offset: int, size: tuple[int, int]) -> Tensor:
    """``x[:, :, offset : offset + H, offset : offset + W]`` for ``size = (H, W)``: caffe's Crop layer."""
    h, w = size
    if offset < 0 or offset + h > x.shape[2] or offset + w > x.shape[3]:
        raise ValueError(f"crop: window ({offset}:{offset + h}, {offset}:{offset + w}) exceeds map {x.shape}")
    return x[:, :, offset:offset + h, offset:offset + w]

