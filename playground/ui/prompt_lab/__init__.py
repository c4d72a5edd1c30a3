"""Prompt lab tab: build a few-shot / chain-of-thought prompt, preview it, try it, sweep k over a test set.

`layout` builds the sections, `handlers` holds what the events call, `views` draws the preview
lines, the table and the chart, `controls` is the builder's inputs as one dataclass (and recipes);
this module connects them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.ui.common import GENERATION_EVENT
from playground.ui.prompt_lab import handlers as h
from playground.ui.prompt_lab.controls import LabControls, load_lab_recipe, save_lab_recipe
from playground.ui.prompt_lab.layout import DEFAULT_TEST, LabPage, build_page
from playground.ui.prompt_lab.views import build_preview, matching_train, sweep_chart
from playground.ui.session import on_page_load
from playground.ui.session_stop import session_runs_state

__all__ = [
    "LabControls",
    "build_preview",
    "build_prompt_lab_tab",
    "load_lab_recipe",
    "matching_train",
    "save_lab_recipe",
    "sweep_chart",
]


def build_prompt_lab_tab(ctx: AppContext) -> None:
    default_train = matching_train(DEFAULT_TEST) or ""
    test = h.load_quietly(DEFAULT_TEST, "test set")
    pool = h.load_quietly(default_train, "training set")
    model_info = gr.Markdown(elem_id="lab-model")  # written by the preview, in the page's language
    page = build_page(model_info, test, pool, default_train)
    handlers = h.LabHandlers(ctx, page, try_stop=session_runs_state(), eval_stop=session_runs_state())
    preview_run = _wire_preview(handlers, page)
    _wire_data(page, preview_run)
    _wire_try(handlers, page)
    _wire_evaluate(handlers, page)
    _wire_recipes(handlers, page)


def _wire_preview(handlers: h.LabHandlers, page: LabPage) -> dict[str, Any]:
    """The live preview, and the builder's boxes that show or hide; the preview's event settings."""
    preview_run: dict[str, Any] = dict(
        fn=handlers.on_preview,
        inputs=page.preview_inputs,
        outputs=page.preview_outputs,
        queue=False,
        show_progress="hidden",
    )
    # No triggers: on page load and on every change of an input. A State set by an unqueued event
    # fires no change event in the browser, so the data events chain the preview themselves.
    gr.on(None, **preview_run)
    p, e = page.prompt, page.examples
    p.template.change(h.custom_box, p.template, p.custom, queue=False)
    e.selection.change(h.manual_box, e.selection, e.manual_box, queue=False)
    e.preset.change(h.format_preset, e.preset, e.example_format, queue=False)
    e.pool_table.select(h.on_pick, e.manual_ids, e.manual_ids, queue=False)
    ev = page.evaluate
    on_page_load(h.on_open, page.test_state, [page.data.test_info, ev.summary, ev.chart])
    return preview_run


def _wire_data(page: LabPage, preview_run: dict[str, Any]) -> None:
    d, e = page.data, page.examples
    states = [page.test_state, page.pool_state]
    for comp in (*d.test_set.inputs, d.references):
        comp.change(
            h.on_test,
            [*d.test_set.inputs, d.references],
            [page.test_state, page.trial.query, d.test_info, d.train_set.example],
        ).then(h.on_pool, states, [e.pool_table, e.manual_ids], queue=False).then(**preview_run)
    for comp in d.train_set.inputs:
        comp.change(h.on_train, d.train_set.inputs, page.pool_state).then(
            h.on_pool, states, [e.pool_table, e.manual_ids], queue=False
        ).then(**preview_run)


def _wire_try(handlers: h.LabHandlers, page: LabPage) -> None:
    trial = page.trial
    trial.try_button.click(
        handlers.on_try,
        {*page.preview_inputs, handlers.try_stop},
        [trial.answer, trial.stats, trial.preview, trial.preview_info],
        **GENERATION_EVENT,
    )
    trial.stop_button.click(h.on_stop, handlers.try_stop, None, queue=False)


def _wire_evaluate(handlers: h.LabHandlers, page: LabPage) -> None:
    ev = page.evaluate
    inputs = {*page.controls, page.test_state, page.pool_state, page.trial.max_new}
    ev.start.click(
        handlers.on_evaluate,
        inputs | {ev.metrics, ev.ks, ev.seeds, ev.limit, handlers.eval_stop},
        [ev.status, ev.summary, ev.chart, ev.chart_metric, page.sweep_state],
        concurrency_id="model",
        concurrency_limit=1,
    )
    ev.cancel.click(h.on_cancel, handlers.eval_stop, ev.status, queue=False)
    ev.chart_metric.change(h.on_chart_metric, [page.sweep_state, ev.chart_metric], ev.chart, queue=False)


def _wire_recipes(handlers: h.LabHandlers, page: LabPage) -> None:
    r = page.recipes
    r.save.click(handlers.on_save, [r.name, *page.controls], [r.status, r.recipes])
    r.load.click(h.on_load, r.recipes, [*page.controls, r.status])
    r.recipes.focus(h.recipe_choices, None, r.recipes, queue=False)
    on_page_load(h.recipe_choices, None, r.recipes)
