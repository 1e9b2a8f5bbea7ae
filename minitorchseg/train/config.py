"""The settings of a training run, in one place: defaults, checks, the optimiser and the learning-rate schedule.

:class:`TrainConfig` is read by :func:`minitorchseg.train.train` (its keyword
defaults), by the command line (``minitorchseg train``'s defaults) and written
into every checkpoint (``checkpoint["config"]``), so the three cannot disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from minitorchseg import optim
from minitorchseg.checks import check_choice, check_positive_int, check_size_pair
from minitorchseg.optim.lr_scheduler import polynomial_lr

__all__ = ["TrainConfig", "OPTIMIZERS", "LR_SCHEDULES", "POLY_POWER", "IMAGENET_MEAN", "IMAGENET_STD",
           "make_optimizer", "scheduled_lr"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "poly")
POLY_POWER = 0.9


@dataclass
class TrainConfig:
    """Training settings and their defaults.

    ``crop``/``resize``: ``(h, w)`` or None; ``lr_schedule``: ``constant``, or
    ``poly`` (epoch ``e`` from 0 uses ``lr (1 − e / epochs)^0.9``); ``optimizer``:
    ``adam`` (``momentum`` unused) or ``sgd``.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    crop: tuple[int, int] | None = None
    resize: tuple[int, int] | None = None
    flip: bool = True
    seed: int = 0

    def check(self, owner: str = "train") -> TrainConfig:
        """Raise ValueError naming the first setting out of range; return self."""
        check_positive_int(owner, "epochs", self.epochs)
        check_positive_int(owner, "batch_size", self.batch_size)
        check_choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(owner, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("crop", "resize"):
            if getattr(self, name) is not None:
                check_size_pair(owner, name, getattr(self, name))
        return self

    def as_dict(self) -> dict:
        """Plain JSON-able values (tuples as lists), as recorded in a checkpoint."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """``adam`` → Adam(lr, weight_decay); ``sgd`` → SGD(lr, momentum, weight_decay)."""
    check_choice("make_optimizer", "name", name, OPTIMIZERS)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def scheduled_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (from 0): ``lr``, or for ``poly`` :func:`polynomial_lr` with power 0.9."""
    if schedule == "poly":
        return polynomial_lr(float(lr), epoch, epochs, POLY_POWER)
    return float(lr)
