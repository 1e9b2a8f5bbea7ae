"""F.conv2d, F.conv_transpose2d, nn.Conv2d and nn.ConvTranspose2d through autograd, against torch."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn
from minitorchseg.autograd import gradcheck
from tests.kernels.conv_cases import (
    assert_conv_close,
    conv_geometries,
    gradient_magnitudes,
    noncontiguous,
    transpose_geometries,
)
from tests.strategies import dtypes, randn, seeds, settings_fast
from tests.torch_ref import upstream

TF = torch.nn.functional


def compare(ours, theirs, arrays, k_out, k_in):
    """Run both functions on leaf tensors made from ``arrays`` (x, w[, b]); compare output and every gradient.

    ``k_out`` / ``k_in``: dot-product lengths of the output and of the input gradient (float32 tolerance).
    """
    mine = [mts.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours(*mine)
    expected = theirs(*ref)
    assert_conv_close(out.numpy(), expected.detach().numpy(), "output", k_out, "forward")
    g = upstream(out.shape, out.dtype)
    out.backward(mts.tensor(g))
    expected.backward(torch.tensor(g))
    magnitudes = gradient_magnitudes(theirs, arrays, g)
    names = ["grad input", "grad weight", "grad bias"]
    kinds = ["output", "weight", "weight"]
    for m, r, name, kind, magnitude in zip(mine, ref, names, kinds, magnitudes):
        assert m.grad is not None and m.grad.shape == m.shape, name
        assert_conv_close(m.grad.numpy(), r.grad.numpy(), kind, k_in if kind == "output" else k_out, name, magnitude)


@settings_fast
@given(g=conv_geometries(max_extra=4), seed=seeds, dtype=dtypes, bias=st.booleans(), unbatched=st.booleans(),
       strided=st.booleans())
def test_conv2d_matches_torch(g, seed, dtype, bias, unbatched, strided):
    shape = (g.cin, g.h, g.w) if unbatched else (g.n, g.cin, g.h, g.w)
    x = randn(seed, shape, dtype)
    arrays = [noncontiguous(x) if strided else x, randn(seed + 1, (g.cout, g.cg) + g.kernel, dtype)]
    if bias:
        arrays.append(randn(seed + 2, (g.cout,), dtype))
    geometry = (g.stride, g.padding, g.dilation, g.groups)

    def ours(x, w, b=None):
        return F.conv2d(x, w, b, *geometry)

    def theirs(x, w, b=None):
        return TF.conv2d(x, w, b, *geometry)

    compare(ours, theirs, arrays, g.cg * g.kernel[0] * g.kernel[1], g.og * g.kernel[0] * g.kernel[1])


@settings_fast
@given(g=transpose_geometries(), seed=seeds, dtype=dtypes, bias=st.booleans(), unbatched=st.booleans())
def test_conv_transpose2d_matches_torch(g, seed, dtype, bias, unbatched):
    shape = (g.cin, g.h, g.w) if unbatched else (g.n, g.cin, g.h, g.w)
    arrays = [randn(seed, shape, dtype), randn(seed + 1, (g.cin, g.og) + g.kernel, dtype)]
    if bias:
        arrays.append(randn(seed + 2, (g.cout,), dtype))
    geometry = (g.stride, g.padding, g.output_padding, g.groups, g.dilation)

    def ours(x, w, b=None):
        return F.conv_transpose2d(x, w, b, *geometry)

    def theirs(x, w, b=None):
        return TF.conv_transpose2d(x, w, b, *geometry)

    compare(ours, theirs, arrays, g.cg * g.kernel[0] * g.kernel[1], g.og * g.kernel[0] * g.kernel[1])


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel, dilation", [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((2, 3), (3, 2)), ((4, 1), (2, 1))])
def test_conv2d_padding_strings(padding, kernel, dilation):
    """'same' keeps H x W; with an even effective kernel the extra zero goes to the bottom/right, as torch."""
    x = randn(0, (2, 2, 7, 6))
    w = randn(1, (3, 2) + kernel)
    b = randn(2, (3,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns about asymmetric 'same' padding
        compare(lambda x, w, b: F.conv2d(x, w, b, 1, padding, dilation),
                lambda x, w, b: TF.conv2d(x, w, b, 1, padding, dilation), [x, w, b], 12, 12)
    if padding == "same":
        assert F.conv2d(mts.tensor(x), mts.tensor(w), padding="same", dilation=dilation).shape == (2, 3, 7, 6)


def test_gradcheck_conv2d():
    x = mts.tensor(randn(0, (2, 4, 6, 5)), requires_grad=True)
    w = mts.tensor(randn(1, (4, 2, 3, 2)), requires_grad=True)
    b = mts.tensor(randn(2, (4,)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 2), (1, 2), 2), [x, w, b])
    # 'same' with an even effective kernel: the asymmetric padding path
    w_even = mts.tensor(randn(3, (4, 4, 2, 2)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=(1, 3)), [x, w_even, b])


def test_gradcheck_conv_transpose2d():
    x = mts.tensor(randn(0, (2, 4, 3, 4)), requires_grad=True)
    w = mts.tensor(randn(1, (4, 3, 3, 2)), requires_grad=True)
    b = mts.tensor(randn(2, (6,)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), 2, (1, 2)), [x, w, b])
    # output_padding ≥ stride is allowed below the dilation: the input gradient drops the extra row
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, 1, 0, (1, 0), 2, (2, 1)), [x, w, b])


def test_conv2d_module_matches_torch_and_init():
    mts.manual_seed(0)
    layer = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    assert layer.weight.shape == (6, 2, 3, 2) and layer.bias.shape == (6,)
    assert layer.weight.dtype == np.float32
    bound = 1 / math.sqrt(2 * 3 * 2)  # fan_in = in_channels/groups · kh · kw; kaiming(a=√5) gives 1/√fan_in
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.8 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    ref = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.numpy()))
        ref.bias.copy_(torch.tensor(layer.bias.numpy()))
    x = randn(3, (2, 4, 9, 8), np.float32)
    assert_conv_close(layer(mts.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), "output", 12, "module")
    assert nn.Conv2d(3, 5, 3, bias=False).bias is None


def test_conv_transpose2d_module_init():
    mts.manual_seed(0)
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    assert layer.weight.shape == (4, 3, 3, 3) and layer.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 3 * 3)  # torch's fan_in for a transposed weight: out_channels/groups · kh · kw
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.weight.numpy()).max() > 0.8 * bound
    assert np.abs(layer.bias.numpy()).max() <= bound


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [(1, 2), "same"])
def test_conv2d_module_padding_modes(padding_mode, padding):
    layer = nn.Conv2d(2, 3, (2, 3), padding=padding, padding_mode=padding_mode).to(dtype=np.float64)
    ref = torch.nn.Conv2d(2, 3, (2, 3), padding=padding, padding_mode=padding_mode).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.numpy()))
        ref.bias.copy_(torch.tensor(layer.bias.numpy()))
    x = randn(0, (2, 2, 5, 6))
    compare(lambda x: layer(x), lambda x: ref(x), [x], 6, 9)


def transpose_pair(**kwargs):
    """Our ConvTranspose2d (float64) and torch's with the same weights."""
    layer = nn.ConvTranspose2d(2, 4, **kwargs).to(dtype=np.float64)
    ref = torch.nn.ConvTranspose2d(2, 4, **kwargs).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.numpy()))
        ref.bias.copy_(torch.tensor(layer.bias.numpy()))
    return layer, ref


