"""Errors whose message is written for the person using the app.

The UI shows `str(error)` as is, so messages name the thing (file, row, model id) and say
what to do. Anything that is *not* a PlaygroundError is a bug and is reported as one.
"""

from __future__ import annotations


class PlaygroundError(Exception):
    """An expected failure with a message meant for the user."""


class DatasetError(PlaygroundError):
    """A data file that cannot be used: names the file, the row (1-based) and the problem."""

    def __init__(self, file: str, problem: str, row: int | None = None):
        self.file = file
        self.row = row
        self.problem = problem
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {problem}")


class ModelLoadError(PlaygroundError):
    """A model that cannot be loaded (unknown id, offline, no weights, out of memory)."""


class Cancelled(PlaygroundError):
    """Work stopped because the user asked for it."""

    def __init__(self, message: str = "Cancelled."):
        super().__init__(message)
