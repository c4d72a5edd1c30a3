"""How many API requests one owner may have running at once; more are refused with 429 at once.

The limit is PLAYGROUND_MAX_MODEL_REQUESTS on a shared playground (as for the page's model
requests), else the engine's own per-owner limit, so a flood from one key never queues ahead of
everyone else's chats.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from playground.api.errors import ApiError
from playground.generation.engine import EngineLimits
from playground.limits import current_limits


def per_owner_limit() -> int:
    return current_limits().model_requests or EngineLimits().per_owner


class RequestGate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    def enter(self, owner_id: str) -> None:
        """Count one more request of `owner_id`, or raise 429 when it has its limit running."""
        limit = per_owner_limit()
        with self._lock:
            n = self._running.get(owner_id, 0)
            if n >= limit:
                raise ApiError(
                    429,
                    f"You already have {n} requests running (the limit is {limit}); wait for one to finish.",
                    "too_many_requests",
                )
            self._running[owner_id] = n + 1

    def leave(self, owner_id: str) -> None:
        with self._lock:
            n = self._running.get(owner_id, 0) - 1
            if n > 0:
                self._running[owner_id] = n
            else:
                self._running.pop(owner_id, None)

    @contextmanager
    def held(self, owner_id: str) -> Iterator[None]:
        self.enter(owner_id)
        try:
            yield
        finally:
            self.leave(owner_id)
