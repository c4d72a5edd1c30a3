"""The Leaderboard tab's layout: the evaluation form, the board, and a run's examples."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from playground.evaluation.runner import METRIC_GROUPS
from playground.prompts.fewshot import SELECTIONS
from playground.prompts.templates import TEMPLATES
from playground.ui.data_picker import UPLOAD_HEIGHT, DataPicker, build_data_picker
from playground.ui.i18n import t
from playground.ui.leaderboard.views import EXAMPLE_COLUMNS, RUN_COLUMNS

NONE = "(none)"
ALL = "(all)"
STRATEGIES = ("zero-shot", "k-shot", "cot")


@dataclass
class DataSection:
    test_set: DataPicker
    references: gr.File
    mapping: gr.Textbox
    info: gr.Markdown

    @property
    def inputs(self) -> list:
        return [*self.test_set.inputs, self.references, self.mapping]


@dataclass
class PromptSection:
    template: gr.Dropdown
    custom: gr.Textbox
    system: gr.Textbox
    adapter: gr.Dropdown
    adapter_refresh: gr.Button


@dataclass
class RunSection:
    metrics: gr.CheckboxGroup
    shots: gr.Slider
    selection: gr.Dropdown
    train_set: DataPicker
    seeds: gr.Textbox
    limit: gr.Number
    max_new: gr.Slider


@dataclass
class EvaluateForm:
    data: DataSection
    prompt: PromptSection
    run: RunSection
    start: gr.Button
    cancel: gr.Button
    status: gr.Markdown

    @property
    def inputs(self) -> list:
        p, r = self.prompt, self.run
        return [
            *self.data.inputs,
            p.template,
            p.custom,
            p.system,
            p.adapter,
            r.metrics,
            r.shots,
            r.selection,
            *r.train_set.inputs,
            r.seeds,
            r.limit,
            r.max_new,
        ]


@dataclass
class Board:
    dataset: gr.Dropdown
    metric: gr.Dropdown
    model_filter: gr.Dropdown
    strategy_filter: gr.Dropdown
    refresh: gr.Button
    chart: gr.Plot
    table: gr.Dataframe
    runs: gr.Dataframe

    @property
    def inputs(self) -> list:
        return [self.dataset, self.metric, self.model_filter, self.strategy_filter]

    @property
    def outputs(self) -> list:
        return [self.dataset, self.metric, self.model_filter, self.chart, self.table, self.runs]


@dataclass
class RunDetail:
    export: gr.Button
    export_run: gr.Button  # the clicked run's examples as parquet
    export_file: gr.File
    run_id: gr.Number
    delete: gr.Button
    publish: gr.Button
    selected_run: gr.State
    title: gr.Markdown
    examples: gr.Dataframe
    heatmap: gr.HTML
    selected_example: gr.State  # index of the clicked example among the run's
    adapter_note: gr.Markdown  # shown when the clicked run used an adapter
    adapter_diff: gr.Plot


def build_data_section(initial_info: str) -> DataSection:
    test_set = build_data_picker(
        "Test set",
        "classical_chinese_test.json",
        elem_id="eval-data",
        labels=(t("leaderboard.test_set.example"), t("leaderboard.test_set.upload")),
    )
    references = gr.File(label=t("leaderboard.refs"), height=UPLOAD_HEIGHT, elem_id="eval-refs")
    mapping = gr.Textbox(
        label=t("leaderboard.mapping"),
        # Syntax, not words: the role names are what the parser reads.
        placeholder="instruction=question, input=context, output=answer, id=qid",
        elem_id="eval-mapping",
    )
    info = gr.Markdown(initial_info, elem_id="eval-data-info")
    return DataSection(test_set, references, mapping, info)


def build_prompt_section() -> PromptSection:
    template = gr.Dropdown(
        [tmpl.name for tmpl in TEMPLATES.values()] + ["custom"],
        value="chat",
        label=t("leaderboard.template"),
        elem_id="eval-template",
    )
    # The placeholder is template syntax, the same in every language.
    custom = gr.Textbox(label=t("leaderboard.custom"), lines=2, placeholder="USER: {instruction} ASSISTANT:")
    system = gr.Textbox(label=t("leaderboard.system"), lines=1)
    with gr.Row(equal_height=True):
        adapter = gr.Dropdown(
            [(t("leaderboard.none"), NONE)],  # filled when the page loads
            value=NONE,
            label=t("leaderboard.adapter"),
            elem_id="eval-adapter",
            scale=4,
        )
        refresh = gr.Button(t("leaderboard.refresh"), size="sm", scale=1, elem_id="eval-adapter-refresh")
    return PromptSection(template, custom, system, adapter, refresh)


def build_run_section() -> RunSection:
    metrics = gr.CheckboxGroup(
        [(t(f"leaderboard.metric.{m}"), m) for m in METRIC_GROUPS],
        value=["perplexity"],
        label=t("leaderboard.metrics"),
        elem_id="eval-metrics",
    )
    shots = gr.Slider(0, 10, value=0, step=1, label=t("leaderboard.shots"))
    selection = gr.Dropdown(list(SELECTIONS[:4]), value="first", label=t("leaderboard.selection"))
    train_set = build_data_picker(
        "Examples from",
        "",
        elem_id="eval-train",
        allow_none=True,
        labels=(t("leaderboard.train_set.example"), t("leaderboard.train_set.upload")),
    )
    seeds = gr.Textbox("0", label=t("leaderboard.seeds"))
    limit = gr.Number(20, label=t("leaderboard.limit"), precision=0)
    max_new = gr.Slider(8, 512, value=64, step=8, label=t("leaderboard.max_new"), elem_id="eval-max-new")
    return RunSection(metrics, shots, selection, train_set, seeds, limit, max_new)


def build_evaluate_form(initial_info: str) -> EvaluateForm:
    with gr.Accordion(t("leaderboard.evaluate"), open=True):
        with gr.Row():
            with gr.Column():
                data = build_data_section(initial_info)
            with gr.Column():
                prompt = build_prompt_section()
            with gr.Column():
                run = build_run_section()
        with gr.Row():
            start = gr.Button(t("leaderboard.start"), variant="primary", elem_id="eval-start")
            cancel = gr.Button(t("leaderboard.cancel"), variant="stop", elem_id="eval-cancel")
        status = gr.Markdown(elem_id="eval-status")
    return EvaluateForm(data, prompt, run, start, cancel, status)


def build_board() -> Board:
    gr.Markdown(t("leaderboard.heading"))
    with gr.Row():
        dataset = gr.Dropdown(
            [], label=t("leaderboard.dataset"), elem_id="lb-dataset", allow_custom_value=True
        )
        metric = gr.Dropdown([], label=t("leaderboard.metric"), elem_id="lb-metric", allow_custom_value=True)
        model_filter = gr.Dropdown(
            [(t("leaderboard.all"), ALL)], value=ALL, label=t("leaderboard.model"), allow_custom_value=True
        )
        strategy_filter = gr.Dropdown(
            [(t("leaderboard.all"), ALL), *((s, s) for s in STRATEGIES)],
            value=ALL,
            label=t("leaderboard.strategy"),
        )
        refresh = gr.Button(t("leaderboard.refresh"), elem_id="lb-refresh")
    chart = gr.Plot(label=t("leaderboard.chart"), elem_id="lb-chart")
    # Not wrapped: short numbers and names, and wrapping squeezed the headers to a letter a line.
    table = gr.Dataframe(label=t("leaderboard.table"), interactive=False, elem_id="lb-table", wrap=False)
    runs = gr.Dataframe(
        headers=RUN_COLUMNS, label=t("leaderboard.runs"), interactive=False, elem_id="lb-runs", wrap=True
    )
    return Board(dataset, metric, model_filter, strategy_filter, refresh, chart, table, runs)


def build_run_detail() -> RunDetail:
    with gr.Row():
        export = gr.Button(t("leaderboard.export"), elem_id="lb-export")
        export_run = gr.Button(t("leaderboard.export_run"), elem_id="lb-export-run")
        export_file = gr.File(
            label=t("leaderboard.export_file"),
            interactive=False,
            height=UPLOAD_HEIGHT,
            elem_id="lb-export-file",
        )
        run_id = gr.Number(label=t("leaderboard.delete_id"), precision=0)
        delete = gr.Button(t("leaderboard.delete"), variant="stop", elem_id="lb-delete")
        publish = gr.Button(t("leaderboard.publish"), elem_id="lb-publish")
    selected_run = gr.State(None)
    title = gr.Markdown(elem_id="lb-run-title")
    examples = gr.Dataframe(
        pd.DataFrame(columns=EXAMPLE_COLUMNS),
        label=t("leaderboard.examples"),
        interactive=False,
        wrap=True,
        elem_id="lb-examples",
    )
    heatmap = gr.HTML(elem_id="lb-heatmap")
    adapter_note = gr.Markdown(elem_id="lb-adapter-note")
    adapter_diff = gr.Plot(visible=False, show_label=False, elem_id="lb-adapter-diff")
    return RunDetail(
        export,
        export_run,
        export_file,
        run_id,
        delete,
        publish,
        selected_run,
        title,
        examples,
        heatmap,
        gr.State(0),
        adapter_note,
        adapter_diff,
    )
