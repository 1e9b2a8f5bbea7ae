"""The autograd engine: :class:`Function`, the backward pass, ``no_grad`` and ``gradcheck``.

Every differentiable op is a subclass of :class:`Function` with two static
methods side by side::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):          # raw arrays in, raw array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):         # d(loss)/d(out) in, one gradient per input out
            a, b = ctx.saved_arrays
            return grad * b, grad * a

``Mul.apply(x, y)`` unwraps the Tensors, runs ``forward`` and, when a gradient is
wanted, records a node of the graph: the context plus the input tensors. The
backward pass (:func:`backward`) visits the nodes in reverse topological order,
so that a node's gradient is complete (every consumer has added its share)
before it is propagated further.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Callable, Sequence

import numpy as np

from .backend import Backend

__all__ = ["Function", "Context", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast", "gradcheck"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside ``with no_grad():``."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager: ops inside record no graph (evaluation, optimiser steps)."""
    return _grad_mode(False)


def enable_grad():
    """Context manager: re-enable graph recording inside a ``no_grad`` block."""
    return _grad_mode(True)


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting is a sum.

    Broadcasting copies an operand along new leading axes and along axes of
    size 1; each copy receives a share of the gradient, so the operand's
    gradient is the sum over those axes.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Context:
    """What ``forward`` leaves for ``backward``: saved arrays and any attributes it sets.

    ``backend``/``xp``/``kernels`` name the device of the inputs, so one op class
    serves every device. ``needs_input_grad[i]`` tells backward whether input i
    wants a gradient (skip the work when it does not).
    """

    def __init__(self, backend: Backend, needs_input_grad: tuple[bool, ...]):
        self.backend = backend
        self.xp = backend.xp
        self.kernels = backend.kernels
        self.needs_input_grad = needs_input_grad
        self._saved: tuple | None = ()

    def save_for_backward(self, *arrays) -> None:
        self._saved = arrays

    @property
    def saved_arrays(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time: its saved arrays were freed by the "
                "first backward(). Call backward(retain_graph=True) the first time if you need a second one."
            )
        return self._saved

    def free(self) -> None:
        self._saved = None


class Node:
    """A recorded application of a Function: its class, context and input tensors."""

    __slots__ = ("function", "ctx", "inputs")

    def __init__(self, function: type[Function], ctx: Context, inputs: tuple):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the forward arguments; Tensors among them are the graph's parents

    @property
    def name(self) -> str:
        return self.function.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name}>"


