"""Numbers that arrive from a page or the HTTP API: checked to be real, finite and in range."""

from __future__ import annotations

import math
from typing import Any

from playground.errors import PlaygroundError


def bounded(value: Any, name: str, low: float, high: float) -> float:
    """`value` as a float in [low, high], or a PlaygroundError naming the setting and its range."""
    if isinstance(value, bool) or value is None:
        raise PlaygroundError(f"{name} must be a number from {low:g} to {high:g}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise PlaygroundError(
            f"{name} must be a number from {low:g} to {high:g}, not {str(value)[:40]!r}."
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise PlaygroundError(f"{name} must be from {low:g} to {high:g} (got {str(value)[:40]}).")
    return number


def bounded_int(value: Any, name: str, low: int, high: int) -> int:
    number = bounded(value, name, low, high)
    return int(number)
