"""Decoding side by side: one prompt, several columns of decoding settings, and a sweep of one setting.

`decoding_layout` builds the sections, the handlers here call the services, `build_decoding_tab`
connects them.
"""

from __future__ import annotations

import random
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.generation.column_models import ColumnPick, compare_on_models
from playground.generation.compare import Column, sweep
from playground.ui.common import GENERATION_EVENT, on_tab_shown, progress_callback, user_errors
from playground.ui.compare.column_models import (
    adapter_dropdown_update,
    outcome_values,
    picked_adapter,
    precision_update,
)
from playground.ui.compare.decoding_layout import (
    ColumnControls,
    RunBar,
    SweepControls,
    build_columns,
    build_entropy_trace,
    build_prompt_preview,
    build_run_bar,
    build_sweep,
)
from playground.ui.compare.decoding_settings import (
    MAX_COLUMNS,
    decoding_label,
    default_summary,
    preset_knobs,
    settings_from_knobs,
    settings_summary,
)
from playground.ui.compare.decoding_views import (
    entropy_trace,
    parse_values,
    sweep_figure,
    sweep_table,
)
from playground.ui.compare.shared import SharedControls, prompt_text, seed_or_none
from playground.ui.i18n import language_of, text
from playground.ui.model_choice import BAR_MODEL, model_dropdown_update
from playground.ui.session import on_page_load, owner_of
from playground.ui.session_stop import SessionRuns, stop_all


