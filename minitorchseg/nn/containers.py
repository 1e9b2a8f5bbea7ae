"""Containers: Sequential and ModuleList (children named "0", "1", ... as in torch)."""

from __future__ import annotations

from typing import Iterable, Iterator

from .conv import Conv2d
from .layers import BatchNorm2d, ReLU
from .module import Module

__all__ = ["Sequential", "ModuleList"]


class Sequential(Module):
    """Calls its children in order; ``Sequential(a, b)(x) == b(a(x))``.

    A ``BatchNorm2d`` followed by a ``ReLU`` runs as one fused call
    (:meth:`BatchNorm2d.forward_relu`): the same values and gradients, bit for bit, one
    pass over the activations fewer each way (as ``torch.ao.nn.intrinsic.BNReLU2d``); so does
    a ``Conv2d`` followed by a ``ReLU`` (:meth:`Conv2d.forward_relu`, one pass fewer in the
    forward; ``ConvReLU2d``).
    The children, their names and the state dict are unchanged. A child whose ``forward``
    was replaced on the instance (a recording wrapper, as :func:`minitorchseg.models.summary`
    installs) is called as it is, unfused.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def forward(self, input):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and _fusable(modules[i], modules[i + 1]):
                input = modules[i].forward_relu(input)
                i += 2
            else:
                input = modules[i](input)
                i += 1
        return input


def _fusable(first: Module, second: Module) -> bool:
    """Whether ``second(first(x))`` may run as ``first.forward_relu(x)``: a plain BatchNorm2d or Conv2d, then a
    plain ReLU."""
    return (type(first) in (BatchNorm2d, Conv2d) and type(second) is ReLU
            and "forward" not in vars(first) and "forward" not in vars(second))


class ModuleList(Module):
    """A list of modules, registered so their parameters are found."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
