"""What the Prompt lab's events call. `LabHandlers` holds the app context for those that need it.

Handlers that need the request and many inputs take them as a set (a dict per call): gradio only
passes gr.Request to positional parameters, so it cannot follow *args.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.data import dataset_summary
from playground.data_types import Dataset
from playground.errors import PlaygroundError
from playground.evaluation.runner import EvalConfig
from playground.evaluation.sweep import SweepResult, run_sweep
from playground.generation import GREEDY, stream_generate
from playground.number_lists import parse_number_list
from playground.prompts.fewshot import list_recipes
from playground.ui.common import error_text, progress_callback, user_errors
from playground.ui.data_picker import load_choice
from playground.ui.i18n import tr
from playground.ui.prompt_lab.controls import LabControls, load_lab_recipe, save_lab_recipe
from playground.ui.prompt_lab.layout import EXAMPLE_FORMATS, LabPage
from playground.ui.prompt_lab.views import (
    build_preview,
    effective_pool,
    id_choices,
    matching_train,
    model_line,
    pool_frame,
    query_choices,
    query_line,
    summary_frame,
    sweep_chart,
    try_stop_strings,
)
from playground.ui.session import owner_of
from playground.ui.session_stop import SessionRuns, stop_all


def load_quietly(example: str | None, what: str) -> Dataset | None:
    """A demo set to start the page with, or None when it is missing or broken."""
    try:
        return load_choice(example, None, what=what) if example else None
    except PlaygroundError:
        return None


# --------------------------------------------------------------------------- showing and hiding


def custom_box(template: str) -> dict:
    return gr.update(visible=template == "custom")


def manual_box(selection: str) -> dict:
    return gr.update(visible=selection == "manual")


def format_preset(preset: str | None) -> Any:
    return EXAMPLE_FORMATS[preset] if preset in EXAMPLE_FORMATS else gr.update()


def recipe_choices() -> dict:
    return gr.update(choices=list_recipes())


def on_open(request: gr.Request, test: Dataset | None) -> tuple[str, Any, Any]:
    """What the page opens with, in its language: the test set's line, the empty table and chart."""
    return (
        dataset_summary(test) if test else "",
        summary_frame(None, request),
        sweep_chart(None, None, request),
    )


def on_chart_metric(request: gr.Request, result: SweepResult | None, metric: str | None) -> Any:
    return sweep_chart(result, metric, request)


# --------------------------------------------------------------------------- data


@user_errors
def on_test(example: str | None, upload: str | None, refs: str | None) -> tuple:
    test = load_choice(example, upload, refs, "test set") if (example or upload) else None
    train = matching_train(example) if example and not upload else None
    return (
        test,
        gr.update(choices=query_choices(test), value=0 if test else None),
        dataset_summary(test) if test else "",
        gr.update(value=train) if train else gr.update(),
    )


@user_errors
def on_train(example: str | None, upload: str | None) -> Dataset | None:
    return load_choice(example, upload, what="training set") if (example or upload) else None


def on_pool(test: Dataset | None, pool: Dataset | None) -> tuple:
    examples = effective_pool(test, pool)
    return pool_frame(examples), gr.update(choices=id_choices(examples))


def on_pick(chosen: list[str] | None, evt: gr.SelectData) -> list[str]:
    """A clicked row of the training set joins the hand-picked ids (once, at the end)."""
    row = evt.row_value or []
    chosen = list(chosen or [])
    if row and str(row[0]) not in chosen:
        chosen.append(str(row[0]))
    return chosen


# --------------------------------------------------------------------------- recipes


@user_errors
def on_load(request: gr.Request, name: str | None) -> list:
    loaded_controls = load_lab_recipe(name)
    return [*loaded_controls.values(), tr(request, "prompt_lab.recipe.loaded", name=name)]


# --------------------------------------------------------------------------- stop buttons


def on_stop(runs: SessionRuns) -> None:
    stop_all(runs)


def on_cancel(request: gr.Request, runs: SessionRuns) -> str:
    stop_all(runs)
    return tr(request, "prompt_lab.eval.cancelling")


# --------------------------------------------------------------------------- with the app context


