"""The Leaderboard tab's handlers: each calls services and returns what the page shows.

They are methods of one small object holding the app's context, so gradio sees each by its name
and its own signature (it injects `request` by its annotation).
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import pandas as pd

from playground.atomic import atomic_write_text
from playground.context import AppContext
from playground.data import dataset_summary
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.runner import EvalConfig, EvalOutcome, evaluate
from playground.generation.settings import GREEDY
from playground.models.adapters import attach_adapter, list_adapter_names, list_adapters
from playground.names import named_path, safe_file_name
from playground.number_lists import parse_number_list
from playground.paths import adapters_dir, private_export_dir
from playground.prompts.fewshot import FewShotConfig
from playground.prompts.templates import TEMPLATES, resolve_template
from playground.ui.common import error_text, progress_callback, user_errors
from playground.ui.data_picker import load_choice
from playground.ui.i18n import language_of, tr
from playground.ui.leaderboard import views
from playground.ui.leaderboard.adapter_diff import example_adapter_diff
from playground.ui.leaderboard.layout import ALL, NONE
from playground.ui.session import owner_of
from playground.ui.session_stop import SessionRuns, stop_all

# The Cancel button's flag for each browser session's running evaluation.


def initial_data_info(example: str | None) -> str:
    try:
        return dataset_summary(load_choice(example, None)) if example else ""
    except PlaygroundError as exc:
        return error_text(exc)


def adapter_choices(request: gr.Request = None) -> Any:
    return gr.update(choices=[(tr(request, "leaderboard.none"), NONE)] + list_adapter_names())


def on_adapter(name: str | None) -> tuple[Any, Any, Any]:
    """An adapter is scored with the template it was trained with."""
    info = next((a for a in list_adapters() if a.name == name), None)
    if info is None:
        return gr.skip(), gr.skip(), gr.skip()
    chosen = info.settings.get("template") or "chat"
    named = chosen in TEMPLATES
    return (chosen if named else "custom", gr.skip() if named else chosen, info.settings.get("system") or "")


@user_errors
def on_data_change(
    example: str | None, upload: str | None, refs: str | None, mapping: str = "", request: gr.Request = None
) -> str:
    if not example and not upload:
        return ""
    try:
        return dataset_summary(load_choice(example, upload, refs, mapping=mapping))
    except PlaygroundError as exc:
        # Said here, not raised: gradio 6 shows only a red "Error" badge, without the message,
        # for an error in an un-queued event such as this one.
        return views.data_problem(exc, language_of(request))


def on_cancel(runs: SessionRuns, request: gr.Request) -> str:
    stop_all(runs)
    return tr(request, "leaderboard.cancelling")


def done_text(request: Any, dataset_name: str, outcomes: list[EvalOutcome]) -> str:
    lines = [
        tr(
            request,
            "leaderboard.done",
            runs=len(outcomes),
            dataset=dataset_name,
            examples=len(outcomes[0].examples),
        )
    ]
    for o in outcomes:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in o.metrics.items())
        lines.append(
            tr(
                request,
                "leaderboard.done_run",
                run_id=o.run_id,
                seed=o.seed,
                metrics=shown,
                seconds=f"{o.seconds:.1f}",
            )
        )
    return "\n".join(lines)


def _run_id(value: float | None, action: str, request: Any) -> int:
    if value is None or not math.isfinite(value) or not 1 <= value < 2**31:
        raise PlaygroundError(tr(request, f"leaderboard.run_id.{action}"))
    return int(value)


class LeaderboardHandlers:
    """The handlers that need the app: its leaderboard, models and users."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.board = ctx.leaderboard

    def _filtered_runs(self, ds: str | None, model_name: str, strategy: str) -> list:
        return self.board.runs(
            dataset_name=ds or None,
            model=None if model_name in (None, ALL) else model_name,
            strategy=None if strategy in (None, ALL) else strategy,
        )

    @user_errors
    def show(
        self,
        ds: str | None,
        metric_name: str | None,
        model_name: str,
        strategy: str,
        request: gr.Request = None,
    ) -> tuple:
        board, lang = self.board, language_of(request)
        viewer = owner_of(self.ctx, request) if request is not None else None
        datasets = board.datasets()
        if ds not in datasets:
            ds = datasets[-1] if datasets else None
        metrics = views.metric_choices(board, ds)
        if metric_name not in metrics:
            metric_name = metrics[0] if metrics else None
        records = self._filtered_runs(ds, model_name, strategy)
        rows = board.leaderboard_table(ds, metric_name) if ds and metric_name else []
        keep = {r.id for r in records}
        rows = [r for r in rows if any(int(i) in keep for i in str(r["run ids"]).split(", ") if i)]
        models = sorted({r.model for r in board.runs(dataset_name=ds)} if ds else set())
        return (
            gr.update(choices=datasets, value=ds),
            gr.update(choices=metrics, value=metric_name),
            gr.update(choices=[(tr(request, "leaderboard.all"), ALL)] + models),
            views.bar_chart(rows, metric_name, lang) if metric_name else views.bar_chart([], "metric", lang),
            views.grouped_frame(rows, lang),
            views.runs_frame(records, viewer, lang),
        )

    @user_errors
    def run_eval(
        self,
        ex,
        up,
        refs,
        mapping_text,
        tmpl,
        custom_text,
        system_text,
        adapter_name,
        metric_names,
        k,
        sel,
        train_ex,
        train_up,
        seeds_text,
        limit_n,
        max_new_tokens,
        runs: SessionRuns,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        if not metric_names:
            raise PlaygroundError(tr(request, "leaderboard.no_metric"))
        seeds = tuple(parse_number_list(seeds_text, "Seeds"))
        dataset = load_choice(ex, up, refs, "test set", mapping=mapping_text)
        pool = (
            load_choice(train_ex, train_up, what="training set").examples if (train_ex or train_up) else None
        )
        config = EvalConfig(
            metrics=tuple(metric_names),
            fewshot=FewShotConfig(k=int(k), selection=sel),
            seeds=seeds or (0,),
            limit=int(limit_n) if limit_n else None,
            decoding=GREEDY.with_(max_new_tokens=int(max_new_tokens)),
        ).validate()
        with runs.run() as flag, self.ctx.models.use() as loaded:
            template = resolve_template(tmpl, custom_text, loaded.default_template, system_text)
            adapter = None
            if adapter_name and adapter_name != NONE:
                adapter = attach_adapter(loaded, named_path(adapters_dir(), adapter_name, "adapter"))
            owned = self.board.as_owner(owner_of(self.ctx, request))
            steps = {"progress": progress_callback(progress), "should_stop": flag.is_set}
            try:
                outcomes = evaluate(
                    loaded, dataset, template, config, pool=pool, leaderboard=owned, adapter=adapter, **steps
                )
            except Cancelled:
                return tr(request, "leaderboard.cancelled"), dataset.name
        return done_text(request, dataset.name, outcomes), dataset.name

    @user_errors
    def on_run_select(self, table_value: pd.DataFrame, evt: gr.SelectData, request: gr.Request):
        lang = language_of(request)
        run_id = int(table_value.iloc[views.selected_row(evt.index)]["id"])
        record = self.board.run(run_id)
        try:
            rows = self.board.examples(run_id, viewer=owner_of(self.ctx, request))
        except PlaygroundError as exc:
            title = f"**{tr(request, 'leaderboard.run')} #{record.id}** · {exc.in_language(lang)}"
            return run_id, title, pd.DataFrame(), "", None
        first = rows[0] if rows else None
        heatmap = views.nll_heatmap(first.tokens, first.nll, lang) if first else ""
        return run_id, views.run_title(record, lang), views.examples_frame(rows), heatmap, 0

    @user_errors
    def on_example_select(
        self, run_id: int | None, evt: gr.SelectData, request: gr.Request
    ) -> tuple[str, int | None]:
        if run_id is None:
            return "", None
        index = views.selected_row(evt.index)
        chosen = self.board.examples(run_id, viewer=owner_of(self.ctx, request))[index]
        return views.nll_heatmap(chosen.tokens, chosen.nll, language_of(request)), index

    @user_errors
    def on_adapter_diff(self, run_id: int | None, index: int | None, request: gr.Request) -> tuple[Any, Any]:
        """For a run with an adapter: the clicked example's reference, adapter vs base, per character."""
        return example_adapter_diff(self.ctx, run_id, index, request)

    @user_errors
    def on_export(self, ds: str | None) -> str:
        stem = safe_file_name(views.export_stem(ds), "data")
        path = named_path(private_export_dir(), f"leaderboard-{stem}", "export", ".csv")
        atomic_write_text(path, self.board.to_csv(ds or None))
        return str(path)

    @user_errors
    def on_export_run(self, run_id: int | None, request: gr.Request) -> str:
        from playground.evaluation.run_export import export_parquet

        if run_id is None:
            raise PlaygroundError(tr(request, "leaderboard.export_run.none"))
        path = named_path(private_export_dir(), f"run-{int(run_id)}-examples", "export", ".parquet")
        return str(export_parquet(self.board, [int(run_id)], path, viewer=owner_of(self.ctx, request)))

    @user_errors
    def on_delete(self, run_id: float | None, ds, metric_name, model_name, strategy, request: gr.Request):
        self.board.delete_run(_run_id(run_id, "delete", request), by=owner_of(self.ctx, request))
        gr.Info(tr(request, "leaderboard.deleted", run_id=int(run_id)))
        return self.show(ds, metric_name, model_name, strategy, request)

    @user_errors
    def on_publish(self, run_id: float | None, ds, metric_name, model_name, strategy, request: gr.Request):
        self.board.publish_run(_run_id(run_id, "publish", request), by=owner_of(self.ctx, request))
        gr.Info(tr(request, "leaderboard.published_info", run_id=int(run_id)))
        return self.show(ds, metric_name, model_name, strategy, request)

    def on_page(self, request: gr.Request):
        return (adapter_choices(request), *self.show(None, None, ALL, ALL, request))
