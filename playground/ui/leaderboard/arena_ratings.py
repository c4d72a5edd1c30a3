"""The Leaderboard tab's arena section: ratings from votes, the win-rate heatmap, exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from playground.arena.exports import export_votes
from playground.arena.ratings import ratings, win_rates
from playground.arena.votes import VoteFilter, VoteRecord
from playground.context import AppContext
from playground.ui.common import on_tab_shown, user_errors
from playground.ui.i18n import t, tr
from playground.ui.session import owner_of

MINE, ALL, TYPED = "mine", "all", "(typed)"
RANGES = {"all": None, "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
COLUMNS = ("contestant", "rating", "low", "high", "votes", "wins")


@dataclass
class RatingsSection:
    user: gr.Dropdown
    test_set: gr.Dropdown
    since: gr.Dropdown
    refresh: gr.Button
    count: gr.Markdown
    human: gr.Dataframe
    metric: gr.Dataframe
    heatmap: gr.Plot
    export_csv: gr.Button
    export_jsonl: gr.Button
    export_file: gr.File

    @property
    def filters(self) -> list[Any]:
        return [self.user, self.test_set, self.since]

    @property
    def outputs(self) -> list[Any]:
        return [self.count, self.human, self.metric, self.heatmap, self.user, self.test_set]


def build_ratings_section() -> RatingsSection:
    gr.Markdown(t("ratings.heading"))
    gr.Markdown(t("ratings.intro"))
    with gr.Row(equal_height=True):
        user = gr.Dropdown(
            [(t("ratings.user.mine"), MINE)], value=MINE, label=t("ratings.user"), elem_id="ratings-user"
        )
        test_set = gr.Dropdown(
            [(t("ratings.test_set.all"), "")],
            value="",
            label=t("ratings.test_set"),
            elem_id="ratings-test-set",
        )
        since = gr.Dropdown(
            [(t(f"ratings.since.{key}"), key) for key in RANGES],
            value="all",
            label=t("ratings.since"),
            elem_id="ratings-since",
        )
        refresh = gr.Button(t("ratings.refresh"), elem_id="ratings-refresh")
    count = gr.Markdown(elem_id="ratings-count")
    headers = [t(f"ratings.col.{c}") for c in COLUMNS]
    with gr.Row():
        human = gr.Dataframe(
            headers=headers, label=t("ratings.human"), interactive=False, elem_id="ratings-human"
        )
        metric = gr.Dataframe(
            headers=headers, label=t("ratings.metric"), interactive=False, elem_id="ratings-metric"
        )
    heatmap = gr.Plot(label=t("ratings.winrate"), elem_id="ratings-heatmap")
    with gr.Row(equal_height=True):
        export_csv = gr.Button(t("ratings.export_csv"), elem_id="ratings-export-csv")
        export_jsonl = gr.Button(t("ratings.export_jsonl"), elem_id="ratings-export-jsonl")
        export_file = gr.File(label=t("ratings.export"), interactive=False, elem_id="ratings-export")
    return RatingsSection(
        user, test_set, since, refresh, count, human, metric, heatmap, export_csv, export_jsonl, export_file
    )


def rating_frame(records: list[VoteRecord]) -> pd.DataFrame:
    rows = [
        [r.contestant, round(r.rating), round(r.low), round(r.high), r.votes, r.wins]
        for r in ratings([v.as_vote() for v in records])
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def winrate_figure(records: list[VoteRecord]) -> go.Figure:
    names, rates = win_rates([v.as_vote() for v in records])
    figure = go.Figure(
        go.Heatmap(z=rates, x=names, y=names, zmin=0, zmax=1, colorscale="RdBu", texttemplate="%{z:.2f}")
    )
    figure.update_layout(height=220 + 40 * len(names), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


class RatingsHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _view(self, user: str, test_set: str, since: str, kind: str, request: gr.Request) -> VoteFilter:
        owner = owner_of(self.ctx, request)
        who = owner.id if user == MINE or not owner.is_admin else (None if user == ALL else user)
        span = RANGES.get(since)
        return VoteFilter(
            kind=kind,
            user=who,
            test_set=None if not test_set else ("" if test_set == TYPED else test_set),
            since=datetime.now(UTC) - span if span else None,
        )

    def _records(
        self, user: str, test_set: str, since: str, kind: str, request: gr.Request
    ) -> list[VoteRecord]:
        # The store shows non-admins their own votes whatever the filter asks.
        return self.ctx.votes.votes(
            owner_of(self.ctx, request), self._view(user, test_set, since, kind, request)
        )

    @user_errors
    def show(self, user: str, test_set: str, since: str, request: gr.Request) -> list[Any]:
        human = self._records(user, test_set, since, "human", request)
        metric = self._records(user, test_set, since, "metric", request)
        viewer = owner_of(self.ctx, request)
        users = [(tr(request, "ratings.user.mine"), MINE)]
        if viewer.is_admin:
            users += [(tr(request, "ratings.user.all"), ALL)] + [(o, o) for o in self.ctx.votes.owners()]
        sets = [(tr(request, "ratings.test_set.all"), ""), (tr(request, "ratings.test_set.typed"), TYPED)]
        sets += [(s, s) for s in self.ctx.votes.test_sets(viewer)]
        return [
            tr(request, "ratings.count", count=len(human), metric=len(metric)),
            rating_frame(human),
            rating_frame(metric),
            winrate_figure(human),
            gr.update(choices=users),
            gr.update(choices=sets),
        ]

    def exporter(self, fmt: str):
        @user_errors
        def export(user: str, test_set: str, since: str, request: gr.Request) -> str:
            return str(export_votes(self._records(user, test_set, since, "human", request), fmt))

        export.__name__ = f"export_{fmt}"
        return export


def wire_ratings(ctx: AppContext, section: RatingsSection) -> None:
    handlers = RatingsHandlers(ctx)
    for trigger in (
        section.refresh.click,
        section.user.change,
        section.test_set.change,
        section.since.change,
    ):
        trigger(handlers.show, section.filters, section.outputs)
    on_tab_shown(handlers.show, section.filters, section.outputs)
    section.export_csv.click(handlers.exporter("csv"), section.filters, section.export_file)
    section.export_jsonl.click(handlers.exporter("jsonl"), section.filters, section.export_file)


def build_arena_ratings(ctx: AppContext) -> None:
    wire_ratings(ctx, build_ratings_section())