class LabHandlers:
    """The handlers that read the loaded model, the leaderboard or who is asking."""

    def __init__(self, ctx: AppContext, page: LabPage, try_stop: Any, eval_stop: Any) -> None:
        self.ctx = ctx
        self.page = page
        self.try_stop = try_stop
        self.eval_stop = eval_stop

    def controls_of(self, data: dict) -> LabControls:
        return LabControls.from_values(*(data[c] for c in self.page.controls))

    @user_errors
    def on_preview(self, request: gr.Request, *args: Any) -> tuple[str, str, str, str]:
        """Live preview: cheap, no model lock (the tokenizer is only read)."""
        *values, test, pool, index, new_tokens = args
        line = query_line(test, index, request)
        try:
            text, info = build_preview(
                LabControls.from_values(*values),
                test,
                pool,
                index,
                self.ctx.models.current,
                int(new_tokens),
                request,
            )
        except PlaygroundError as exc:
            return "", f"⚠️ {error_text(exc, request)}", line, model_line(self.ctx, request)
        return text, info, line, model_line(self.ctx, request)

    @user_errors
    def on_try(self, data: dict, request: gr.Request) -> Iterator[tuple[str, str, str, str]]:
        """Try on one question, the answer streamed."""
        page = self.page
        c = self.controls_of(data)
        test, pool, index = data[page.test_state], data[page.pool_state], data[page.trial.query]
        new_tokens = int(data[page.trial.max_new])
        with data[self.try_stop].run() as flag, self.ctx.models.use() as loaded:
            text, info = build_preview(c, test, pool, index, loaded, new_tokens, request)
            stops = try_stop_strings(c, loaded)
            settings = GREEDY.with_(max_new_tokens=new_tokens, stop=stops)
            ends_at = ""
            if stops:
                ends_at = tr(request, "prompt_lab.try.ends_at", stops=", ".join(repr(s) for s in stops))
            yield "", tr(request, "prompt_lab.try.starting"), text, info
            for update in stream_generate(loaded, text, settings, flag):
                yield update.text, update.stats_line() + ends_at, text, info

    def _sweep_config(self, data: dict, c: LabControls, request: gr.Request) -> tuple[EvalConfig, list[int]]:
        e = self.page.evaluate
        if data[self.page.test_state] is None:
            raise PlaygroundError(tr(request, "prompt_lab.eval.no_test_set"))
        if not data[e.metrics]:
            raise PlaygroundError(tr(request, "prompt_lab.eval.no_metric"))
        if c.selection == "manual" and not c.manual_ids:
            raise PlaygroundError(tr(request, "prompt_lab.eval.no_manual_ids"))
        k_values = parse_number_list(data[e.ks], "k values") or [c.k]
        limit = data[e.limit]
        config = EvalConfig(
            metrics=tuple(data[e.metrics]),
            fewshot=c.fewshot(),
            seeds=tuple(parse_number_list(data[e.seeds], "Seeds")) or (0,),
            limit=int(limit) if limit else None,
            decoding=GREEDY.with_(max_new_tokens=int(data[self.page.trial.max_new])),
        ).validate()
        return config, k_values

    @user_errors
    def on_evaluate(self, data: dict, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple:
        """The k sweep: zero-shot and each k over the test set, every run stored on the leaderboard."""
        c = self.controls_of(data)
        config, k_values = self._sweep_config(data, c, request)
        test, pool = data[self.page.test_state], data[self.page.pool_state]
        with data[self.eval_stop].run() as flag, self.ctx.models.use() as loaded:
            result = run_sweep(
                loaded,
                test,
                c.resolve(loaded),
                config,
                k_values,
                pool=pool.examples if pool is not None else None,
                leaderboard=self.ctx.leaderboard,
                progress=progress_callback(progress),
                should_stop=flag.is_set,
            )
        key = "prompt_lab.eval.cancelled" if result.cancelled else "prompt_lab.eval.done"
        runs = sum(len(p.runs) for p in result.points)
        status = tr(request, key, runs=runs, dataset=result.dataset_name, questions=result.n_examples)
        metric = result.primary_metric
        return (
            status,
            summary_frame(result, request),
            sweep_chart(result, metric, request),
            gr.update(choices=result.metrics, value=metric),
            result,
        )

    @user_errors
    def on_save(self, request: gr.Request, name: str, *values: Any) -> tuple:
        saved = save_lab_recipe(name, LabControls.from_values(*values), owner_of(self.ctx, request))
        return tr(request, "prompt_lab.recipe.saved", name=saved), gr.update(
            choices=list_recipes(), value=saved
        )
