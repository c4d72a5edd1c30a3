"""Stop strings: where an answer ends because it produced one of them."""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the earliest stop string (which is cut off too), and whether one was found."""
    ends = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not ends:
        return text, False
    return text[: min(ends)], True
