"""Stop for one browser session: a gr.State holding the session's running work.

Each run takes a fresh threading.Event from the session's `SessionRuns` for as long as it runs;
the Stop button and closing the browser tab set every event of that session, and no other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr


class SessionRuns:
    """The stop events of one browser session's running work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[threading.Event] = set()

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionRuns:
        # gradio deep-copies a State's first value for each session: each gets runs of its own.
        return SessionRuns()

    @contextmanager
    def run(self) -> Iterator[threading.Event]:
        """An event for one run, set by `stop_all` while the run lasts."""
        event = threading.Event()
        with self._lock:
            self._running.add(event)
        try:
            yield event
        finally:
            with self._lock:
                self._running.discard(event)

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def stop_all(self) -> None:
        with self._lock:
            events = list(self._running)
        for event in events:
            event.set()


def stop_all(runs: SessionRuns | None) -> None:
    """The Stop button's handler: `runs` is the session's State."""
    if runs is not None:
        runs.stop_all()


def session_runs_state() -> gr.State:
    """A State with the session's SessionRuns, stopped when its browser tab closes.

    Call while the app's Blocks are being built; pass the State to a run's handler as an input.
    """
    from gradio.context import Context

    root = Context.root_block
    if root is None:
        raise RuntimeError("session_runs_state must be called while the app's Blocks are being built")
    state = gr.State(SessionRuns, delete_callback=stop_all)

    def on_unload(request: gr.Request) -> None:
        # gradio calls unload handlers without inputs and keeps a closed session's State for an
        # hour, so the session's value is looked up where gradio holds it.
        session = root.state_holder.session_data.get(getattr(request, "session_hash", None) or "")
        stop_all(session.state_data.get(state._id) if session is not None else None)

    root.unload(on_unload)
    return state