@pytest.mark.parametrize("size", [(9, 11), (10, 12), (1, 2, 10, 11), (2, 4, 9, 12)])
def test_conv_transpose2d_output_size(size):
    """3x3 kernel, stride 2, padding 1 on 5x6: sizes range from [9, 11] to [10, 12]."""
    layer, ref = transpose_pair(kernel_size=3, stride=2, padding=1)
    x = randn(0, (2, 2, 5, 6))
    compare(lambda x: layer(x, output_size=size), lambda x: ref(x, output_size=size), [x], 9, 18)
    assert layer(mts.tensor(x), output_size=size).shape[-2:] == tuple(size[-2:])


def test_conv_transpose2d_output_size_unbatched():
    layer, ref = transpose_pair(kernel_size=2, stride=3)
    x = randn(0, (2, 4, 4))
    for size in [(11, 13), (4, 12, 11)]:
        compare(lambda x, size=size: layer(x, output_size=size), lambda x, size=size: ref(x, output_size=size),
                [x], 4, 8)


@pytest.mark.parametrize("size", [(8, 11), (9, 13), (11, 11)])
def test_conv_transpose2d_output_size_out_of_range(size):
    layer, _ = transpose_pair(kernel_size=3, stride=2, padding=1)
    x = mts.tensor(randn(0, (1, 2, 5, 6)))
    with pytest.raises(ValueError, match=r"requested an output size of .*valid sizes range from \[9, 11\] to "
                                         r"\[10, 12\] \(for an input of \[5, 6\]\)"):
        layer(x, output_size=size)


