"""One browser session's chat state: whether an answer is on its way, messages sent meanwhile, Stop.

A message sent while an answer streams is queued here and answered next, in order, instead of
being overwritten by the stream. No gradio here, so the rules are tested without a browser.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class ChatSession:
    busy: bool = False
    pending: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        """Start a turn; False when one is already under way."""
        with self.lock:
            if self.busy:
                return False
            self.busy = True
            return True

    def send(self, text: str) -> bool:
        """True: the caller shows the message and a turn starts; False: it was queued."""
        with self.lock:
            if self.busy:
                self.pending.append(text)
                return False
            self.busy = True
            return True

    def next_messages(self, has_question: bool) -> list[str] | None:
        """Queued messages to add now; None ends the turn (nothing queued and nothing to answer)."""
        with self.lock:
            queued, self.pending = self.pending, []
            if not queued and not has_question:
                self.busy = False
                return None
            self.busy = True
            return queued

    def peek(self) -> list[str]:
        with self.lock:
            return list(self.pending)

    def new_stop(self) -> threading.Event:
        self.stop = threading.Event()
        return self.stop

    def release(self) -> None:
        with self.lock:
            self.busy = False


_sessions: dict[str, ChatSession] = {}
_sessions_lock = threading.Lock()


def session_for(key: str) -> ChatSession:
    with _sessions_lock:
        return _sessions.setdefault(key, ChatSession())


def forget(key: str) -> None:
    """The browser tab closed: stop its answer and drop its state."""
    with _sessions_lock:
        session = _sessions.pop(key, None)
    if session is not None:
        session.stop.set()
