"""What the Arena tab's events call: the contestant list, drawing a prompt, a battle, a vote, and
scoring a test set automatically."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import pandas as pd

from playground.arena.battles import Battle, start_battle, stream_battle
from playground.arena.contestants import check_contestants, contestants
from playground.arena.pairwise import PairwiseConfig, PairwiseResult, run_pairwise
from playground.arena.test_sets import draw_prompt
from playground.context import AppContext
from playground.data import list_examples
from playground.errors import Cancelled
from playground.limits import current_limits
from playground.ui.common import progress_callback, user_errors
from playground.ui.data_picker import load_choice
from playground.ui.i18n import tr
from playground.ui.session import owner_of
from playground.ui.session_stop import SessionRuns, stop_all


def _votes_enabled(on: bool, n: int = 4) -> list[Any]:
    return [gr.update(interactive=on)] * n


def score_frame(result: PairwiseResult, request: gr.Request) -> pd.DataFrame:
    """Each contestant's mean score, best first (for perplexity, lowest first)."""
    lower_first = result.metric == "perplexity"
    ranked = sorted(
        result.scores.items(), key=lambda kv: (math.isnan(kv[1]), kv[1] if lower_first else -kv[1])
    )
    return pd.DataFrame([[name, round(score, 4)] for name, score in ranked], columns=_score_columns(request))


def _score_columns(request: gr.Request) -> list[str]:
    return [tr(request, "arena.auto.col.contestant"), tr(request, "arena.auto.col.score")]


def empty_scores(request: gr.Request) -> pd.DataFrame:
    """The score table before any scoring, headed in the page's language (gradio does not
    translate a table's headers)."""
    return pd.DataFrame(columns=_score_columns(request))


def on_stop(runs: SessionRuns | None) -> None:
    stop_all(runs)


def on_cancel(runs: SessionRuns | None, request: gr.Request) -> str:
    stop_all(runs)
    return tr(request, "arena.auto.cancelling")


class ArenaHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def on_shown(
        self, picked: list[str] | None, test_set: str | None, request: gr.Request
    ) -> tuple[Any, Any]:
        offered = [c.label for c in contestants(self.ctx.models, owner_of(self.ctx, request))]
        kept = [p for p in picked or [] if p in offered]
        names = [p.name for p in list_examples()]
        return gr.update(choices=offered, value=kept), gr.update(choices=names, value=test_set)

    @user_errors
    def draw(self, example: str | None, upload: str | None) -> tuple[str, tuple[str, str]]:
        dataset = load_choice(example, upload, what="test set")
        prompt = draw_prompt(dataset)
        return prompt, (dataset.name, prompt)

    @user_errors
    def ask(
        self,
        picked: list[str],
        prompt: str,
        drawn: tuple[str, str] | None,
        max_new: float,
        runs: SessionRuns,
        request: gr.Request,
    ) -> Iterator[list[Any]]:
        owner = owner_of(self.ctx, request)
        current_limits().check_new_tokens(int(max_new))
        chosen = check_contestants(self.ctx.models, owner, picked)
        test_set = drawn[0] if drawn and drawn[1] == (prompt or "").strip() else None
        battle = start_battle(chosen, prompt, owner.id, int(max_new), test_set)
        waiting = tr(request, "arena.waiting")
        yield ["", "", battle, waiting, *_votes_enabled(False)]
        with runs.run() as stop:
            for answer_a, answer_b in stream_battle(self.ctx.models, battle, stop):
                yield [answer_a, answer_b, battle, waiting, *_votes_enabled(False)]
        if battle.stopped:
            yield [
                battle.answer_a,
                battle.answer_b,
                battle,
                tr(request, "arena.stopped"),
                *_votes_enabled(False),
            ]
            return
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

    @user_errors
    def score(
        self,
        picked: list[str],
        example: str | None,
        upload: str | None,
        metric: str,
        limit: float | None,
        max_new: float,
        runs: SessionRuns,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, Any]:
        """Every pair of the ticked contestants on the test set, judged by the metric; votes stored."""
        owner = owner_of(self.ctx, request)
        current_limits().check_new_tokens(int(max_new))
        chosen = check_contestants(self.ctx.models, owner, picked)
        config = PairwiseConfig(metric, int(limit) if limit else None, int(max_new)).validate()
        dataset = load_choice(example, upload, what="test set")
        with runs.run() as stop:
            try:
                result = run_pairwise(
                    self.ctx.models,
                    chosen,
                    dataset,
                    owner.id,
                    config,
                    self.ctx.votes,
                    progress_callback(progress),
                    stop.is_set,
                )
            except Cancelled:
                return tr(request, "arena.auto.cancelled"), gr.update()
        status = tr(
            request,
            "arena.auto.done",
            stored=result.stored,
            skipped=result.skipped,
            examples=result.examples,
            pairs=result.pairs,
            test_set=result.test_set,
        )
        return status, score_frame(result, request)