class Function:
    """Base class of differentiable ops; see the module docstring."""

    @staticmethod
    def forward(ctx: Context, *args: Any):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any):
        """Run forward on unwrapped arrays; record the graph node when a gradient is wanted.

        If forward returns a tuple, its first element is the differentiable
        output and the others come back as tensors without a gradient
        (max-pool's indices, RoIPool's argmax).
        """
        from .tensor import Tensor

        tensors = [a for a in args if isinstance(a, Tensor)]
        if not tensors:
            raise TypeError(f"{cls.__name__}.apply: expected at least one Tensor argument")
        device = tensors[0].device
        for t in tensors[1:]:
            if t.device != device:
                raise ValueError(
                    f"{cls.__name__}: expected all tensors on the same device, got {device!r} and {t.device!r}"
                )
        backend = tensors[0].backend
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = is_grad_enabled() and any(needs)
        ctx = Context(backend, needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        result = cls.forward(ctx, *raw)
        extras = ()
        if isinstance(result, tuple):
            result, *extras = result
        node = Node(cls, ctx, args) if record else None
        out = Tensor._from_op(result, backend, node)
        if not extras:
            return out
        return (out, *(Tensor._from_op(e, backend, None) for e in extras))


def _topological_order(root) -> list:
    """Tensors reachable from ``root`` through recorded nodes, consumers before producers.

    A depth-first post-order lists every tensor after all the tensors it was
    computed from; reversed, each tensor comes before its inputs, so by the time
    the walk reaches a tensor every use of it has contributed to its gradient.
    """
    from .tensor import Tensor

    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor.grad_fn is not None:
            for parent in tensor.grad_fn.inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order[::-1]


def _sole_reference(array) -> bool:
    """True when ``array`` is a writeable NumPy array whose memory nothing but the caller's one variable reaches.

    ``sys.getrefcount`` counts the caller's variable, this function's parameter and
    its own argument: 3. When ``array`` is a view (``array.reshape(...)`` of a fresh
    result), its base must own the memory and be referred to by that view alone
    (again 3: the view, the local ``owner``, the argument; one more when the base is a
    buffer of the CPU kernels' output pool, :class:`kernels.cpu._runtime.OutputPool`,
    whose list keeps it for reuse). An array the user holds,
    a Function saved, or that was returned for two inputs, and any other view of
    the same memory, all count more: the caller copies those. From Python 3.14 on,
    ``sys.getrefcount`` may leave out references the interpreter borrows, so there
    the answer is always False (every leaf gradient is copied).
    """
    if sys.version_info >= (3, 14):
        return False
    if not isinstance(array, np.ndarray) or not array.flags.writeable or sys.getrefcount(array) > 3:
        return False
    owner = array.base
    if owner is None:
        return bool(array.flags.owndata)
    if not (isinstance(owner, np.ndarray) and owner.base is None and owner.flags.owndata):
        return False
    from .kernels.cpu._runtime import outputs

    return sys.getrefcount(owner) <= 3 + outputs.holds(owner)


def backward(root, gradient, retain_graph: bool = False) -> None:
    """Propagate ``gradient`` (d loss / d root, a raw array) to every leaf that requires grad.

    Accumulation rule: a leaf's ``.grad`` is *added to*, never overwritten, so
    gradients of several backward passes sum up until ``zero_grad`` sets them
    back to None; and a tensor used twice in one graph receives the sum of both
    contributions, because its pending gradient is summed over its consumers.

    A leaf's first gradient is stored as a copy, so that it never shares memory
    with the user's gradient, a saved array or another leaf's gradient; an array
    that the engine alone refers to (typically the fresh output of the leaf's
    consumer's backward) is stored as it is (:func:`_sole_reference`), which saves
    one activation-sized copy per leaf input.
    """
    from .tensor import Tensor

    grads: dict[int, Any] = {id(root): gradient}
    for tensor in _topological_order(root):
        grad = grads.pop(id(tensor), None)
        if grad is None:
            continue
        node = tensor.grad_fn
        if node is None:  # a leaf
            if tensor.requires_grad:
                if tensor.grad is None:
                    owned = grad if _sole_reference(grad) else grad.copy()
                    tensor.grad = Tensor._from_op(owned, tensor.backend, None)
                else:
                    tensor.grad.data = tensor.grad.data + grad
            continue
        input_grads = node.function.backward(node.ctx, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(
                f"{node.function.__name__}.backward returned {len(input_grads)} gradients, "
                f"expected {len(node.inputs)} (one per forward argument, None for non-tensors)"
            )
        if not retain_graph:
            node.ctx.free()
        for parent, g in zip(node.inputs, input_grads):
            if not (isinstance(parent, Tensor) and parent.requires_grad) or g is None:
                continue
            if tuple(g.shape) != parent.shape:
                raise RuntimeError(
                    f"{node.function.__name__}.backward returned a gradient of shape {tuple(g.shape)} "
                    f"for an input of shape {parent.shape}"
                )
            if g.dtype != parent.dtype:
                g = g.astype(parent.dtype)
            if isinstance(g, np.generic):
                g = np.asarray(g)
            key = id(parent)
            grads[key] = g if key not in grads else grads[key] + g
        input_grads = g = None  # no stale reference: a leaf visited next may keep its gradient uncopied


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> bool:
    """Compare backward with central finite differences (float64 inputs).

    For a random non-uniform upstream gradient ``v`` of the output's shape,
    the analytic gradient of ``<fn(inputs), v>`` w.r.t. every input that
    requires grad is compared elementwise with
    ``(<fn(x + eps·e_i), v> − <fn(x − eps·e_i), v>) / (2·eps)``.
    Returns True or raises AssertionError naming the input and the worst element.
    """
    from .tensor import Tensor

    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for finite differences, got {t.dtype}")
        t.grad = None
    out = fn(*inputs)
    if isinstance(out, tuple):
        out = out[0]
    v = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape) * np.where(
        np.random.default_rng(seed + 1).random(out.shape) < 0.5, -1.0, 1.0
    )
    out.backward(Tensor(v))

    def objective() -> float:
        with no_grad():
            y = fn(*inputs)
        y = y[0] if isinstance(y, tuple) else y
        return float(np.sum(y.numpy() * v))

    for index, t in enumerate(checked):
        analytic = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        numeric = np.zeros(t.shape)
        t.data = np.ascontiguousarray(t.data)  # so that ``flat`` is a view we can perturb in place
        flat = t.data.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = objective()
            flat[i] = original - eps
            minus = objective()
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            worst = int(np.argmax(np.abs(analytic - numeric)))
            raise AssertionError(
                f"gradcheck: input {index} (shape {t.shape}): analytic and numeric gradients differ; "
                f"worst at flat index {worst}: analytic {analytic.reshape(-1)[worst]!r}, "
                f"numeric {numeric.reshape(-1)[worst]!r}"
            )
    return True
