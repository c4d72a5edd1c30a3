"""The per-session Stop / Cancel flag kept in a gr.State."""

from __future__ import annotations

import copy

import gradio as gr

from playground.ui.common import SessionStop, session_stop_state


def test_each_session_gets_its_own_stopper_and_stop_reaches_only_the_latest_run():
    with gr.Blocks():
        state = session_stop_state()
    # gradio hands each session a deep copy of the State's value.
    alice, bob = copy.deepcopy(state.value), copy.deepcopy(state.value)
    assert isinstance(alice, SessionStop) and alice is not bob

    older = alice.start()
    newer = alice.start()
    bob_run = bob.start()
    older.set()  # a run that ends sets its own flag on the way out
    assert not newer.is_set()
    alice.stop()
    assert newer.is_set() and not bob_run.is_set()
    assert not alice.start().is_set()  # the next run starts afresh