def test_conv_transpose2d_output_size_wrong_length():
    layer, _ = transpose_pair(kernel_size=3, stride=2)
    with pytest.raises(ValueError, match=r"output_size must have 2 or 4 elements \(got 3"):
        layer(mts.tensor(randn(0, (1, 2, 5, 6))), output_size=(1, 9, 11))


# ---------------------------------------------------------------------------------------------------- errors

def t(shape, dtype=np.float64):
    return mts.tensor(np.zeros(shape, dtype=dtype))


CONV2D_ERRORS = [
    (dict(input=np.zeros((1, 1, 3, 3))), TypeError, r"conv2d: input: expected a Tensor, got ndarray"),
    (dict(input=mts.tensor(np.zeros((1, 1, 3, 3), dtype=np.int64))), TypeError,
     r"input: expected a float32 or float64 tensor, got dtype int64"),
    (dict(input=t((3, 3))), ValueError, r"input: expected a 4-D \(N, C, H, W\) or 3-D .*got shape \(3, 3\)"),
    (dict(weight=t((2, 1, 3))), ValueError, r"weight: expected a 4-D tensor, got shape \(2, 1, 3\)"),
    (dict(weight=t((2, 1, 3, 3), np.float32)), TypeError, r"weight: expected dtype float64 .*got float32"),
    (dict(weight=t((2, 0, 3, 3))), ValueError, r"weight: expected every dimension ≥ 1, got shape \(2, 0, 3, 3\)"),
    (dict(bias=t((3,))), ValueError, r"bias: expected shape \(2,\) \(the output channels\), got \(3,\)"),
    (dict(bias=t((2,), np.float32)), TypeError, r"bias: expected dtype float64 .*got float32"),
    (dict(bias=np.zeros(2)), TypeError, r"bias: expected a Tensor or None, got ndarray"),
    (dict(input=t((1, 3, 5, 5))), ValueError,
     r"input: expected 1 channels \(weight shape \(2, 1, 3, 3\) with groups=1\), got input of shape \(1, 3, 5, 5\)"),
    (dict(input=t((1, 2, 5, 5)), groups=2, weight=t((3, 1, 3, 3))), ValueError,
     r"weight: expected the output channels \(dim 0, got shape \(3, 1, 3, 3\)\) to be divisible by groups=2"),
    (dict(input=t((1, 1, 2, 5))), ValueError,
     r"the dilated kernel \(3 along H.*larger than the padded input \(2 along H"),
    (dict(input=t((1, 1, 5, 5)), padding=1, dilation=(1, 4)), ValueError,
     r"the dilated kernel \(9 along W.*larger than the padded input \(7 along W"),
    (dict(padding="same", stride=2), ValueError, r"padding='same' is not supported for strided convolutions"),
    (dict(padding="full"), ValueError, r"padding: expected an int, a pair, 'valid' or 'same', got 'full'"),
    (dict(padding=-1), ValueError, r"padding: expected non-negative values, got \(-1, -1\)"),
    (dict(padding=(1, 2, 3)), TypeError, r"conv2d: padding: expected an int or a pair of ints, got \(1, 2, 3\)"),
    (dict(stride=0), ValueError, r"stride: expected positive values, got \(0, 0\)"),
    (dict(stride=1.5), TypeError, r"stride: expected an int or a pair of ints, got 1.5"),
    (dict(dilation=(1, 0)), ValueError, r"dilation: expected positive values, got \(1, 0\)"),
    (dict(groups=0), ValueError, r"groups: expected a positive int, got 0"),
    (dict(groups=2.0), ValueError, r"groups: expected a positive int, got 2.0"),
]


@pytest.mark.parametrize("changes, error, message", CONV2D_ERRORS)
def test_conv2d_errors(changes, error, message):
    args = dict(input=t((1, 1, 5, 5)), weight=t((2, 1, 3, 3)), bias=t((2,)), stride=1, padding=0, dilation=1,
                groups=1)
    args.update(changes)
    with pytest.raises(error, match=message):
        F.conv2d(**args)


