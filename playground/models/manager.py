"""The resident models: several in memory at once, within a memory budget, shared by every tab.

`current` is the model bar's model, what every tab uses unless it names another. Other models
join with `use_model(name)` (Side by side columns, the arena, the API): loaded on first use,
then kept until room is needed, when the least recently used one that nobody is using leaves
(the bar's model last). A model that could never fit is refused before anything leaves.

`use()` / `use_model()` hold a model so that it cannot be unloaded meanwhile; many callers use
one at once, their generations batched by the model's engine. Direct work on the weights
(perplexity, adapters) goes through `exclusive_model` (models/access.py), or `use(adapter)`.
Loads run one at a time; a load that needs room waits for the model it evicts to be left.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from playground.errors import ModelLoadError, PlaygroundError
from playground.generation.remote import RemoteEngine
from playground.messages import Message
from playground.models.access import exclusive_model
from playground.models.loader import (
    LoadedModel,
    LoadOptions,
    Progress,
    check_loadable,
    free,
    load_model,
    load_without_weights,
    planned_footprint,
)
from playground.models.memory import MemoryBudget, gib, measured_bytes

# How long a load waits for a model to be left by its users before it gives up.
EVICTION_WAIT_SECONDS = 120.0


@dataclass
class ResidentModel:
    """One model in memory. `key` names it among the resident ones (its name, plus the precision
    when the same model is resident twice); `bytes` is its measured footprint."""

    key: str
    loaded: LoadedModel
    bytes: int
    users: int = 0
    last_used: int = 0


@dataclass(frozen=True)
class ResidentInfo:
    """What the page shows of a resident model."""

    key: str
    name: str
    device: str
    precision: str
    bytes: int
    users: int
    current: bool

    @property
    def memory(self) -> str:
        return gib(self.bytes)


def _release(loaded: LoadedModel | None) -> None:
    from playground.generation.engine import close_engine

    close_engine(loaded, "The model was unloaded while this request waited; send it again.")
    free(loaded)


def _names(loaded: LoadedModel) -> set[str]:
    return {loaded.name, loaded.source, loaded.requested}


class ModelManager:
    def __init__(self, budget: MemoryBudget | None = None, remote: RemoteEngine | None = None) -> None:
        """`remote`: an external engine that generates for every model this manager loads."""
        self.budget = budget or MemoryBudget.from_env()
        self.remote = remote
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        self._resident: dict[str, ResidentModel] = {}
        self._current_key: str | None = None
        self._clock = itertools.count(1)

    # -- looking ---------------------------------------------------------------------------

    @property
    def current(self) -> LoadedModel | None:
        """The model bar's model (None when none is loaded)."""
        slot = self._resident.get(self._current_key or "")
        return slot.loaded if slot is not None else None

    def resident(self) -> list[ResidentInfo]:
        """The resident models, most recently used first."""
        with self._cond:
            slots = sorted(self._resident.values(), key=lambda r: -r.last_used)
            return [
                ResidentInfo(
                    r.key,
                    r.loaded.name,
                    r.loaded.device,
                    r.loaded.precision,
                    r.bytes,
                    r.users,
                    r.key == self._current_key,
                )
                for r in slots
            ]

    def find(self, name: str) -> LoadedModel | None:
        """The resident model called `name` (its key, name, source or what was typed to load it),
        the most recently used one if several match; None if none is resident."""
        name = (name or "").strip()
        with self._cond:
            if name in self._resident:  # a key names one copy, even where another copy has that name
                return self._resident[name].loaded
            slots = sorted(self._resident.values(), key=lambda r: -r.last_used)
            for r in slots:
                if name == r.key or name in _names(r.loaded):
                    return r.loaded
        return None

    def key_of(self, loaded: LoadedModel) -> str | None:
        """The key of a resident model (None once it has left memory)."""
        with self._cond:
            return next((r.key for r in self._resident.values() if r.loaded is loaded), None)

    def _lookup(self, name: str, options: LoadOptions) -> ResidentModel | None:
        name = name.strip()
        slot = self._resident.get(name)
        # A key names one resident copy; asking for it in another precision asks for another copy.
        if slot is not None and options.precision in ("auto", slot.loaded.options.precision):
            return slot
        for r in self._resident.values():
            if name in _names(r.loaded) and r.loaded.options == options:
                return r
        return None

    # -- loading ---------------------------------------------------------------------------

    def load(
        self, name: str, options: LoadOptions | None = None, progress: Progress | None = None
    ) -> LoadedModel:
        """Make `name` the model bar's model, loading it unless it is resident already."""
        slot = self._ensure(name, options or LoadOptions(), progress, hold=False)
        with self._cond:
            self._current_key = slot.key
        return slot.loaded

    def _ensure(
        self, name: str, options: LoadOptions, progress: Progress | None, hold: bool
    ) -> ResidentModel:
        with self._load_lock:
            with self._cond:
                slot = self._lookup(name, options)
                if slot is not None:
                    self._take(slot, hold)
                    return slot
            # Refuse a bad name, or a model that can never fit, before anything is evicted.
            check_loadable(name, options, need_weights=self.remote is None)
            device, estimate = self._planned(name, options)
            evicted = self._make_room(device, estimate or 0, progress)
            try:
                loaded = self._load(name, options, progress)
            except Exception as exc:
                self._reload_evicted_current(evicted, exc)
                raise
            size = measured_bytes(loaded.model)
            try:
                self._make_room(loaded.device, size, progress)
            except PlaygroundError:
                _release(loaded)
                raise
            with self._cond:
                slot = ResidentModel(self._new_key(loaded), loaded, size)
                self._resident[slot.key] = slot
                if self._current_key is None:
                    self._current_key = slot.key
                self._take(slot, hold)
                return slot

    def _planned(self, name: str, options: LoadOptions) -> tuple[str, int | None]:
        if self.remote is not None:
            return "external", 0  # tokenizer and config only: nothing to make room for
        return planned_footprint(name, options)

    def _load(self, name: str, options: LoadOptions, progress: Progress | None = None) -> LoadedModel:
        """The weights, or with an external engine only the tokenizer and config (the engine
        generates; stream_generate finds it through generation/remote.py: remote_engine)."""
        if self.remote is None:
            return load_model(name, options, progress)
        loaded = load_without_weights(name, self.remote.url, options, progress)
        loaded.__dict__["_remote"] = self.remote
        return loaded

    def _take(self, slot: ResidentModel, hold: bool) -> None:
        slot.last_used = next(self._clock)
        if hold:
            slot.users += 1

    def _new_key(self, loaded: LoadedModel) -> str:
        if loaded.name not in self._resident:
            return loaded.name
        key = f"{loaded.name} ({loaded.options.precision})"
        for n in itertools.count(2):
            if key not in self._resident:
                return key
            key = f"{loaded.name} ({loaded.options.precision}, {n})"
        raise AssertionError("unreachable")

    def _make_room(self, device: str, need: int, progress: Progress | None) -> LoadedModel | None:
        """Evict idle models, least recently used first (the bar's model last), until a model of
        `need` bytes fits on `device` beside the rest; returns the bar's model if it was evicted."""
        evicted: LoadedModel | None = None
        deadline = time.monotonic() + EVICTION_WAIT_SECONDS
        with self._cond:
            while True:
                here = [r for r in self._resident.values() if r.loaded.device == device]
                used = sum(r.bytes for r in here)
                capacity = self.budget.capacity(device, used)
                if need > capacity:
                    raise ModelLoadError(
                        f"This model needs about {gib(need)} on {device}, more than the "
                        f"{gib(max(capacity, 0))} that models may take there even with every other "
                        "model unloaded; nothing was unloaded. Choose a smaller model or precision "
                        "(4bit/int4 on a GPU)."
                    )
                short_of_bytes = used + need > capacity
                short_of_count = len(self._resident) + 1 > self.budget.max_models
                if not (short_of_bytes or short_of_count):
                    return evicted
                pool = here if short_of_bytes else list(self._resident.values())
                idle = sorted(
                    (r for r in pool if r.users == 0),
                    key=lambda r: (r.key == self._current_key, r.last_used),
                )
                if idle:
                    victim = idle[0]
                    if progress:
                        progress(0.0, f"Unloading {victim.key} (least recently used) to make room...")
                    del self._resident[victim.key]
                    if victim.key == self._current_key:
                        self._current_key = None
                        evicted = victim.loaded
                    _release(victim.loaded)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(timeout=remaining):
                    raise ModelLoadError(
                        "There is no room for another model: every resident model is in use. "
                        "Try again when their answers have finished."
                    )

    def _reload_evicted_current(self, previous: LoadedModel | None, exc: Exception) -> None:
        """A load that failed after evicting the bar's model brings that model back."""
        if previous is None:
            return
        back = self._load(previous.requested or previous.source, previous.options)
        with self._cond:
            slot = ResidentModel(self._new_key(back), back, measured_bytes(back.model))
            self._resident[slot.key] = slot
            self._current_key = slot.key
        raise ModelLoadError(f"{exc} The previous model, {previous.name}, was loaded again.") from exc

    def unload(self, key: str | None = None) -> None:
        """Unload the model `key` (default: the bar's), once nobody uses it."""
        with self._cond:
            key = key or self._current_key
            slot = self._resident.get(key or "")
            if slot is None:
                return
            self._cond.wait_for(lambda: slot.users == 0)
            self._resident.pop(slot.key, None)
            if self._current_key == slot.key:
                self._current_key = None
            _release(slot.loaded)

    # -- using -----------------------------------------------------------------------------

    @contextmanager
    def _holding(self, slot: ResidentModel) -> Iterator[LoadedModel]:
        try:
            yield slot.loaded
        finally:
            with self._cond:
                slot.users -= 1
                self._cond.notify_all()

    @contextmanager
    def use(self, adapter: str | None = None) -> Iterator[LoadedModel]:
        """The bar's model, held so that no load can evict it meanwhile.

        Without `adapter`, shared: generate through the engine (stream_generate etc., passing an
        adapter name per request) and wrap direct work in `exclusive_model`. With `adapter`, the
        whole block runs the model directly with that adapter active, alone (no generation
        inside: the engine waits for the block).
        """
        with self._cond:
            slot = self._resident.get(self._current_key or "")
            if slot is None:
                raise PlaygroundError(Message("models.none_loaded"))
            self._take(slot, hold=True)
        with self._holding(slot) as loaded:
            if adapter is None:
                yield loaded
            else:
                with exclusive_model(loaded, adapter):
                    yield loaded

    @contextmanager
    def use_model(
        self,
        name: str,
        options: LoadOptions | None = None,
        progress: Progress | None = None,
        may_load: bool = True,
    ) -> Iterator[LoadedModel]:
        """The resident model `name` (a key from `resident()`, or a name to load), held meanwhile.

        Not resident: loaded when `may_load` (an admin's request), else a clear error."""
        options = options or LoadOptions()
        if not may_load:
            with self._cond:
                slot = self._lookup(name, options) or self._by_find(name)
                if slot is None:
                    raise PlaygroundError(
                        f"{name} is not loaded, and loading models is for admins here. Pick one of "
                        "the loaded models."
                    )
                self._take(slot, hold=True)
        else:
            slot = self._ensure(name, options, progress, hold=True)
        with self._holding(slot) as loaded:
            yield loaded

    def _by_find(self, name: str) -> ResidentModel | None:
        loaded = self.find(name)
        return next((r for r in self._resident.values() if r.loaded is loaded), None)
