"""``Module`` and ``Parameter``: layers as trees of named parameters and buffers.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it
under that name (``self.conv1 = Conv2d(...)``), exactly as in torch, so
``named_parameters()`` and ``state_dict()`` produce torch's dotted names
(``"encoder.0.weight"``) and weights can be exchanged with a torch model of the
same structure through ``{name: ndarray}``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from ..backend import get_backend, normalize_device
from ..tensor import Tensor

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A leaf tensor that a Module registers as a learnable parameter (requires_grad by default)."""

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            super().__init__(data.data, device=data.device)
        else:
            super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model.

    ``_ignored_state_keys`` names entries a module accepts in a state dict
    without holding them (they are neither loaded nor reported as unexpected),
    e.g. ``FrozenBatchNorm2d`` drops BatchNorm2d's ``num_batches_tracked``.
    """

    _ignored_state_keys: tuple[str, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() was called")
        is_plain_tensor = isinstance(value, Tensor) and not isinstance(value, Parameter)
        if name in self._buffers and (value is None or is_plain_tensor):
            self._buffers[name] = value
            return
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, (Parameter, Module)):  # a plain attribute of that name (e.g. None) would shadow it
            self.__dict__.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """A tensor that belongs to the state (saved, moved by ``to``) but is not learned."""
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for module_prefix, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_prefix}.{name}" if module_prefix else name), buf

    def buffers(self) -> Iterator[Tensor]:
        for _, buf in self.named_buffers():
            yield buf

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients (they add up across backward calls until this)."""
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter and buffer in place (the Parameter objects stay the same).

        ``to('cuda')``, ``to(np.float64)`` (floating-point tensors only) or both.
        """
        if device is not None and not isinstance(device, str):
            device, dtype = None, device
        backend = get_backend(normalize_device(device)) if device is not None else None
        for tensor in list(self.parameters()) + list(self.buffers()):
            data = tensor.data
            if dtype is not None and data.dtype.kind == "f":
                data = data.astype(np.dtype(dtype))
            if backend is not None and backend is not tensor.backend:
                data = backend.asarray(tensor.backend.to_numpy(data))
                tensor.backend = backend
            tensor.data = data
            if tensor.grad is not None:
                tensor.grad = None
        return self

    def double(self) -> Module:
        """``to(np.float64)``: every floating-point parameter and buffer (running statistics too) becomes float64."""
        return self.to(np.float64)

    def float(self) -> Module:
        """``to(np.float32)``: every floating-point parameter and buffer becomes float32."""
        return self.to(np.float32)

    # ------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """``{dotted name: NumPy array copy}`` of parameters then buffers, torch's names and layouts."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for module_prefix, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for name, tensor in table.items():
                    if tensor is not None:
                        key = f"{module_prefix}.{name}" if module_prefix else name
                        state[key] = np.array(tensor.numpy(), copy=True)
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy arrays (NumPy arrays, Tensors, or anything ``np.asarray`` takes) into this module.

        Every key must exist and every shape must match when ``strict``; the
        values keep this module's dtypes and device. Nothing is copied unless
        every check passes, and the error lists every problem at once, as torch's
        ``Module.load_state_dict`` does (``torch/nn/modules/module.py``):

        * ``KeyError`` when ``strict`` and a key is missing or unexpected: every
          missing key, every unexpected key and every wrongly shaped key;
        * ``ValueError`` (whatever ``strict``) when only shapes are wrong: every
          wrongly shaped key with both shapes.

        Returns ``(missing_keys, unexpected_keys)``, torch's named tuple.
        """
        own: dict[str, Tensor] = {}
        for module_prefix, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for name, tensor in table.items():
                    if tensor is not None:
                        own[f"{module_prefix}.{name}" if module_prefix else name] = tensor
        ignored = {f"{p}.{k}" if p else k for p, m in self.named_modules() for k in m._ignored_state_keys}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own and k not in ignored]
        arrays = {}
        shape_errors = []
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != tensor.shape:
                shape_errors.append(
                    f"{key!r} has shape {value.shape} in the state dict, but the module expects {tensor.shape}"
                )
            arrays[key] = value
        shapes = f"wrong shapes ({len(shape_errors)}): {'; '.join(shape_errors) if shape_errors else 'none'}"
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing} ({len(missing)}), "
                f"unexpected keys {unexpected} ({len(unexpected)}), {shapes}"
            )
        if shape_errors:
            raise ValueError(f"load_state_dict for {type(self).__name__}: {shapes}")
        for key, value in arrays.items():  # every check passed: now copy
            own[key].copy_(value.astype(own[key].dtype))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
