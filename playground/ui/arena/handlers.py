"""What the Arena tab's events call: the contestant list, drawing a prompt, a battle, a vote."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from playground.arena.battles import Battle, start_battle, stream_battle
from playground.arena.contestants import check_contestants, contestants
from playground.context import AppContext
from playground.data import list_examples, load_dataset
from playground.errors import PlaygroundError
from playground.limits import current_limits
from playground.ui.common import user_errors
from playground.ui.i18n import tr
from playground.ui.session import owner_of


def _votes_enabled(on: bool, n: int = 4) -> list[Any]:
    return [gr.update(interactive=on)] * n


class ArenaHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def on_shown(self, picked: list[str] | None) -> tuple[Any, Any]:
        offered = [c.label for c in contestants(self.ctx.models)]
        kept = [p for p in picked or [] if p in offered]
        names = [p.name for p in list_examples()]
        return gr.update(choices=offered, value=kept), gr.update(choices=names)

    @user_errors
    def draw(self, test_set: str | None) -> tuple[str, tuple[str, str]]:
        files = {p.name: p for p in list_examples()}
        if test_set not in files:
            raise PlaygroundError("Pick one of the listed test sets first.")
        example = random.choice(load_dataset(files[test_set]).examples)
        prompt = example.instruction + (f"\n\n{example.input}" if example.input else "")
        return prompt, (test_set, prompt.strip())

    @user_errors
    def ask(
        self,
        picked: list[str],
        prompt: str,
        drawn: tuple[str, str] | None,
        max_new: float,
        request: gr.Request,
    ) -> Iterator[list[Any]]:
        owner = owner_of(self.ctx, request)
        current_limits().check_new_tokens(int(max_new))
        chosen = check_contestants(self.ctx.models, picked)
        test_set = drawn[0] if drawn and drawn[1] == (prompt or "").strip() else None
        battle = start_battle(chosen, prompt, owner.id, int(max_new), test_set)
        waiting = tr(request, "arena.waiting")
        yield ["", "", battle, waiting, *_votes_enabled(False)]
        for answer_a, answer_b in stream_battle(self.ctx.models, battle):
            yield [answer_a, answer_b, battle, waiting, *_votes_enabled(False)]
        yield [battle.answer_a, battle.answer_b, battle, tr(request, "arena.vote_now"), *_votes_enabled(True)]

    def voter(self, outcome: str) -> Callable[..., list[Any]]:
        @user_errors
        def vote(battle: Battle | None, request: gr.Request) -> list[Any]:
            self.ctx.votes.record(battle, owner_of(self.ctx, request), outcome)
            assert battle is not None  # record refuses a missing battle
            revealed = tr(
                request,
                "arena.revealed",
                outcome=tr(request, f"arena.outcome.{outcome}"),
                a=battle.a.label,
                b=battle.b.label,
            )
            return [battle, revealed, *_votes_enabled(False)]

        vote.__name__ = f"vote_{outcome}"
        return vote
