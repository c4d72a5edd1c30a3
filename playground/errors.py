"""Errors whose message is written for the person using the app.

Messages name the thing (file, row, model id) and say what to do. An error made from a
`Message` (a catalogue key and its values) reads in English as `str(error)` (logs, CLI, API) and
in the page's language through `in_language`. Anything that is *not* a PlaygroundError is a bug
and is reported as one.
"""

from __future__ import annotations

from typing import Any

from playground.messages import Message


class PlaygroundError(Exception):
    """An expected failure with a message meant for the user, keyed or plain English."""

    def __init__(self, message: str | Message = ""):
        self.keyed = message if isinstance(message, Message) else None
        super().__init__(str(message))

    @property
    def key(self) -> str | None:
        return self.keyed.key if self.keyed else None

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.keyed.values) if self.keyed else {}

    def in_language(self, lang: str) -> str:
        """The message in `lang` when it is keyed; a plain message as it was written."""
        return self.keyed.in_language(lang) if self.keyed else str(self)

    def __reduce__(self) -> Any:
        # Subclasses take other arguments than their message: rebuild from the state instead.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[PlaygroundError], args: tuple, state: dict) -> PlaygroundError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DatasetError(PlaygroundError):
    """A data file that cannot be used: names the file, the row (1-based) and the problem."""

    def __init__(self, file: str, problem: str | Message, row: int | None = None):
        self.file = file
        self.row = row
        self.problem = str(problem)
        if not isinstance(problem, Message):
            where = f"{file}, row {row}" if row is not None else file
            super().__init__(f"{where}: {problem}")
        elif row is None:
            super().__init__(Message("data.in_file", file=file, problem=problem))
        else:
            super().__init__(Message("data.in_row", file=file, row=row, problem=problem))


class ModelLoadError(PlaygroundError):
    """A model that cannot be loaded (unknown id, offline, no weights, out of memory)."""


class Cancelled(PlaygroundError):
    """Work stopped because the user asked for it."""

    def __init__(self, message: str | Message | None = None):
        super().__init__(Message("cancelled") if message is None else message)