class DecodingHandlers:
    """The events that run the model; inputs come as one {component: value} dict (the knobs are many)."""

    def __init__(
        self,
        ctx: AppContext,
        shared: SharedControls,
        bar: RunBar,
        columns: list[ColumnControls],
        sweep_controls: SweepControls,
    ) -> None:
        self.ctx = ctx
        self.shared = shared
        self.bar = bar
        self.columns = columns
        self.sweep_controls = sweep_controls

    @property
    def prompt_inputs(self) -> tuple[gr.components.Component, ...]:
        return (self.bar.instruction, self.bar.extra, *self.shared.prompt)

    def _prompt(self, loaded: Any, v: dict[Any, Any], lang: str) -> str:
        return prompt_text(loaded, *(v[c] for c in self.prompt_inputs), lang=lang)

    @user_errors
    def run_columns(
        self, v: dict[Any, Any], request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> list[Any]:
        lang = language_of(request)
        if not (v[self.bar.instruction] or "").strip():
            raise PlaygroundError(text(lang, "compare.instruction_missing"))
        picks = [
            self._pick(column, n, v, lang)
            for n, column in enumerate(self.columns[: int(v[self.bar.n_columns])])
        ]
        samples = int(v[self.bar.samples])
        # One seed for every model's columns, so identical settings give identical answers.
        seed = seed_or_none(v[self.bar.seed])
        seed = random.randrange(2**31) if seed is None else seed
        runs: SessionRuns = v[self.shared.runs]
        progress(0.05, desc=text(lang, "compare.progress.columns", columns=len(picks)))
        with runs.run() as stop:
            outcomes = compare_on_models(
                self.ctx.models,
                owner_of(self.ctx, request),
                picks,
                lambda loaded: self._prompt(loaded, v, lang),
                samples,
                seed,
                stop,
                shared=self.ctx.deployment.shared,
                progress=progress_callback(progress),
                entropy=bool(v[self.bar.show_entropy]),
            )
        values: list[Any] = []
        for i in range(MAX_COLUMNS):
            values += outcome_values(outcomes[i], samples, lang) if i < len(outcomes) else ["", ""]
        prompts = dict.fromkeys(o.prompt for o in outcomes if o.prompt)
        return values + ["\n\n---\n\n".join(prompts), entropy_trace([o.result for o in outcomes], lang)]

    def _pick(self, column: ColumnControls, n: int, v: dict[Any, Any], lang: str) -> ColumnPick:
        settings = settings_from_knobs(*(v[k] for k in column.knobs))
        model = v[column.model]
        label = f"{n + 1}. {decoding_label(settings, lang)}"
        return ColumnPick(
            Column(label, settings),
            None if not model or model == BAR_MODEL else model,
            picked_adapter(v[column.adapter]),
            v[column.precision] or "auto",
        )

    @user_errors
    def run_sweep(
        self, v: dict[Any, Any], request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> tuple[Any, Any]:
        lang = language_of(request)
        param = v[self.sweep_controls.param]
        values = parse_values(v[self.sweep_controls.values], param, lang)
        base = settings_from_knobs(*(v[k] for k in self.columns[0].knobs))
        runs: SessionRuns = v[self.shared.runs]
        samples, seed = int(v[self.bar.samples]), seed_or_none(v[self.bar.seed])
        progress(0.05, desc=text(lang, "compare.sweep.progress", param=param, count=len(values)))
        with runs.run() as stop, self.ctx.models.use() as loaded:
            prompt = self._prompt(loaded, v, lang)
            points = sweep(loaded, prompt, base, param, values, samples, seed, stop)
        return sweep_figure(points, param, lang), sweep_table(points, lang)


def column_summary(request: gr.Request, *knob_values: Any) -> str:
    return settings_summary(settings_from_knobs(*knob_values), language_of(request))


def default_summaries(request: gr.Request) -> list[str]:
    return [default_summary(i, language_of(request)) for i in range(MAX_COLUMNS)]


def mode_visibility(mode: str) -> list[Any]:
    return [gr.update(visible=mode == "sample")] * 3 + [gr.update(visible=mode == "beam")] * 2


def columns_shown(n: float) -> list[Any]:
    return [gr.update(visible=i < n) for i in range(MAX_COLUMNS)]


def max_new_everywhere(n: float | None) -> list[Any]:
    return [gr.update(value=n) if n and n > 0 else gr.update() for _ in range(MAX_COLUMNS)]


def build_decoding_tab(ctx: AppContext, shared: SharedControls) -> None:
    bar = build_run_bar()
    columns = build_columns()
    entropy_plot = build_entropy_trace()
    preview = build_prompt_preview()
    sweep_controls = build_sweep()
    handlers = DecodingHandlers(ctx, shared, bar, columns, sweep_controls)
    for column in columns:
        _wire_column(column)
    on_page_load(default_summaries, None, [c.summary for c in columns])
    column_models = [c.model for c in columns]

    def model_lists(request: gr.Request) -> list[Any]:
        return [model_dropdown_update(ctx, request)] * len(column_models)

    on_page_load(model_lists, None, column_models)
    on_tab_shown(model_lists, None, column_models)
    column_pickers = [p for c in columns for p in (c.adapter, c.precision)]

    def adapter_and_precision_lists(request: gr.Request) -> list[Any]:
        # A fresh page (or a tab shown again) starts every column on the bar's model.
        pickers = [adapter_dropdown_update(ctx, request, BAR_MODEL), precision_update(ctx, request)]
        return pickers * len(columns)

    on_page_load(adapter_and_precision_lists, None, column_pickers)
    for column in columns:
        _wire_adapter_list(ctx, column)
    bar.n_columns.change(columns_shown, bar.n_columns, [c.box for c in columns], queue=False)
    bar.max_new_all.change(max_new_everywhere, bar.max_new_all, [c.knobs[-1] for c in columns], queue=False)

    knobs = [k for c in columns for k in c.knobs]
    common = {bar.samples, bar.seed, shared.runs, *handlers.prompt_inputs, *column_models, *column_pickers}
    outputs = [o for c in columns for o in (c.out, c.stats)]
    bar.run.click(
        handlers.run_columns,
        {bar.n_columns, bar.show_entropy, *common, *knobs},
        outputs + [preview, entropy_plot],
        **GENERATION_EVENT,
    )
    bar.stop.click(stop_all, shared.runs, None, queue=False)

    sweep_inputs = {sweep_controls.param, sweep_controls.values, *common, *columns[0].knobs}
    sweep_controls.run.click(
        handlers.run_sweep, sweep_inputs, [sweep_controls.plot, sweep_controls.table], **GENERATION_EVENT
    )


def _wire_column(column: ColumnControls) -> None:
    column.preset.change(preset_knobs, column.preset, column.knobs[:-1], queue=False)
    # The settings sit in a closed accordion, so the line above it says what the column will run.
    gr.on([k.change for k in column.knobs], column_summary, column.knobs, column.summary, queue=False)
    mode = column.knobs[0]
    mode.change(mode_visibility, mode, column.sampling_knobs + column.beam_knobs, queue=False)


def _wire_adapter_list(ctx: AppContext, column: ColumnControls) -> None:
    """A column's adapters are those of its model."""

    def adapters_of(model: str, request: gr.Request) -> dict:
        return adapter_dropdown_update(ctx, request, model)

    column.model.change(adapters_of, column.model, column.adapter, queue=False)
