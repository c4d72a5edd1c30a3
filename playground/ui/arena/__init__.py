"""Arena tab: two anonymous answers from the ticked contestants, a vote, then who was who; and the
same contestants scored on a test set by a metric.

`layout` builds the sections, `handlers` holds what the events call, and this module connects them.
"""

from __future__ import annotations

import gradio as gr

from playground.context import AppContext
from playground.ui.arena import handlers as h
from playground.ui.arena.layout import (
    AskSection,
    ScoreSection,
    build_ask_section,
    build_battle_section,
    build_score_section,
)
from playground.ui.common import GENERATION_EVENT, on_tab_shown
from playground.ui.session import on_page_load
from playground.ui.session_stop import session_runs_state

__all__ = ["build_arena_tab"]


def build_arena_tab(ctx: AppContext) -> None:
    handlers = h.ArenaHandlers(ctx)
    ask = build_ask_section()
    battle = build_battle_section()
    score = build_score_section()
    ask_runs, score_runs = session_runs_state(), session_runs_state()
    lists = [ask.contestants, ask.test_set.example]
    on_tab_shown(handlers.on_shown, lists, lists)
    ask.refresh.click(handlers.on_shown, lists, lists, queue=False)
    ask.draw.click(handlers.draw, ask.test_set.inputs, [ask.prompt, ask.drawn])
    votes = list(battle.votes.values())
    ask.ask.click(
        handlers.ask,
        [ask.contestants, ask.prompt, ask.drawn, ask.max_new, ask_runs],
        [battle.answer_a, battle.answer_b, battle.battle, battle.status, *votes],
        **GENERATION_EVENT,
    )
    ask.stop.click(h.on_stop, ask_runs, None, queue=False)
    for outcome, button in battle.votes.items():
        button.click(handlers.voter(outcome), battle.battle, [battle.battle, battle.status, *votes])
    _wire_score(handlers, ask, score, score_runs)


def _wire_score(handlers: h.ArenaHandlers, ask: AskSection, score: ScoreSection, runs: gr.State) -> None:
    score.start.click(
        handlers.score,
        [ask.contestants, *ask.test_set.inputs, score.metric, score.limit, ask.max_new, runs],
        [score.status, score.scores],
        concurrency_id="model",
        concurrency_limit=1,
    )
    score.cancel.click(h.on_cancel, runs, score.status, queue=False)
    on_page_load(h.empty_scores, None, score.scores)
