"""The base-model-vs-adapters sub-tab's sections: what to compare, the prompts, the run bar, the table."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.ui.compare.adapters_table import example_choices
from playground.ui.compare.decoding_settings import DEFAULT_MAX_NEW, preset_choices
from playground.ui.compare.shared import TANG_INSTRUCTION
from playground.ui.i18n import t


@dataclass
class AdapterPick:
    adapters: gr.CheckboxGroup
    include_base: gr.Checkbox
    refresh: gr.Button
    own_template: gr.Checkbox


@dataclass
class PromptSource:
    source: gr.Radio
    pasted: gr.Textbox
    data_row: gr.Row
    example: gr.Dropdown
    upload: gr.File
    references: gr.File
    rows: gr.Textbox

    @property
    def inputs(self) -> list[gr.components.Component]:
        """In the order AdapterHandlers.run_comparison takes them."""
        return [self.source, self.pasted, self.example, self.upload, self.references, self.rows]


@dataclass
class ComparisonRun:
    preset: gr.Dropdown
    max_new: gr.Number
    seed: gr.Number
    run: gr.Button
    stop: gr.Button
    status: gr.Markdown
    table: gr.Dataframe
    export_csv: gr.Button
    export_json: gr.Button
    exported: gr.File
    last_table: gr.State
    diff: gr.Plot  # adapter vs base per reference character, when the prompts have references


def build_adapter_pick() -> AdapterPick:
    gr.Markdown(t("compare.adapters.intro"))
    with gr.Row(equal_height=True):
        adapters = gr.CheckboxGroup(
            [],
            label=t("compare.adapters.choices"),
            info=t("compare.adapters.choices_info"),
            scale=4,
            elem_id="adapter-choices",
        )
        include_base = gr.Checkbox(
            True, label=t("compare.adapters.include_base"), scale=1, elem_id="adapter-include-base"
        )
        refresh = gr.Button(t("compare.adapters.refresh"), scale=1)
    own_template = gr.Checkbox(
        True,
        label=t("compare.adapters.own_template"),
        info=t("compare.adapters.own_template_info"),
        elem_id="adapter-own-template",
    )
    return AdapterPick(adapters, include_base, refresh, own_template)


def build_prompt_source() -> PromptSource:
    source = gr.Radio(
        [(t("compare.adapters.source.paste"), "paste"), (t("compare.adapters.source.dataset"), "data set")],
        value="paste",
        label=t("compare.adapters.source"),
        elem_id="adapter-source",
    )
    pasted = gr.Textbox(
        label=t("compare.adapters.prompts"),
        lines=5,
        elem_id="adapter-prompts",
        placeholder=TANG_INSTRUCTION + "相見時難別亦難，",
    )
    with gr.Row(visible=False) as data_row:
        example = gr.Dropdown(
            example_choices(),
            label=t("compare.adapters.example"),
            allow_custom_value=False,
            elem_id="adapter-example",
        )
        upload = gr.File(label=t("compare.adapters.upload"), file_types=[".json", ".jsonl", ".csv", ".tsv"])
        references = gr.File(label=t("compare.adapters.references"), file_types=[".txt"])
        rows = gr.Textbox("1-5", label=t("compare.adapters.rows"), elem_id="adapter-rows")
    return PromptSource(source, pasted, data_row, example, upload, references, rows)


def build_comparison_run() -> ComparisonRun:
    with gr.Row(equal_height=True):
        preset = gr.Dropdown(
            preset_choices(), value="greedy", label=t("compare.adapters.decoding"), elem_id="adapter-preset"
        )
        max_new = gr.Number(
            DEFAULT_MAX_NEW, label=t("compare.adapters.max_new"), precision=0, elem_id="adapter-max-new"
        )
        seed = gr.Number(0, label=t("compare.adapters.seed"), precision=0, elem_id="adapter-seed")
        run = gr.Button(t("compare.adapters.run"), variant="primary", elem_id="adapter-run")
        stop = gr.Button(t("compare.stop"), variant="stop", elem_id="adapter-stop")
    status = gr.Markdown("", elem_id="adapter-status")
    table = gr.Dataframe(interactive=False, wrap=True, elem_id="adapter-table")
    with gr.Row():
        export_csv = gr.Button(t("compare.adapters.export_csv"), elem_id="adapter-export-csv")
        export_json = gr.Button(t("compare.adapters.export_json"), elem_id="adapter-export-json")
        exported = gr.File(label=t("compare.adapters.exported"), interactive=False, elem_id="adapter-export")
    last_table = gr.State(None)
    diff = gr.Plot(visible=False, show_label=False, elem_id="adapter-diff")
    return ComparisonRun(
        preset, max_new, seed, run, stop, status, table, export_csv, export_json, exported, last_table, diff
    )