CONV_TRANSPOSE2D_ERRORS = [
    (dict(input=mts.tensor(np.zeros((1, 2, 3, 3), dtype=np.int32))), TypeError,
     r"conv_transpose2d: input: expected a float32 or float64 tensor, got dtype int32"),
    (dict(input=t((2, 1, 2, 3, 3))), ValueError, r"input: expected a 4-D .*got shape \(2, 1, 2, 3, 3\)"),
    (dict(weight=t((3, 2, 2, 2))), ValueError,
     r"weight: expected 2 in dim 0 \(the input's channels, input shape \(1, 2, 3, 3\)\), got weight of shape "
     r"\(3, 2, 2, 2\)"),
    (dict(input=t((1, 3, 3, 3)), weight=t((3, 2, 2, 2)), groups=2), ValueError,
     r"input: expected the channels \(3, shape \(1, 3, 3, 3\)\) to be divisible by groups=2"),
    (dict(bias=t((2,))), ValueError, r"bias: expected shape \(3,\) \(the output channels\), got \(2,\)"),
    (dict(output_padding=2, stride=2), ValueError,
     r"output_padding: expected a value smaller than either the stride or the dilation along H, got "
     r"output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"),
    (dict(output_padding=(0, 1)), ValueError, r"smaller than either the stride or the dilation along W"),
    (dict(output_padding=-1), ValueError, r"output_padding: expected non-negative values, got \(-1, -1\)"),
    (dict(padding=2), ValueError,
     r"conv_transpose2d: the output would be 0x0 for an input of 3x3; expected every output size ≥ 1"),
    (dict(padding=(1, 3)), ValueError, r"the output would be 2x-2 for an input of 3x3"),
    (dict(padding="same"), ValueError, r"padding: expected an int or a pair of ints, got 'same'"),
    (dict(weight=t((2, 3, 2)),), ValueError, r"weight: expected a 4-D tensor, got shape \(2, 3, 2\)"),
]


@pytest.mark.parametrize("changes, error, message", CONV_TRANSPOSE2D_ERRORS)
def test_conv_transpose2d_errors(changes, error, message):
    args = dict(input=t((1, 2, 3, 3)), weight=t((2, 3, 2, 2)), bias=t((3,)), stride=1, padding=0,
                output_padding=0, groups=1, dilation=1)
    args.update(changes)
    with pytest.raises(error, match=message):
        F.conv_transpose2d(**args)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), r"in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), r"out_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: nn.Conv2d(0, 3, 3), r"in_channels: expected a positive int, got 0"),
    (lambda: nn.Conv2d(2, 3, 0), r"kernel_size: expected values ≥ 1, got 0"),
    (lambda: nn.Conv2d(2, 3, 3, padding="full"), r"padding: expected an int, a pair, 'same' or 'valid'"),
    (lambda: nn.Conv2d(2, 3, 3, stride=2, padding="same"), r"padding='same' is not supported for strided"),
    (lambda: nn.Conv2d(2, 3, 3, padding_mode="mirror"), r"padding_mode: expected one of .*got 'mirror'"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect"), r'padding_mode: only "zeros" is supported'),
    (lambda: nn.ConvTranspose2d(2, 3, 3, output_padding=-1), r"output_padding: expected values ≥ 0, got -1"),
])
def test_module_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_errors_come_before_any_work(monkeypatch):
    """A bad call never reaches a kernel."""
    from minitorchseg.kernels import cpu

    def boom(*args, **kwargs):
        raise AssertionError("kernel called")

    monkeypatch.setattr(cpu, "conv2d_forward", boom)
    monkeypatch.setattr(cpu, "conv_transpose2d_forward", boom)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d(t((1, 1, 2, 2)), t((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(t((1, 1, 2, 2)), t((1, 1, 3, 3)), output_padding=1)


@settings_fast
@given(h=st.integers(1, 6), k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 3))
def test_conv2d_raises_exactly_when_output_is_empty(h, k, s, p, d):
    x, w = t((1, 1, h, 4)), t((1, 1, k, 1))
    if (h + 2 * p - d * (k - 1) - 1) // s + 1 < 1:
        with pytest.raises(ValueError, match="larger than the padded input"):
            F.conv2d(x, w, None, s, p, d)
    else:
        assert F.conv2d(x, w, None, s, p, d).shape[2] == (h + 2 * p - d * (k - 1) - 1) // s + 1
