"""Who may run the resident model's weights right now.

Generation runs in the engine's batch, one step at a time, each step holding the model's access
lock. Work that runs the model directly or changes it (perplexity, attaching adapters, switching
the active adapter) takes the same lock for its whole duration with `exclusive_model`, so it never
interleaves with a batch step and never sees another caller's adapter state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_CREATE = threading.Lock()


class ModelAccess:
    """A re-entrant lock that knows its owner, so that a caller cannot wait on itself."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> ModelAccess:
        self._lock.acquire()
        self._owner = threading.get_ident()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
        self._lock.release()

    def held_here(self) -> bool:
        return self._owner == threading.get_ident()


def model_access(loaded: Any) -> ModelAccess:
    """The access lock of one loaded model (created on first use, kept on the object)."""
    access = loaded.__dict__.get("_access")
    if access is None:
        with _CREATE:
            access = loaded.__dict__.setdefault("_access", ModelAccess())
    return access


@contextmanager
def exclusive_model(loaded: Any, adapter: str | None = None) -> Iterator[Any]:
    """Run the model directly, with `adapter` active (None: the base model), no batch step meanwhile.

    Nothing inside may wait for the generation engine: its steps wait for this section.
    """
    from playground.models.adapters import using_adapter

    with model_access(loaded), using_adapter(loaded, adapter):
        yield loaded
