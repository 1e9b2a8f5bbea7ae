"""F.max_pool2d, F.max_unpool2d, F.interpolate and nn.MaxPool2d / MaxUnpool2d / Upsample through autograd.

Against torch (forward and every input gradient, non-uniform upstream), finite
differences in float64 on tie-free data, SegNet-style pool → unpool round trips
on odd sizes, and every bad input rejected with a message naming the problem.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg import nn
from minitorchseg.autograd import gradcheck
from tests.kernels.pool_cases import SCALE_FACTORS, pool_geometries, strided
from tests.strategies import distinct, dtypes, randn, seeds, settings_fast
from tests.torch_ref import check_against_torch

TF = torch.nn.functional


@settings_fast
@given(g=pool_geometries(max_size=9), seed=seeds, dtype=dtypes, unbatched=st.booleans(), contiguous=st.booleans())
def test_max_pool2d_matches_torch(g, seed, dtype, unbatched, contiguous):
    shape = (g.c, g.h, g.w) if unbatched else (g.n, g.c, g.h, g.w)
    x = distinct(seed, shape, dtype)
    kernel, stride, padding, dilation, ceil_mode = g.args

    def ours(t):
        out, idx = F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        ref_idx = TF.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)[1]
        np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
        assert idx.dtype == np.int64 and not idx.requires_grad
        return out

    def theirs(t):
        return TF.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode)

    # A window with no in-bounds tap has index ≥ H·W; torch's backward then writes outside the
    # plane (memory corruption), so the gradients are compared with torch only when every index is in it.
    ref_idx = TF.max_pool2d(torch.tensor(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)[1]
    in_plane = bool(((ref_idx >= 0) & (ref_idx < g.h * g.w)).all())
    check_against_torch(ours, theirs, [x if contiguous else strided(x)], grad=in_plane)


@settings_fast
@given(g=pool_geometries(max_size=9, max_dilation=1), seed=seeds, dtype=dtypes, unbatched=st.booleans())
def test_pool_unpool_with_output_size_matches_torch(g, seed, dtype, unbatched):
    """Odd sizes, ceil_mode, padding: unpooling to ``output_size=x.shape`` puts values back where they were."""
    shape = (g.c, g.h, g.w) if unbatched else (g.n, g.c, g.h, g.w)
    kernel, stride, padding, dilation, ceil_mode = g.args

    def ours(t):
        out, idx = F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        return F.max_unpool2d(out * 2.0, idx, kernel, stride, padding, output_size=t.shape[-2:])

    def theirs(t):
        out, idx = TF.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        return TF.max_unpool2d(out * 2.0, idx, kernel, stride, padding, output_size=t.shape[-2:])

    check_against_torch(ours, theirs, [distinct(seed, shape, dtype)])


@st.composite
def interpolate_cases(draw):
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    if draw(st.booleans()):
        return h, w, dict(size=(draw(st.integers(1, 16)), draw(st.integers(1, 16))))
    factors = (draw(st.sampled_from(SCALE_FACTORS)), draw(st.sampled_from(SCALE_FACTORS)))
    if math.floor(h * factors[0]) < 1 or math.floor(w * factors[1]) < 1:
        factors = (2.0, 2.0)
    return h, w, dict(scale_factor=factors, recompute_scale_factor=draw(st.sampled_from([None, False, True])))


@settings_fast
@given(case=interpolate_cases(), seed=seeds, dtype=dtypes, mode=st.sampled_from(["nearest", "bilinear"]),
       align_corners=st.sampled_from([None, False, True]), contiguous=st.booleans())
def test_interpolate_matches_torch(case, seed, dtype, mode, align_corners, contiguous):
    h, w, kwargs = case
    if mode == "nearest":
        align_corners = None
    x = randn(seed, (2, 2, h, w), dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    # a gradient element sums many upstream terms (|g| ≤ 1.5) in another order than torch: allow 8 ulp of that
    # sum; the largest total weight of one input element comes from torch's backward (the reference), not ours
    ones = torch.ones((1, 1, h, w), dtype=torch.float64, requires_grad=True)
    weight_sum = TF.interpolate(ones, mode=mode, align_corners=align_corners, **kwargs)
    weight_sum.backward(torch.ones_like(weight_sum))
    grad_tol = dict(rtol=tol["rtol"], atol=tol["atol"] + 8 * np.finfo(dtype).eps * 1.5 * ones.grad.numpy().max())
    check_against_torch(
        lambda t: F.interpolate(t, mode=mode, align_corners=align_corners, **kwargs),
        lambda t: TF.interpolate(t, mode=mode, align_corners=align_corners, **kwargs),
        [x if contiguous else strided(x)], tol=tol, grad_tol=grad_tol,
    )


def test_gradcheck_max_pool2d_and_unpool():
    x = mts.tensor(distinct(0, (1, 2, 5, 6)), requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), [x])
    assert gradcheck(lambda t: F.max_pool2d(t, (2, 3), (1, 2), (1, 0), dilation=(2, 1)), [x])
    _, idx = F.max_pool2d(x.detach(), 2, return_indices=True)
    values = mts.tensor(distinct(1, idx.shape), requires_grad=True)
    assert gradcheck(lambda v: F.max_unpool2d(v, idx, 2, output_size=(5, 6)), [values])


def test_gradcheck_interpolate():
    x = mts.tensor(randn(0, (1, 2, 4, 5)), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, size=(7, 3), mode="bilinear"), [x])
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=1.5, mode="bilinear", align_corners=True), [x])
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=(2, 0.7), mode="nearest"), [x])


def test_segnet_round_trip_matches_torch():
    """conv → pool → pool → unpool(size of stage 2) → unpool(size of stage 1), odd sizes, through the layers."""
    x = distinct(3, (2, 3, 11, 9))
    w = randn(4, (4, 3, 3, 3))

    def ours(t, weight):
        h = F.conv2d(t, weight, padding=1)
        pool, unpool = nn.MaxPool2d(2, stride=2, return_indices=True), nn.MaxUnpool2d(2, stride=2)
        p1, i1 = pool(h)
        p2, i2 = pool(p1)
        u2 = unpool(p2, i2, output_size=p1.shape)
        return unpool(u2 + p1, i1, output_size=h.shape)

    def theirs(t, weight):
        h = TF.conv2d(t, weight, padding=1)
        pool, unpool = torch.nn.MaxPool2d(2, stride=2, return_indices=True), torch.nn.MaxUnpool2d(2, stride=2)
        p1, i1 = pool(h)
        p2, i2 = pool(p1)
        u2 = unpool(p2, i2, output_size=p1.shape)
        return unpool(u2 + p1, i1, output_size=h.shape)

    out, _ = check_against_torch(ours, theirs, [x, w])
    assert out.shape == (2, 4, 11, 9)


def test_layers_defaults_and_repr():
    pool = nn.MaxPool2d(3)
    assert pool.stride == 3
    assert repr(pool) == "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"
    unpool = nn.MaxUnpool2d(2)
    assert unpool.stride == (2, 2) and repr(unpool) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert repr(nn.Upsample(size=(4, 5))) == "Upsample(size=(4, 5), mode='nearest')"
    x = mts.tensor(randn(0, (1, 2, 3, 4)))
    np.testing.assert_array_equal(up(x).numpy(), F.interpolate(x, scale_factor=2.0, mode="bilinear",
                                                               align_corners=True).numpy())
    out = pool(mts.tensor(randn(1, (1, 1, 7, 7))))
    assert isinstance(out, mts.Tensor) and out.shape == (1, 1, 2, 2)
    values, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert unpool(values, idx, output_size=(1, 2, 3, 4)).shape == (1, 2, 3, 4)


def test_max_pool2d_literal_example_through_autograd():
    x = mts.tensor(np.array([[1, 5, 2, 0], [3, 4, 8, 6], [7, 7, 1, 9], [2, 7, 0, 9]], np.float32)[None, None],
                   requires_grad=True)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy()[0, 0], [[5, 8], [7, 9]])
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[1, 6], [8, 11]])
    out.backward(mts.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)))
    expected = np.zeros(16, np.float32)
    expected[[1, 6, 8, 11]] = [1, 2, 3, 4]
    np.testing.assert_array_equal(x.grad.numpy().reshape(16), expected)


def t(shape, dtype=np.float32):
    return mts.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), 3, padding=2), ValueError, r"padding: expected at most half"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), (3, 2), padding=(1, 2)), ValueError, r"padding ≤ kernel_size // 2"),
    (lambda: F.max_pool2d(t((1, 1, 2, 2)), 3), ValueError, r"the output would be 0x0 for an input of 2x2"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), 0), ValueError, r"kernel_size: expected values ≥ 1"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), 2, stride=0), ValueError, r"stride: expected values ≥ 1"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), 2, dilation=0), ValueError, r"dilation: expected values ≥ 1"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), 2, padding=-1), ValueError, r"padding: expected values ≥ 0"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4)), (2, 2, 2)), TypeError, r"kernel_size: expected an int or a pair"),
    (lambda: F.max_pool2d(t((1, 1, 4, 4), np.int64), 2), TypeError, r"expected a float32 or float64 tensor"),
    (lambda: F.max_pool2d(t((4, 4)), 2), ValueError, r"expected a 4-D \(N, C, H, W\) or 3-D"),
    (lambda: F.max_pool2d(t((1, 0, 4, 4)), 2), ValueError, r"non-empty channel and spatial"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, r"input: expected a Tensor, got ndarray"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.full((1, 1, 2, 2), 18)), 2), ValueError,
     r"Found an invalid max index: 18 \(output volumes are of size 4x4\)"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.array([[[[0, 1], [-1, 3]]]])), 2), ValueError,
     r"Found an invalid max index: -1 \(output volumes are of size 4x4\)"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.zeros((1, 1, 2, 2), np.int64)), 2, output_size=(6, 6)),
     ValueError, r'invalid output_size "\(6, 6\)" \(dim 0 must be between 2 and 6\)'),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.zeros((1, 1, 2, 2), np.int64)), 2, output_size=[4, 2]),
     ValueError, r'invalid output_size "\[4, 2\]" \(dim 1 must be between 2 and 6\)'),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.zeros((1, 1, 2, 2), np.int64)), 2, output_size=(1, 4, 4)),
     ValueError, r"output_size should be a sequence containing 2 or 4 elements, but it has a length of '3'"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), mts.tensor(np.zeros((1, 1, 2, 3), np.int64)), 2), ValueError,
     r"indices: expected the input's shape \(1, 1, 2, 2\), got \(1, 1, 2, 3\)"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2)), t((1, 1, 2, 2)), 2), TypeError, r"indices: expected an integer"),
    (lambda: F.max_unpool2d(t((1, 1, 2, 2), np.int64), mts.tensor(np.zeros((1, 1, 2, 2), np.int64)), 2),
     TypeError, r"input: expected a float32 or float64 tensor"),
    (lambda: F.max_unpool2d(t((2, 2)), mts.tensor(np.zeros((2, 2), np.int64)), 2), ValueError, r"expected a 4-D"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=8, scale_factor=2), ValueError,
     r"only one of size or scale_factor should be defined"),
    (lambda: F.interpolate(t((1, 1, 4, 4))), ValueError, r"either size or scale_factor should be defined"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=8, recompute_scale_factor=True), ValueError,
     r"recompute_scale_factor is not meaningful with an explicit size"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=8, align_corners=True), ValueError,
     r"align_corners: can only be set with mode='bilinear'"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=8, mode="bicubic"), ValueError, r"mode: expected one of"),
    (lambda: F.interpolate(t((1, 4, 4)), size=8, mode="bilinear"), ValueError,
     r"expected a 4-D \(N, C, H, W\) tensor for mode 'bilinear', got shape \(1, 4, 4\)"),
    (lambda: F.interpolate(t((1, 1, 4, 4), np.int64), size=8), TypeError, r"expected a float32 or float64 tensor"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=(8, 8, 8)), ValueError, r"size: expected a positive int"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), size=(0, 8)), ValueError,
     r"output sizes should be greater than 0, but got input \(H: 4, W: 4\) output \(H: 0, W: 8\)"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), scale_factor=0.2), ValueError, r"output \(H: 0, W: 0\)"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), scale_factor=-2.0), ValueError, r"scale_factor: expected a positive"),
    (lambda: F.interpolate(t((1, 1, 4, 4)), scale_factor=float("nan")), ValueError, r"positive finite number"),
])
def test_bad_inputs_are_rejected_with_a_message(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_invalid_index_is_rejected():
    """A negative or too large index raises (the kernel checks each index in its scatter pass and returns
    nothing); valid indices still work afterwards."""
    values = mts.tensor(np.ones((1, 1, 2, 2), np.float32))
    for bad in (np.int64(-5), np.int64(2**40), np.int64(16)):
        indices = np.array([[[[0, 1], [2, 3]]]], np.int64)
        indices[0, 0, 1, 1] = bad
        with pytest.raises(ValueError, match=rf"invalid max index: {int(bad)} "):
            F.max_unpool2d(values, mts.tensor(indices), 2)
    ok = F.max_unpool2d(values, mts.tensor(np.array([[[[0, 5], [10, 15]]]], np.int32)), 2)
    np.testing.assert_array_equal(np.flatnonzero(ok.numpy()), [0, 5, 10, 15])
