"""Arena tab: two anonymous answers from the ticked contestants, a vote, then who was who.

`layout` builds the sections, `handlers` holds what the events call, and this module connects them.
"""

from __future__ import annotations

from playground.context import AppContext
from playground.ui.arena.handlers import ArenaHandlers
from playground.ui.arena.layout import build_ask_section, build_battle_section
from playground.ui.common import GENERATION_EVENT, on_tab_shown

__all__ = ["build_arena_tab"]


def build_arena_tab(ctx: AppContext) -> None:
    handlers = ArenaHandlers(ctx)
    ask = build_ask_section()
    battle = build_battle_section()
    lists = [ask.contestants, ask.test_set]
    on_tab_shown(handlers.on_shown, [ask.contestants], lists)
    ask.refresh.click(handlers.on_shown, [ask.contestants], lists, queue=False)
    ask.draw.click(handlers.draw, ask.test_set, [ask.prompt, ask.drawn], queue=False)
    votes = list(battle.votes.values())
    ask.ask.click(
        handlers.ask,
        [ask.contestants, ask.prompt, ask.drawn, ask.max_new],
        [battle.answer_a, battle.answer_b, battle.battle, battle.status, *votes],
        **GENERATION_EVENT,
    )
    for outcome, button in battle.votes.items():
        button.click(handlers.voter(outcome), battle.battle, [battle.battle, battle.status, *votes])
