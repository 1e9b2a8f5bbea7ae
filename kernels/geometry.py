"""Output sizes of the windowed ops, as torch computes them: host-side helpers of both devices.

Pure Python on ints and shapes, shared by the CPU and CUDA entry points and by
``minitorchseg.functional``. ``//`` is floor division. Per spatial dimension:
:func:`conv_output_size`, :func:`conv_transpose_output_size` (torch 2.14.1's
``torch/nn/modules/conv.py`` shape formulas), :func:`pool_output_size` (ATen's
``aten/src/ATen/native/Pool.h``), :func:`unpool_default_size`; per ``(H, W)`` pair
for the convolution entry points: :func:`conv2d_output_hw`,
:func:`conv_transpose2d_output_hw`, :func:`input_grad_output_padding` and
:func:`is_pointwise`.
"""

from __future__ import annotations

__all__ = [
    "pair",
    "conv_output_size",
    "conv_transpose_output_size",
    "pool_output_size",
    "unpool_default_size",
    "conv2d_output_hw",
    "conv_transpose2d_output_hw",
    "input_grad_output_padding",
    "is_pointwise",
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


def is_pointwise(kernel_hw, stride, padding, dilation) -> bool:
    """A 1x1 kernel, stride 1, no padding: the image is its own column matrix."""
    return tuple(kernel_hw) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def conv2d_output_hw(x_shape, w_shape, stride, padding, dilation) -> tuple[int, int]:
    """``(Ho, Wo)`` of conv2d of ``x: (N, C, H, W)`` with ``w: (O, Cg, kh, kw)`` (shapes only; both devices).

    ``Ho = (H + 2ph − dh(kh−1) − 1) // sh + 1`` (:func:`conv_output_size`), W alike.
    """
    kh, kw = w_shape[2:]
    return (
        conv_output_size(x_shape[2], kh, stride[0], padding[0], dilation[0]),
        conv_output_size(x_shape[3], kw, stride[1], padding[1], dilation[1]),
    )


def conv_transpose2d_output_hw(x_shape, w_shape, stride, padding, output_padding, dilation) -> tuple[int, int]:
    """``(Ho, Wo)`` of conv_transpose2d of ``x: (N, Cin, H, W)`` with ``w: (Cin, Og, kh, kw)`` (both devices).

    ``Ho = (H − 1)·sh − 2ph + dh(kh − 1) + oph + 1``
    (:func:`conv_transpose_output_size`), W alike.
    """
    kh, kw = w_shape[2:]
    return (
        conv_transpose_output_size(x_shape[2], kh, stride[0], padding[0], output_padding[0], dilation[0]),
        conv_transpose_output_size(x_shape[3], kw, stride[1], padding[1], output_padding[1], dilation[1]),
    )


def input_grad_output_padding(input_hw, grad_out_shape, w_shape, stride, padding, dilation) -> tuple[int, int]:
    """The output_padding that makes conv_transpose2d of ``grad_out`` exactly ``input_hw`` (both devices).

    ``oph = H − ((Ho − 1)·sh − 2ph + dh(kh − 1) + 1)  ∈ [0, sh − 1]``: the rows of x
    that no window of the forward conv2d reached; W alike.
    """
    no_padding = conv_transpose2d_output_hw(grad_out_shape, w_shape, stride, padding, (0, 0), dilation)
    return input_hw[0] - no_padding[0], input_hw[1] - no_padding[1]
