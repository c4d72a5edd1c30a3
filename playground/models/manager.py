"""One model resident at a time, shared by every tab.

`use()` holds the model so that no load can swap it out meanwhile; many callers use it at once,
their generations batched by the model's engine. Direct work on the weights (perplexity,
adapters) goes through `exclusive_model` (models/access.py), or `use(adapter)`. A load waits for
every `use()` to end and keeps new ones waiting until it is done, so nothing ever runs on a
half-loaded or freed model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from playground.errors import ModelLoadError, PlaygroundError
from playground.generation.remote import RemoteEngine
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel, LoadOptions, Progress, check_loadable, free, load_model


class SwapLock:
    """Many users or one swapper; a waiting swapper goes before new users.

    Counts, not thread ownership: Gradio may resume a streaming generator on another worker
    thread, and the thread that releases a hold need not be the one that took it.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._swapping = False
        self._swappers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._swapping and not self._swappers_waiting)
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._swappers_waiting += 1
            self._cond.wait_for(lambda: not self._swapping and self._users == 0)
            self._swappers_waiting -= 1
            self._swapping = True
        try:
            yield
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


def _release(loaded: LoadedModel | None) -> None:
    from playground.generation.engine import close_engine

    close_engine(loaded, "The model was unloaded while this request waited; send it again.")
    free(loaded)


class ModelManager:
    def __init__(self, remote: RemoteEngine | None = None) -> None:
        """`remote`: an external engine that generates for every model this manager loads."""
        self._swap = SwapLock()
        self._current: LoadedModel | None = None
        self.remote = remote

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def load(
        self, name: str, options: LoadOptions | None = None, progress: Progress | None = None
    ) -> LoadedModel:
        options = options or LoadOptions()
        with self._swap.exclusive():
            cur = self._current
            if cur is not None and name.strip() in (cur.name, cur.source) and cur.options == options:
                return cur
            # Refuse a bad name before anything is freed: a typo must not cost the current model.
            check_loadable(name, options)
            # Free first: two 7B models side by side would not fit where one does.
            self._current = None
            _release(cur)
            try:
                self._current = self._with_remote(load_model(name, options, progress))
            except Exception as exc:
                if cur is None:
                    raise
                self._current = self._with_remote(load_model(cur.requested or cur.source, cur.options))
                raise ModelLoadError(f"{exc} The previous model, {cur.name}, was loaded again.") from exc
            return self._current

    def _with_remote(self, loaded: LoadedModel) -> LoadedModel:
        if self.remote is not None:
            # stream_generate reads it there (generation/remote.py: remote_engine).
            loaded.__dict__["_remote"] = self.remote
        return loaded

    def unload(self) -> None:
        with self._swap.exclusive():
            cur, self._current = self._current, None
            _release(cur)

    @contextmanager
    def use(self, adapter: str | None = None) -> Iterator[LoadedModel]:
        """The resident model, held so that no load can swap it out meanwhile.

        Without `adapter`, shared: generate through the engine (stream_generate etc., passing an
        adapter name per request) and wrap direct work in `exclusive_model`. With `adapter`, the
        whole block runs the model directly with that adapter active, alone (no generation
        inside: the engine waits for the block).
        """
        with self._swap.shared():
            if self._current is None:
                raise PlaygroundError("No model is loaded. Pick one at the top of the page and press Load.")
            if adapter is None:
                yield self._current
            else:
                with exclusive_model(self._current, adapter):
                    yield self._current
