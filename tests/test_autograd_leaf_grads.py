"""A leaf's first gradient: kept without a copy when only the engine refers to it, copied otherwise.

The rule (``minitorchseg.autograd.backward``): a leaf's ``.grad`` never shares memory
with the user's upstream gradient, an array a Function saved, or another leaf's
gradient; a fresh array (or a fresh array's reshaped view) that nothing else
refers to is stored as it is.
"""

import sys

import numpy as np
import pytest

import minitorchseg as mts
import minitorchseg.functional as F
from minitorchseg.autograd import Function


class PassThrough(Function):
    """y = x; backward returns the upstream gradient array itself."""

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class ReturnsSaved(Function):
    """y = 2x; backward returns an array it also keeps (a buffer that must not become the leaf's gradient)."""

    keep = []

    @staticmethod
    def forward(ctx, a):
        return 2 * a

    @staticmethod
    def backward(ctx, grad):
        out = 2 * grad
        ReturnsSaved.keep.append(out)
        return out


class Fresh(Function):
    """y = 3x; backward returns a fresh array (reshaped view of a fresh array) and records it."""

    returned = []

    @staticmethod
    def forward(ctx, a):
        return 3 * a

    @staticmethod
    def backward(ctx, grad):
        out = (3 * grad).reshape(-1).reshape(grad.shape)
        Fresh.returned.append(id(out))
        return out


def test_gradient_of_the_user_is_copied():
    x = mts.tensor(np.ones(4), requires_grad=True)
    upstream = np.arange(4.0)
    PassThrough.apply(x).backward(mts.tensor(upstream))
    assert not np.shares_memory(x.grad.data, upstream)
    upstream[:] = -1
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 2.0, 3.0])


def test_root_leaf_gradient_is_copied():
    x = mts.tensor(np.ones(3), requires_grad=True)
    upstream = np.full(3, 2.0)
    x.backward(mts.tensor(upstream))
    assert not np.shares_memory(x.grad.data, upstream)


def test_one_array_for_two_leaves_is_copied_for_each():
    a = mts.tensor(np.ones(3), requires_grad=True)
    b = mts.tensor(np.ones(3), requires_grad=True)
    (a + b).backward(mts.tensor(np.full(3, 2.0)))   # Add.backward returns the same array for both
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[0] = 7.0
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0, 2.0])


def test_array_held_elsewhere_is_copied():
    ReturnsSaved.keep.clear()
    x = mts.tensor(np.ones(3), requires_grad=True)
    ReturnsSaved.apply(x).backward(mts.tensor(np.ones(3)))
    assert not np.shares_memory(x.grad.data, ReturnsSaved.keep[0])


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="the engine copies every leaf gradient from Python 3.14 on")
def test_fresh_array_is_kept_without_a_copy():
    Fresh.returned.clear()
    x = mts.tensor(np.ones((2, 3)), requires_grad=True)
    Fresh.apply(x).backward(mts.tensor(np.ones((2, 3))))
    assert id(x.grad.data) == Fresh.returned[0]
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 3.0))


def test_kept_gradient_still_accumulates_and_pool_gradient_is_exact():
    """A max-pool input gradient (a reshaped fresh array, kept as it is) accumulates over two backward passes."""
    rng = np.random.default_rng(0)
    x = mts.tensor(rng.permutation(16).reshape(1, 1, 4, 4).astype(np.float64), requires_grad=True)
    g = mts.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    F.max_pool2d(x, 2).backward(g)
    first = x.grad.numpy().copy()
    assert sorted(first[first != 0]) == [1.0, 2.0, 3.0, 4.0]
    F.max_pool2d(x, 2).backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="the rule copies every leaf gradient from Python 3.14 on")
def test_leaf_gradient_from_the_output_pool_is_kept_without_a_copy():
    """A kernel's large output comes from the CPU output pool, whose list refers to its buffer once more: the
    leaf's first gradient is still stored as it is, and the pool does not hand that buffer out while it lives."""
    from minitorchseg.kernels.cpu import _runtime

    x = mts.tensor(np.random.default_rng(0).standard_normal((2, 8, 128, 128)).astype(np.float32),
                   requires_grad=True)                                     # 1 MiB: pooled
    F.max_pool2d(x, 2).backward(mts.ones(2, 8, 64, 64))
    assert _runtime.outputs.holds(x.grad.data.base)                      # no copy
    other = _runtime.empty(x.shape, np.float32)
    assert other.ctypes.data != x.grad.data.ctypes.data
    assert x.grad.numpy().sum() == 2 * 8 * 64 * 64
