"""Output sizes of the windowed ops, per spatial dimension, as torch computes them.

Pure Python on ints, shared by the CPU and CUDA entry points and by
``minitorchseg.functional``. ``//`` is floor division. The formulas and their
sources are in SEMANTICS.md (torch 2.14.1).
"""

from __future__ import annotations

__all__ = [
    "pair",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "unpool_default_size",
]


def pair(value, name: str) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; ``(2, 3)`` → ``(2, 3)``; anything else → a clear error naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}") from None
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return (int(items[0]), int(items[1]))


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """``(size + 2·padding − dilation·(kernel − 1) − 1) // stride + 1`` (may be < 1: the caller checks)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_transpose_output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """``(size − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1``."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """Pooling output length, ATen's ``pooling_output_shape_pad_lr``.

    ``out = (size + 2p − d(k−1) − 1 + (s−1 if ceil_mode)) // s + 1``; with ceil_mode
    the last window must start inside the image or the left padding, so
    ``out −= 1`` when ``(out − 1)·s ≥ size + p``.
    """
    numerator = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def unpool_default_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """max_unpool2d's size without ``output_size``: ``(size − 1)·stride + kernel − 2·padding``."""
    return (size - 1) * stride + kernel - 2 * padding
