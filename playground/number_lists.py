"""Lists of numbers typed in one box or option: seeds "0, 1, 2", k values "0 1 3", values "0.1, 0.9"."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from playground.errors import PlaygroundError

Number = TypeVar("Number", int, float)


def list_items(text: str | None) -> list[str]:
    """The items of a list typed with commas, spaces or new lines between them."""
    return [part for part in re.split(r"[,\s]+", str(text or "").strip()) if part]


def parse_number_list(text: str | None, what: str, number: Callable[[str], Number] = int) -> list[Number]:
    """'0, 1 2' -> [0, 1, 2] (`number` float for decimals); blank -> []; else a message naming `what`."""
    try:
        return [number(part) for part in list_items(text)]
    except ValueError:
        kind = "whole numbers" if number is int else "numbers"
        raise PlaygroundError(f"{what} must be {kind} separated by commas, not {text!r}.") from None
