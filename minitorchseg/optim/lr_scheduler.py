"""Learning-rate schedules with torch's recursive ("chainable") update, so values match torch's bit for bit.

Call ``scheduler.step()`` once per epoch, after ``optimizer.step()``.
"""

from __future__ import annotations

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "PolynomialLR", "polynomial_lr"]


def polynomial_lr(base_lr: float, t: int, total_iters: int, power: float) -> float:
    """The "poly" rule in closed form: ``base_lr·(1 − min(t, T)/T)^power`` with ``T = total_iters``.

    :class:`PolynomialLR` reaches the same values by torch's recursive update (equal up to rounding);
    the training loop calls this directly for epoch ``t``, so a resumed run needs no scheduler state.
    """
    return float(base_lr) * (1.0 - min(t, total_iters) / total_iters) ** power


class LRScheduler:
    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr ← lr·gamma every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be ≥ 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class PolynomialLR(LRScheduler):
    """lr = base_lr·(1 − t/total_iters)^power, decayed to 0 at ``total_iters`` (the FCN/DeepLab "poly" rule).

    Applied recursively as torch does: lr_t = lr_{t−1}·((1 − t/T) / (1 − (t−1)/T))^power.
    """

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0):
        if total_iters < 1:
            raise ValueError(f"PolynomialLR: total_iters must be ≥ 1, got {total_iters}")
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch > self.total_iters:
            return lrs
        factor = ((1.0 - self.last_epoch / self.total_iters) /
                  (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [lr * factor for lr in lrs]
