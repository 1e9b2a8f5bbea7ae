"""Argument checks shared by layers, models, training and the command line.

Each raises before any work, naming the owner (``"unet"``, ``"train"``,
``"Conv2d"``), the argument, the value received and what is allowed.
"""

from __future__ import annotations

import numbers

__all__ = ["check_positive_int", "check_int_pair", "check_size_pair", "check_choice"]


def check_positive_int(owner: str, name: str, value, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (bools refused), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = "a positive int" if minimum == 1 else f"an int ≥ {minimum}"
        raise ValueError(f"{owner}: {name} must be {allowed}, got {value!r}")
    return int(value)


def check_int_pair(owner: str, name: str, value, minimum: int) -> tuple[int, int]:
    """``3`` → ``(3, 3)``, ``(2, 3)`` → ``(2, 3)``: ints ≥ ``minimum``; TypeError for another kind, ValueError for a
    value out of range."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value, value)
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError(f"{owner}: {name}: expected an int or a pair of ints, got {value!r}") from None
        if len(items) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            raise TypeError(f"{owner}: {name}: expected an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{owner}: {name}: expected values ≥ {minimum}, got {value!r}")
    return (int(items[0]), int(items[1]))


def check_size_pair(owner: str, name: str, value) -> tuple[int, int]:
    """A ``(height, width)`` of positive ints (a single int means a square)."""
    return check_int_pair(owner, name, value, 1)


def check_choice(owner: str, name: str, value, choices) -> object:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value
