"""Failed logins slow down: per user name and per address, with a delay that doubles.

The first few failures are free (typos happen); after that each failure locks the name (and
the address it came from) for twice as long as the last one, up to a cap. A success clears the
user's count, not the address's: one good account must not reset an address that guesses others.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoginThrottle:
    free_failures: int = 3
    base_delay_s: float = 2.0
    max_delay_s: float = 900.0
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (count, locked until)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_s(self, *keys: str) -> float:
        """Seconds until a login for these keys is accepted again (0 = now)."""
        now = self.clock()
        with self._lock:
            return max([0.0] + [self._failures.get(k, (0, 0.0))[1] - now for k in keys])

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_entries:
                self._forget_expired(now)
            for key in keys:
                count = self._failures.get(key, (0, 0.0))[0] + 1
                over = count - self.free_failures
                locked = now + min(self.max_delay_s, self.base_delay_s * 2 ** (over - 1)) if over > 0 else 0.0
                self._failures[key] = (count, locked)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _forget_expired(self, now: float) -> None:
        for key, (_, until) in list(self._failures.items()):
            if until + self.max_delay_s < now:
                del self._failures[key]
        while len(self._failures) >= self.max_entries:
            self._failures.pop(next(iter(self._failures)))


def lockout_message(wait_s: float) -> str:
    return f"Too many failed logins. Try again in {math.ceil(wait_s)} s."
