"""Stop strings: where an answer ends when the model runs on into the next turn.

Pure text rules, used by the engine's decode loop and by the paths that stay on generate().
"""

from __future__ import annotations

from collections.abc import Sequence


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in `text`, or None when none occurs."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to (not including) its earliest stop string, and whether there was one."""
    at = find_stop(text, stops)
    return (text, False) if at is None else (text[:at], True)


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters may be the start of a stop string still being written.

    A stream shows text[: len(text) - held_back(...)], so "USE" of a coming "USER:" never flashes.
    """
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


def parse_stop_lines(text: str | None) -> tuple[str, ...]:
    """Stop strings typed one per line; `\\n` in a line stands for a newline."""
    typed = (line for line in (text or "").splitlines() if line.strip())
    return tuple(dict.fromkeys(line.replace("\\n", "\n") for line in typed))
