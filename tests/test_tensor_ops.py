"""Every core op against torch: forward and every input gradient, float64 and float32, plus gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import gradcheck

from .strategies import TOL, away_from_zero, distinct, dtypes, randn, seeds, settings_fast
from .torch_ref import check_against_torch

broadcast_pairs = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@settings_fast
@given(shapes=broadcast_pairs, seed=seeds, dtype=dtypes,
       op=st.sampled_from(["add", "sub", "mul", "div", "pow"]))
def test_binary_ops_broadcast(shapes, seed, dtype, op):
    a_shape, b_shape = shapes.input_shapes
    a = randn(seed, a_shape, dtype)
    b = randn(seed + 1, b_shape, dtype)
    if op in ("div", "pow"):  # keep denominators and bases away from 0, exponents moderate
        b = (np.abs(b) + 0.5).astype(dtype) if op == "div" else (b * 0.5).astype(dtype)
        a = (np.abs(a) + 0.5).astype(dtype) if op == "pow" else a
    ours = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
            "div": lambda x, y: x / y, "pow": lambda x, y: x**y}[op]
    check_against_torch(ours, ours, [a, b])


@settings_fast
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=seeds, dtype=dtypes,
       op=st.sampled_from(["neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "clamp"]))
def test_unary_ops(shape, seed, dtype, op):
    x = away_from_zero(seed, shape, dtype, margin=0.05)
    if op in ("log", "sqrt"):
        x = np.abs(x).astype(dtype)
    if op == "clamp":  # keep values off the clamp bounds (kinks)
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, x + 0.2, x).astype(dtype)
    ours = {
        "neg": lambda t: -t, "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "abs": F.abs, "relu": F.relu,
        "sigmoid": F.sigmoid, "tanh": F.tanh, "clamp": lambda t: F.clamp(t, -0.5, 0.5),
    }[op]
    theirs = {
        "neg": lambda t: -t, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs,
        "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "clamp": lambda t: torch.clamp(t, -0.5, 0.5),
    }[op]
    check_against_torch(ours, theirs, [x])


def test_python_scalar_keeps_dtype_and_reverse_operators():
    x = mts.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = 2.0 - x * 3 + 1 / x + 2**x
    assert y.dtype == np.float32
    y.backward(mts.tensor(np.array([1.0, -1.0], dtype=np.float32)))
    expected = np.array([-3 - 1 + np.log(2) * 2, -(-3 - 0.25 + np.log(2) * 4)], dtype=np.float32)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


dims = st.one_of(st.none(), st.integers(-3, 2), st.sampled_from([(0, 2), (1,), (-1, 0)]))


@settings_fast
@given(seed=seeds, dtype=dtypes, dim=dims, keepdim=st.booleans(), op=st.sampled_from(["sum", "mean", "max"]))
def test_reductions(seed, dtype, dim, keepdim, op):
    x = distinct(seed, (2, 3, 4), dtype, gap=0.1)  # unique maxima
    assume(not (op == "max" and dim is not None and not isinstance(dim, int)))  # torch.max takes one dim

    def ours(t):
        out = getattr(F, op)(t, dim, keepdim) if dim is not None else getattr(F, op)(t)
        return out[0] if op == "max" and dim is not None else out

    def theirs(t):
        if dim is None:
            return getattr(torch, op)(t)
        out = getattr(torch, op)(t, dim, keepdim)
        return out[0] if op == "max" else out

    check_against_torch(ours, theirs, [x])
    if op == "max" and dim is not None:
        ind = F.max(mts.tensor(x), dim, keepdim)[1].numpy()
        np.testing.assert_array_equal(ind, torch.max(torch.tensor(x), dim, keepdim)[1].numpy())


@settings_fast
@given(seed=seeds, dtype=dtypes,
       shapes=st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                               ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (4, 3, 2))]))
def test_matmul_broadcast(seed, dtype, shapes):
    a, b = randn(seed, shapes[0], dtype), randn(seed + 1, shapes[1], dtype)
    check_against_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b])


@settings_fast
@given(seed=seeds, dtype=dtypes, batch=st.sampled_from([(5,), (2, 3)]), bias=st.booleans())
def test_linear(seed, dtype, batch, bias):
    arrays = [randn(seed, batch + (4,), dtype), randn(seed + 1, (3, 4), dtype)]
    if bias:
        arrays.append(randn(seed + 2, (3,), dtype))
    check_against_torch(F.linear, TF.linear, arrays)


@settings_fast
@given(seed=seeds, dtype=dtypes)
def test_shape_ops(seed, dtype):
    x = randn(seed, (2, 3, 4), dtype)
    cases = [
        (lambda t: t.reshape(4, 6), lambda t: t.reshape(4, 6)),
        (lambda t: t.view(-1), lambda t: t.view(-1)),
        (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
        (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
        (lambda t: t.flatten(1), lambda t: t.flatten(1)),
        (lambda t: t.unsqueeze(1).squeeze(1), lambda t: t.unsqueeze(1).squeeze(1)),
        (lambda t: t[1:, ::2, -1], lambda t: t[1:, ::2, -1]),
        (lambda t: t[:, [0, 2, 0]], lambda t: t[:, [0, 2, 0]]),  # repeated index: gradients add
        (lambda t: t[t > 0], lambda t: t[t > 0]),
        (lambda t: t[None, ..., 1], lambda t: t[None, ..., 1]),
    ]
    for ours, theirs in cases:
        check_against_torch(ours, theirs, [x])


@settings_fast
@given(seed=seeds, dtype=dtypes, dim=st.integers(-3, 2))
def test_cat_and_stack(seed, dtype, dim):
    a, b = randn(seed, (2, 3, 2), dtype), randn(seed + 1, (2, 3, 2), dtype)
    check_against_torch(lambda x, y: F.cat([x, y, x], dim), lambda x, y: torch.cat([x, y, x], dim), [a, b])
    sdim = dim if dim >= 0 else dim - 1 + 1  # stack has one more dim: -1..-4 and 0..3 are valid
    check_against_torch(lambda x, y: F.stack([x, y], sdim), lambda x, y: torch.stack([x, y], sdim), [a, b])


@settings_fast
@given(seed=seeds, dtype=dtypes, mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
       pad=st.sampled_from([(1, 2), (0, 1, 2, 0), (2, 2, 1, 1)]))
def test_pad(seed, dtype, mode, pad):
    x = randn(seed, (2, 3, 4, 5) if len(pad) == 4 else (2, 4, 5), dtype)  # torch: 1-dim non-constant pads need 3-D
    kwargs = {"value": 0.5} if mode == "constant" else {}
    check_against_torch(lambda t: F.pad(t, pad, mode, **kwargs), lambda t: TF.pad(t, pad, mode, **kwargs), [x])


@settings_fast
@given(seed=seeds, dtype=dtypes, dim=st.integers(-2, 1), log=st.booleans())
def test_softmax_and_log_softmax(seed, dtype, dim, log):
    x = randn(seed, (3, 5), dtype, scale=5.0)
    ours = F.log_softmax if log else F.softmax
    theirs = TF.log_softmax if log else TF.softmax
    check_against_torch(lambda t: ours(t, dim), lambda t: theirs(t, dim), [x])


def test_log_softmax_is_stable_for_large_logits():
    x = mts.tensor(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(F.log_softmax(x, 1).numpy(), [[0.0, -1000.0, -2000.0]])


@settings_fast
@given(seed=seeds, dtype=dtypes, spatial=st.booleans(), weighted=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "none"]), ignore=st.booleans())
def test_cross_entropy(seed, dtype, spatial, weighted, reduction, ignore):
    rng = np.random.default_rng(seed)
    shape = (2, 4, 3, 5) if spatial else (6, 4)
    x = randn(seed, shape, dtype, scale=2.0)
    target = rng.integers(0, 4, size=(shape[0],) + shape[2:])
    if ignore:
        target[rng.random(target.shape) < 0.3] = 3 if weighted else -100
        target.flat[0] = 0  # at least one counted target
    ignore_index = 3 if (ignore and weighted) else -100
    w = rng.uniform(0.5, 2.0, size=4).astype(dtype) if weighted else None

    def ours(t):
        return F.cross_entropy(t, mts.tensor(target), mts.tensor(w) if w is not None else None, ignore_index, reduction)

    def theirs(t):
        return TF.cross_entropy(t, torch.tensor(target), torch.tensor(w) if w is not None else None,
                                ignore_index=ignore_index, reduction=reduction)

    check_against_torch(ours, theirs, [x])


@settings_fast
@given(seed=seeds, dtype=dtypes, reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans())
def test_bce_with_logits(seed, dtype, reduction, weighted):
    x = randn(seed, (3, 4), dtype, scale=3.0)
    y = np.random.default_rng(seed).random((3, 4)).astype(dtype)
    w = np.random.default_rng(seed + 1).uniform(0.5, 2, (4,)).astype(dtype) if weighted else None
    check_against_torch(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, reduction),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, None if w is None else torch.tensor(w),
                                                         reduction=reduction),
        [x, y])


@settings_fast
@given(seed=seeds, dtype=dtypes, reduction=st.sampled_from(["mean", "sum", "none"]),
       beta=st.sampled_from([0.0, 1.0 / 9, 0.5, 1.0]))
def test_smooth_l1_loss(seed, dtype, reduction, beta):
    x = randn(seed, (4, 5), dtype)
    y = randn(seed + 1, (4, 5), dtype)
    d = x - y  # keep |d| off the kinks at 0 and beta
    y = np.where(np.abs(np.abs(d) - beta) < 0.02, y + 0.05, y).astype(dtype)
    y = np.where(np.abs(x - y) < 0.02, y + 0.05, y).astype(dtype)
    check_against_torch(lambda a, b: F.smooth_l1_loss(a, b, reduction, beta),
                        lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [x, y])


@settings_fast
@given(seed=seeds, dtype=dtypes, training=st.booleans(), affine=st.booleans())
def test_batch_norm_functional(seed, dtype, training, affine):
    x = randn(seed, (3, 2, 4, 5), dtype, scale=2.0) + 1.0
    mean = randn(seed + 1, (2,), dtype)
    var = (np.abs(randn(seed + 2, (2,), dtype)) + 0.5).astype(dtype)
    w, b = randn(seed + 3, (2,), dtype), randn(seed + 4, (2,), dtype)
    rm_ours, rv_ours = mts.tensor(mean.copy()), mts.tensor(var.copy())
    rm_torch, rv_torch = torch.tensor(mean.copy()), torch.tensor(var.copy())
    arrays = [x, w, b] if affine else [x]

    def ours(t, *wb):
        return F.batch_norm(t, rm_ours, rv_ours, *(wb or (None, None)), training=training, momentum=0.3)

    def theirs(t, *wb):
        return TF.batch_norm(t, rm_torch, rv_torch, *(wb or (None, None)), training=training, momentum=0.3)

    check_against_torch(ours, theirs, arrays)
    np.testing.assert_allclose(rm_ours.numpy(), rm_torch.numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(rv_ours.numpy(), rv_torch.numpy(), **TOL[np.dtype(dtype)])


def test_dropout_mask_scale_and_modes():
    mts.manual_seed(0)
    x = mts.ones(1000, requires_grad=True)
    y = F.dropout(x, 0.25, training=True)
    kept = y.numpy() != 0
    assert 0.68 < kept.mean() < 0.82
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75)
    y.backward(mts.ones(1000))
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # same mask and scale in backward
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match="probability p must be in"):
        F.dropout(x, 1.5)


# ---------------------------------------------------------------------------------- finite differences
GRADCHECK_CASES = {
    "add": (lambda a, b: a + b, [(2, 3), (3,)]),
    "sub": (lambda a, b: a - b, [(2, 3), (2, 1)]),
    "mul": (lambda a, b: a * b, [(2, 3), (1, 3)]),
    "div": (lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    "pow": (lambda a, b: (a * a + 1) ** b, [(2, 3), (3,)]),
    "neg": (lambda a: -a, [(3,)]),
    "exp": (F.exp, [(3, 2)]),
    "log": (lambda a: F.log(a * a + 1), [(3, 2)]),
    "sqrt": (lambda a: F.sqrt(a * a + 1), [(3, 2)]),
    "tanh": (F.tanh, [(3, 2)]),
    "sigmoid": (F.sigmoid, [(3, 2)]),
    "relu": (F.relu, [(3, 2)]),
    "abs": (F.abs, [(3, 2)]),
    "clamp": (lambda a: F.clamp(a, -0.3, 0.4), [(3, 2)]),
    "sum": (lambda a: F.sum(a, (0, 2), True), [(2, 3, 2)]),
    "mean": (lambda a: F.mean(a, 1), [(2, 3, 2)]),
    "max": (lambda a: F.max(a, 1)[0], [(2, 3, 2)]),
    "matmul": (lambda a, b: a @ b, [(2, 2, 3), (3, 2)]),
    "linear": (F.linear, [(4, 3), (2, 3), (2,)]),
    "reshape_permute": (lambda a: a.reshape(3, 4).permute(1, 0) * 2, [(2, 6)]),
    "cat": (lambda a, b: F.cat([a, b], 1), [(2, 2), (2, 3)]),
    "stack": (lambda a, b: F.stack([a, b], 0), [(2, 2), (2, 2)]),
    "pad_reflect": (lambda a: F.pad(a, (2, 1), "reflect"), [(2, 4)]),
    "index": (lambda a: a[:, [0, 0, 2]], [(2, 3)]),
    "softmax": (lambda a: F.softmax(a, 1), [(2, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, 0), [(3, 2)]),
    "batch_norm": (lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True), [(3, 2, 2, 2), (2,), (2,)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, mts.tensor(np.array([[0, 2], [1, -100]]))), [(2, 3, 2)]),
    "bce": (lambda a, b: F.binary_cross_entropy_with_logits(a, F.sigmoid(b)), [(2, 3), (2, 3)]),
    "smooth_l1": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), [(2, 3), (2, 3)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_gradcheck(name):
    fn, shapes = GRADCHECK_CASES[name]
    inputs = [mts.tensor(distinct(i, s, np.float64, gap=0.37) % 1.7 - 0.8 + 0.013 * i, requires_grad=True)
              for i, s in enumerate(shapes)]
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(mts.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * a

        @staticmethod
        def backward(ctx, grad):
            return grad  # should be 2·a·grad

    with pytest.raises(AssertionError, match="analytic and numeric gradients differ"):
        gradcheck(Wrong.apply, [mts.tensor(np.array([1.0, 2.0]), requires_grad=True)])


def test_non_contiguous_inputs():
    base = randn(3, (4, 3), np.float64)
    check_against_torch(lambda t: F.softmax(t * 2, 1), lambda t: torch.softmax(t * 2, 1), [base.T])
    check_against_torch(lambda a, b: a @ b, lambda a, b: a @ b, [base.T, base[:, ::2]])
