"""Optimizers with torch's update rules, written on raw arrays under no_grad.

Each optimizer keeps ``param_groups`` (a list of dicts with ``params`` and the
hyper-parameters, so a scheduler can change ``lr``) and a per-parameter
``state`` dict; ``state_dict()``/``load_state_dict()`` save and restore both
(parameters are referred to by their index, as in torch).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..nn.module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    def __init__(self, params: Iterable, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Parameter) and not getattr(p, "requires_grad", False):
                    raise TypeError(
                        f"optimizer: expected Parameters (or tensors requiring grad), got {type(p).__name__}"
                    )
            self.param_groups.append(group)
        self.state: dict[int, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, self.state.setdefault(id(p), {})

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """``{'state': {index: {name: array}}, 'param_groups': [{..., 'params': [index, ...]}]}``."""
        index, groups, state = 0, [], {}
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                if id(p) in self.state:
                    state[index] = {k: (np.array(p.backend.to_numpy(v)) if hasattr(v, "shape") else v)
                                    for k, v in self.state[id(p)].items()}
                ids.append(index)
                index += 1
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)
        ):
            raise ValueError("optimizer load_state_dict: the saved parameter groups do not match this optimizer's")
        params = [p for group in self.param_groups for p in group["params"]]
        self.state = {}
        for key, values in state_dict["state"].items():
            p = params[int(key)]
            self.state[id(p)] = {k: (p.backend.asarray(v) if isinstance(v, np.ndarray) and v.ndim else
                                     (v.item() if isinstance(v, np.ndarray) else v)) for k, v in values.items()}
        for own, saved in zip(self.param_groups, groups):
            own.update({k: v for k, v in saved.items() if k != "params"})


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay (torch's rule).

        g ← ∇p + weight_decay·p
        b ← g (first step), else momentum·b + (1 − dampening)·g
        g ← g + momentum·b if nesterov else b          (when momentum ≠ 0)
        p ← p − lr·g
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be ≥ 0, got {lr}, {momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        for group, p, state in self._params_with_grad():
            g = p.grad.data
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p.data
            if group["momentum"]:
                if "momentum_buffer" not in state:
                    buf = g.copy()
                else:
                    buf = group["momentum"] * state["momentum_buffer"] + (1 - group["dampening"]) * g
                state["momentum_buffer"] = buf
                g = g + group["momentum"] * buf if group["nesterov"] else buf
            p.data -= (group["lr"] * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), torch's form; ``weight_decay`` adds L2 to the gradient.

        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
        p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + eps)
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: invalid lr={lr}, betas={betas}, eps={eps} or "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self) -> None:
        for group, p, state in self._params_with_grad():
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = p.backend.xp.zeros_like(p.data)
                state["exp_avg_sq"] = p.backend.xp.zeros_like(p.data)
            state["step"] += 1
            # one fused pass per parameter: kernels/{cpu,cuda}/adam.py, the formula above in torch's order
            p.backend.kernels.adam_step(p.data, p.grad.data, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                        lr, beta1, beta2, eps, wd, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): p ← p·(1 − lr·wd) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
