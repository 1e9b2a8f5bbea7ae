"""``Tensor``: an array (NumPy or CuPy), its device, and its place in the autograd graph.

A tensor made by the user is a *leaf* (``grad_fn is None``); a tensor made by a
differentiable op carries the node that made it in ``grad_fn``. Operators
(``+``, ``*``, ``@``, indexing, ...) call :mod:`minitorchseg.functional`, so
every one of them is an op class with a forward and a backward.

Dtypes: Python floats become float32 and Python ints int64 (as in torch);
NumPy arrays keep their dtype, so float64 data stay float64 (gradient checks
run in float64). ``.dtype`` is a NumPy dtype, ``minitorchseg.float32`` is
``numpy.float32``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import autograd
from .backend import Backend, get_backend, normalize_device

__all__ = ["Tensor", "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand"]


def _as_array(data: Any, dtype, backend: Backend):
    """Convert ``data`` to an array of ``backend`` with torch's default dtypes."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return backend.asarray(data, dtype=np.dtype(dtype))
    if isinstance(data, (np.ndarray, np.generic)) or hasattr(data, "__cuda_array_interface__"):
        return backend.asarray(data)
    array = np.asarray(data)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind not in "b":
        raise TypeError(f"tensor: expected numbers, got data of dtype {array.dtype}")
    return backend.asarray(array)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: array-like, a NumPy/CuPy array, or a Tensor (its data are shared).
        dtype: optional NumPy dtype; default as described in the module docstring.
        device: ``'cpu'`` (default) or ``'cuda'``.
        requires_grad: record operations on this tensor and fill ``.grad`` in backward.
    """

    __array_priority__ = 1000  # so that ``ndarray + Tensor`` calls Tensor.__radd__

    def __init__(self, data: Any, dtype=None, device="cpu", requires_grad: bool = False):
        self.backend = get_backend(device)
        self.data = _as_array(data, dtype, self.backend)
        self.grad: Tensor | None = None
        self.grad_fn: autograd.Node | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, array, backend: Backend, node) -> Tensor:
        """Wrap the output array of an op (no copy, no dtype change)."""
        out = cls.__new__(cls)
        out.backend = backend
        out.data = np.asarray(array) if isinstance(array, np.generic) else array  # 0-d results of NumPy ops
        out.grad = None
        out.grad_fn = node
        out.requires_grad = node is not None
        return out

    # ---------------------------------------------------------------- attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return self.backend.name

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating-point tensors can require gradients, got {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach()")
        self.requires_grad = requires_grad
        return self

    # ---------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a copy from a GPU; shared memory on the CPU)."""
        return self.backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): expected a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no grad_fn, requires_grad False)."""
        return Tensor._from_op(self.data, self.backend, None)

    def clone(self) -> Tensor:
        from . import functional as F

        return F.clone(self)

    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on ``device`` and/or of ``dtype``; ``self`` when nothing changes.

        Accepts ``to('cuda')``, ``to(np.float64)`` or ``to(device, dtype)``.
        Differentiable for dtype changes on one device; a device copy is a new leaf.
        """
        if device is not None and not isinstance(device, (str, Backend)):
            device, dtype = None, device
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            from . import functional as F

            out = F.cast(out, np.dtype(dtype))
        if device is not None and normalize_device(device) != self.device:
            backend = get_backend(device)
            out = Tensor._from_op(backend.asarray(out.backend.to_numpy(out.data)), backend, None)
            out.requires_grad = self.requires_grad and self.is_leaf
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · gradient into every leaf's ``.grad``.

        ``gradient`` may be omitted only for a one-element tensor (a loss).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no grad_fn "
                "(was it computed under no_grad(), or from tensors without requires_grad=True?)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicitly created only for scalar outputs, got shape {self.shape}; "
                    "pass gradient= of the same shape"
                )
            grad = self.backend.xp.ones(self.data.shape, dtype=self.dtype)
        else:
            if isinstance(gradient, Tensor) and gradient.device == self.device:
                grad = gradient.data
            else:  # an array, or a tensor on another device: copy it to ours
                grad = self.backend.asarray(gradient.numpy() if isinstance(gradient, Tensor) else gradient)
            if tuple(grad.shape) != self.shape:
                raise ValueError(
                    f"backward(): gradient has shape {tuple(grad.shape)}, expected the tensor's shape {self.shape}"
                )
            grad = grad.astype(self.dtype, copy=False)
        autograd.backward(self, grad, retain_graph=retain_graph)

    def zero_(self) -> Tensor:
        """Set every element to 0 in place (not recorded: for leaves and buffers)."""
        self.data[...] = 0
        return self

    def fill_(self, value) -> Tensor:
        self.data[...] = value
        return self

    def copy_(self, other) -> Tensor:
        """Copy ``other``'s values into this tensor in place (shapes must match)."""
        src = other.data if isinstance(other, Tensor) else self.backend.asarray(other)
        if tuple(src.shape) != self.shape:
            raise ValueError(f"copy_: source has shape {tuple(src.shape)}, expected {self.shape}")
        self.data[...] = self.backend.asarray(src, dtype=self.dtype)
        return self

    def __setitem__(self, index, value) -> None:
        if self.requires_grad:
            raise RuntimeError("in-place assignment to a tensor that requires grad is not supported")
        self.data[index] = value.data if isinstance(value, Tensor) else value

    def __repr__(self) -> str:
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__

    # ---------------------------------------------------------------- operators
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __neg__(self):
        return F.neg(self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __rpow__(self, base):
        return F.pow(base, self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __getitem__(self, index):
        return F.index(self, index)

    # Comparisons are not differentiable: they return boolean tensors.
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_op(op(self.data, other), self.backend, None)

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    # ---------------------------------------------------------------- methods
    def sum(self, dim=None, keepdim=False):
        return F.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return F.mean(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return F.max(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return F.argmax(self, dim, keepdim)

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return F.flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        return F.permute(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)

    def transpose(self, dim0, dim1):
        return F.transpose(self, dim0, dim1)

    @property
    def T(self):
        return F.permute(self, tuple(range(self.ndim))[::-1])

    def unsqueeze(self, dim):
        return F.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def contiguous(self):
        return self

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def sqrt(self):
        return F.sqrt(self)

    def abs(self):
        return F.abs(self)

    def relu(self):
        return F.relu(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def tanh(self):
        return F.tanh(self)

    def softmax(self, dim):
        return F.softmax(self, dim)

    def log_softmax(self, dim):
        return F.log_softmax(self, dim)

    def clamp(self, min=None, max=None):
        return F.clamp(self, min, max)


def tensor(data: Any, dtype=None, device="cpu", requires_grad: bool = False) -> Tensor:
    """A new leaf tensor (torch.tensor); see :class:`Tensor` for the dtype rules."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _shape(size) -> tuple[int, ...]:
    if len(size) == 1 and not isinstance(size[0], int):
        return tuple(size[0])
    return tuple(size)


def zeros(*size, dtype=np.float32, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return Tensor(backend.xp.zeros(_shape(size), dtype=dtype), device=device, requires_grad=requires_grad)


def ones(*size, dtype=np.float32, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return Tensor(backend.xp.ones(_shape(size), dtype=dtype), device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=np.float32, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    data = backend.xp.full(tuple(size), fill_value, dtype=dtype)
    return Tensor(data, device=device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu") -> Tensor:
    data = np.arange(start, end, step) if end is not None else np.arange(start)
    return Tensor(data, dtype=dtype, device=device)


def randn(*size, dtype=np.float32, device="cpu", requires_grad=False) -> Tensor:
    """Standard-normal samples from the global generator (``minitorchseg.manual_seed``)."""
    from .random import default_generator

    data = default_generator().standard_normal(_shape(size)).astype(dtype)
    return Tensor(data, device=device, requires_grad=requires_grad)


def rand(*size, dtype=np.float32, device="cpu", requires_grad=False) -> Tensor:
    """Uniform [0, 1) samples from the global generator."""
    from .random import default_generator

    data = default_generator().random(_shape(size)).astype(dtype)
    return Tensor(data, device=device, requires_grad=requires_grad)


from . import functional as F  # noqa: E402  (functional imports Tensor: import it last)
