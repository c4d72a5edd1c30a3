"""One model resident at a time, shared by every tab.

A single lock guards both loading and use: a request that wants the model waits while a
load is in progress, and a load waits for a running generation to finish, so nothing ever
runs on a half-loaded or freed model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from playground.errors import ModelLoadError, PlaygroundError
from playground.models.adapters import using_adapter
from playground.models.loader import LoadedModel, LoadOptions, Progress, check_loadable, free, load_model


class ModelManager:
    def __init__(self) -> None:
        # A plain Lock, not an RLock: Gradio may resume a streaming generator on another worker
        # thread, and the thread that releases the lock must not have to be the one that took it.
        self._lock = threading.Lock()
        self._current: LoadedModel | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def load(
        self, name: str, options: LoadOptions | None = None, progress: Progress | None = None
    ) -> LoadedModel:
        options = options or LoadOptions()
        with self._lock:
            cur = self._current
            if cur is not None and name.strip() in (cur.name, cur.source) and cur.options == options:
                return cur
            # Refuse a bad name before anything is freed: a typo must not cost the current model.
            check_loadable(name, options)
            # Free first: two 7B models side by side would not fit where one does.
            self._current = None
            free(cur)
            try:
                self._current = load_model(name, options, progress)
            except Exception as exc:
                if cur is None:
                    raise
                self._current = load_model(cur.requested or cur.source, cur.options)
                raise ModelLoadError(f"{exc} The previous model, {cur.name}, was loaded again.") from exc
            return self._current

    def unload(self) -> None:
        with self._lock:
            cur, self._current = self._current, None
            free(cur)

    @contextmanager
    def use(self, adapter: str | None = None) -> Iterator[LoadedModel]:
        """The resident model, held so that no load can swap it out meanwhile.

        It runs as the base model unless `adapter` names an attached one: an adapter picked
        for chat must not leak into comparisons or evaluations of "the model".
        """
        with self._lock:
            if self._current is None:
                raise PlaygroundError("No model is loaded. Pick one at the top of the page and press Load.")
            with using_adapter(self._current, adapter):
                yield self._current
