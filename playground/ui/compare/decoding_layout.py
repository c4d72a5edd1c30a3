"""The decoding sub-tab's sections: the prompt and run bar, the columns, and the sweep."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.generation.compare import MAX_SAMPLES, SWEEP_PARAMS
from playground.ui.common import catalogue_dropdown
from playground.ui.compare.column_models import NO_ADAPTER, precision_choices
from playground.ui.compare.decoding_settings import (
    COLUMN_PRESETS,
    DEFAULT_COLUMNS,
    DEFAULT_MAX_NEW,
    MAX_COLUMNS,
    MAX_NEW_TOKENS,
    default_summary,
    mode_choices,
    preset_choices,
    preset_knobs,
)
from playground.ui.compare.decoding_views import sweep_headers
from playground.ui.compare.shared import build_instruction_row
from playground.ui.i18n import t
from playground.ui.model_choice import BAR_MODEL


@dataclass
class RunBar:
    instruction: gr.Textbox
    extra: gr.Textbox
    n_columns: gr.Slider
    samples: gr.Slider
    max_new_all: gr.Number
    seed: gr.Number
    show_entropy: gr.Checkbox  # keep each step's entropy and chart it (ordinary runs keep nothing)
    run: gr.Button
    stop: gr.Button


@dataclass
class ColumnControls:
    box: gr.Column
    model: gr.Dropdown  # a resident model's key, or BAR_MODEL
    adapter: gr.Dropdown  # an adapter's name, or column_models.NO_ADAPTER
    precision: gr.Dropdown  # one of COLUMN_PRECISIONS; shown to admins only
    preset: gr.Dropdown
    summary: gr.Markdown
    knobs: list[gr.components.Component]  # in decoding_settings.KNOBS order
    out: gr.Textbox
    stats: gr.Markdown

    @property
    def sampling_knobs(self) -> list[gr.components.Component]:
        return self.knobs[1:4]

    @property
    def beam_knobs(self) -> list[gr.components.Component]:
        return self.knobs[4:6]


@dataclass
class SweepControls:
    param: gr.Dropdown
    values: gr.Textbox
    run: gr.Button
    plot: gr.Plot
    table: gr.Dataframe


def build_run_bar() -> RunBar:
    instruction, extra = build_instruction_row("compare", 3, "相見時難別亦難，")
    with gr.Row(equal_height=True):
        n_columns = gr.Slider(
            1,
            MAX_COLUMNS,
            value=DEFAULT_COLUMNS,
            step=1,
            label=t("compare.columns"),
            elem_id="compare-n-columns",
        )
        samples = gr.Slider(
            1, MAX_SAMPLES, value=1, step=1, label=t("compare.samples"), elem_id="compare-samples"
        )
        max_new_all = gr.Number(
            DEFAULT_MAX_NEW,
            label=t("compare.max_new_all"),
            precision=0,
            minimum=1,
            maximum=MAX_NEW_TOKENS,
            elem_id="compare-max-new",
        )
        seed = gr.Number(0, label=t("compare.seed_shared"), precision=0, elem_id="compare-seed")
        show_entropy = gr.Checkbox(
            False,
            label=t("compare.show_entropy"),
            info=t("compare.show_entropy.info"),
            elem_id="compare-show-entropy",
        )
        run = gr.Button(t("compare.run"), variant="primary", elem_id="compare-run")
        stop = gr.Button(t("compare.stop"), variant="stop", elem_id="compare-stop")
    return RunBar(instruction, extra, n_columns, samples, max_new_all, seed, show_entropy, run, stop)


def build_columns() -> list[ColumnControls]:
    columns = []
    with gr.Row():
        for i in range(MAX_COLUMNS):
            with gr.Column(visible=i < DEFAULT_COLUMNS, min_width=220) as box:
                columns.append(_build_column(i, box))
    return columns


def _build_column(i: int, box: gr.Column) -> ColumnControls:
    preset_name = COLUMN_PRESETS[i]
    mode0, t0, p0, k0, b0, lp0, nr0, rep0 = preset_knobs(preset_name)
    gr.Markdown(t(f"compare.column.{i + 1}"))
    model = gr.Dropdown(
        [(t("model_choice.bar"), BAR_MODEL)],
        value=BAR_MODEL,
        label=t("compare.column_model"),
        info=t("compare.column_model.info"),
        elem_id=f"compare-model-{i}",
    )
    adapter, precision = _build_adapter_and_precision(i)
    preset = gr.Dropdown(
        preset_choices(), value=preset_name, label=t("compare.preset"), elem_id=f"compare-preset-{i}"
    )
    summary = gr.Markdown(default_summary(i), elem_id=f"compare-summary-{i}")
    sampling, beam = mode0 == "sample", mode0 == "beam"
    with gr.Accordion(t("compare.settings"), open=False):
        knobs = [
            gr.Radio(mode_choices(), value=mode0, label=t("compare.mode"), elem_id=f"compare-mode-{i}"),
            gr.Slider(0.05, 2, value=t0, step=0.05, label=t("compare.temperature"), visible=sampling),
            gr.Slider(0.05, 1, value=p0, step=0.05, label=t("compare.top_p"), visible=sampling),
            gr.Slider(0, 200, value=k0, step=1, label=t("compare.top_k"), visible=sampling),
            gr.Slider(1, 8, value=b0, step=1, label=t("compare.beams"), visible=beam),
            gr.Slider(-2, 3, value=lp0, step=0.1, label=t("compare.length_penalty"), visible=beam),
            gr.Slider(0, 6, value=nr0, step=1, label=t("compare.no_repeat")),
            gr.Slider(0.8, 2, value=rep0, step=0.05, label=t("compare.repetition_penalty")),
            gr.Slider(
                1,
                MAX_NEW_TOKENS,
                value=DEFAULT_MAX_NEW,
                step=1,
                label=t("compare.max_new"),
                elem_id=f"compare-max-new-{i}",
            ),
        ]
    out = gr.Textbox(
        label=t("compare.output"), lines=8, max_lines=30, interactive=False, elem_id=f"compare-out-{i}"
    )
    stats = gr.Markdown("", elem_id=f"compare-stats-{i}")
    return ColumnControls(box, model, adapter, precision, preset, summary, knobs, out, stats)


def _build_adapter_and_precision(i: int) -> tuple[gr.Dropdown, gr.Dropdown]:
    with gr.Row():
        adapter = gr.Dropdown(
            [(t("compare.column_adapter.none"), NO_ADAPTER)],
            value=NO_ADAPTER,
            label=t("compare.column_adapter"),
            info=t("compare.column_adapter.info"),
            elem_id=f"compare-adapter-{i}",
        )
        precision = gr.Dropdown(
            precision_choices(),
            value="auto",
            label=t("compare.column_precision"),
            info=t("compare.column_precision.info"),
            visible=False,
            elem_id=f"compare-precision-{i}",
        )
    return adapter, precision


def build_entropy_trace() -> gr.Plot:
    """One entropy line per column, shown after a run with "show entropy" ticked."""
    return gr.Plot(visible=False, show_label=False, elem_id="compare-entropy")


def build_prompt_preview() -> gr.Textbox:
    with gr.Accordion(t("compare.prompt_sent"), open=False):
        return gr.Textbox(show_label=False, lines=4, interactive=False, elem_id="compare-preview")


def build_sweep() -> SweepControls:
    with gr.Accordion(t("compare.sweep"), open=False):
        with gr.Row(equal_height=True):
            param = catalogue_dropdown("compare.sweep.param", SWEEP_PARAMS, "temperature", "sweep-param")
            values = gr.Textbox("0.1:1.5:0.2", label=t("compare.sweep.values"), elem_id="sweep-values")
            run = gr.Button(t("compare.sweep.run"), elem_id="sweep-run")
        gr.Markdown(t("compare.sweep.note"))
        plot = gr.Plot(elem_id="sweep-plot")
        table = gr.Dataframe(headers=sweep_headers(), interactive=False, wrap=True, elem_id="sweep-table")
    return SweepControls(param, values, run, plot, table)
