"""The Prompt lab's sections: each builder lays out one part of the tab and returns its components."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from playground.data_types import Dataset
from playground.evaluation.runner import METRIC_GROUPS
from playground.prompts.fewshot import FewShotConfig
from playground.prompts.templates import TEMPLATES
from playground.ui.data_picker import UPLOAD_HEIGHT, DataPicker, build_data_picker
from playground.ui.i18n import t
from playground.ui.prompt_lab.controls import LabControls
from playground.ui.prompt_lab.views import effective_pool, id_choices, pool_frame, query_choices

DEFAULT_TEST = "classical_chinese_test.json"
# Preset name -> the example format it fills in.
EXAMPLE_FORMATS = {
    "user_assistant": FewShotConfig().example_template,
    "numbered": "{index}. {instruction}{input}\nAnswer: {output}",
    "qa": "Q: {instruction}{input}\nA: {output}",
}
SEPARATORS = [("newline", "\n"), ("blank_line", "\n\n"), ("space", " ")]
SELECTIONS = ("first", "last", "random", "similar", "manual")


@dataclass
class DataSection:
    test_set: DataPicker
    references: gr.File
    test_info: gr.Markdown
    train_set: DataPicker


@dataclass
class PromptSection:
    template: gr.Dropdown
    custom: gr.Textbox
    system: gr.Textbox
    suffix: gr.Textbox


@dataclass
class ExamplesSection:
    k: gr.Slider
    seed: gr.Number
    selection: gr.Radio
    preset: gr.Dropdown
    separator: gr.Dropdown
    example_format: gr.Textbox
    manual_box: gr.Column
    manual_ids: gr.Dropdown
    pool_table: gr.Dataframe


@dataclass
class CotSection:
    cot: gr.Checkbox
    trigger: gr.Textbox
    worked: gr.Textbox


@dataclass
class TrySection:
    query: gr.Dropdown
    query_info: gr.Markdown
    preview: gr.Textbox
    preview_info: gr.Markdown
    max_new: gr.Slider
    try_button: gr.Button
    stop_button: gr.Button
    answer: gr.Textbox
    stats: gr.Markdown


@dataclass
class RecipeSection:
    name: gr.Textbox
    save: gr.Button
    recipes: gr.Dropdown
    load: gr.Button
    status: gr.Markdown


@dataclass
class EvaluateSection:
    metrics: gr.CheckboxGroup
    ks: gr.Textbox
    seeds: gr.Textbox
    limit: gr.Number
    start: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    summary: gr.Dataframe
    chart_metric: gr.Dropdown
    chart: gr.Plot


@dataclass
class LabPage:
    """Every section of the tab, and the values kept per session."""

    model_info: gr.Markdown
    data: DataSection
    prompt: PromptSection
    examples: ExamplesSection
    cot: CotSection
    trial: TrySection
    recipes: RecipeSection
    evaluate: EvaluateSection
    test_state: gr.State
    pool_state: gr.State
    sweep_state: gr.State

    @property
    def controls(self) -> list[Any]:
        """The builder's inputs, in LabControls' field order."""
        p, e, c = self.prompt, self.examples, self.cot
        by_field = {
            "template": p.template,
            "custom": p.custom,
            "system": p.system,
            "system_suffix": p.suffix,
            "example_template": e.example_format,
            "separator": e.separator,
            "k": e.k,
            "selection": e.selection,
            "seed": e.seed,
            "manual_ids": e.manual_ids,
            "cot": c.cot,
            "cot_trigger": c.trigger,
            "cot_example": c.worked,
        }
        return [by_field[f.name] for f in fields(LabControls)]

    @property
    def preview_inputs(self) -> list[Any]:
        return [*self.controls, self.test_state, self.pool_state, self.trial.query, self.trial.max_new]

    @property
    def preview_outputs(self) -> list[Any]:
        return [self.trial.preview, self.trial.preview_info, self.trial.query_info, self.model_info]


def build_data_section(test: Dataset | None, default_train: str) -> DataSection:
    with gr.Accordion(t("prompt_lab.data"), open=True):
        test_set = build_data_picker(
            "Test set",
            DEFAULT_TEST,
            elem_id="lab-test",
            labels=(t("prompt_lab.test_set.example"), t("prompt_lab.test_set.upload")),
        )
        references = gr.File(label=t("prompt_lab.references"), height=UPLOAD_HEIGHT, elem_id="lab-refs")
        # Filled in the page's language when the page opens.
        test_info = gr.Markdown(elem_id="lab-test-info")
        train_set = build_data_picker(
            "Examples from",
            default_train,
            elem_id="lab-train",
            allow_none=True,
            labels=(t("prompt_lab.train_set.example"), t("prompt_lab.train_set.upload")),
            none_label=t("prompt_lab.train_set.none"),
        )
        gr.Markdown(t("prompt_lab.train_set.note"))
    return DataSection(test_set, references, test_info, train_set)


def build_prompt_section(defaults: LabControls) -> PromptSection:
    with gr.Accordion(t("prompt_lab.prompt"), open=True):
        template = gr.Dropdown(
            [(t(f"prompt_lab.template.{tmpl.name}"), tmpl.name) for tmpl in TEMPLATES.values()]
            + [(t("prompt_lab.template.custom"), "custom")],
            value=defaults.template,
            label=t("prompt_lab.template"),
            elem_id="lab-template",
        )
        custom = gr.Textbox(
            label=t("prompt_lab.custom"),
            lines=2,
            # Template syntax, the same in every language.
            placeholder="{system}{examples}USER: {instruction}{input} ASSISTANT:",
            visible=False,
            elem_id="lab-custom",
        )
        system = gr.Textbox(label=t("prompt_lab.system"), lines=2, elem_id="lab-system")
        suffix = gr.Textbox(
            label=t("prompt_lab.suffix"), placeholder=t("prompt_lab.suffix.placeholder"), elem_id="lab-suffix"
        )
    return PromptSection(template, custom, system, suffix)


def build_examples_section(defaults: LabControls, pool: list) -> ExamplesSection:
    with gr.Accordion(t("prompt_lab.examples"), open=True):
        with gr.Row():
            k = gr.Slider(0, 10, value=defaults.k, step=1, label=t("prompt_lab.k"), elem_id="lab-k")
            seed = gr.Number(defaults.seed, label=t("prompt_lab.seed"), precision=0, elem_id="lab-seed")
        selection = gr.Radio(
            [(t(f"prompt_lab.selection.{name}"), name) for name in SELECTIONS],
            value=defaults.selection,
            label=t("prompt_lab.selection"),
            elem_id="lab-selection",
        )
        with gr.Row():
            preset = gr.Dropdown(
                [(t(f"prompt_lab.format.{name}"), name) for name in EXAMPLE_FORMATS],
                value=None,
                label=t("prompt_lab.format_preset"),
                elem_id="lab-format-preset",
            )
            separator = gr.Dropdown(
                [(t(f"prompt_lab.separator.{name}"), value) for name, value in SEPARATORS],
                value=defaults.separator,
                label=t("prompt_lab.separator"),
                allow_custom_value=True,
                elem_id="lab-separator",
            )
        example_format = gr.Textbox(
            defaults.example_template,
            label=t("prompt_lab.example_format"),
            lines=2,
            elem_id="lab-example-format",
        )
        gr.Markdown(t("prompt_lab.example_format.note"))
        with gr.Column(visible=False) as manual_box:
            manual_ids = gr.Dropdown(
                id_choices(pool),
                value=[],
                multiselect=True,
                allow_custom_value=True,
                label=t("prompt_lab.manual_ids"),
                elem_id="lab-manual-ids",
            )
            pool_table = gr.Dataframe(
                pool_frame(pool),
                label=t("prompt_lab.pool_table"),
                interactive=False,
                wrap=True,
                max_height=320,
                elem_id="lab-pool-table",
            )
    return ExamplesSection(
        k, seed, selection, preset, separator, example_format, manual_box, manual_ids, pool_table
    )


def build_cot_section(defaults: LabControls) -> CotSection:
    with gr.Accordion(t("prompt_lab.cot"), open=False):
        cot = gr.Checkbox(defaults.cot, label=t("prompt_lab.cot"), elem_id="lab-cot")
        trigger = gr.Textbox(defaults.cot_trigger, label=t("prompt_lab.trigger"), elem_id="lab-trigger")
        worked = gr.Textbox(label=t("prompt_lab.worked"), lines=4, elem_id="lab-worked")
    return CotSection(cot, trigger, worked)


def build_try_section(test: Dataset | None) -> TrySection:
    query = gr.Dropdown(
        query_choices(test), value=0 if test else None, label=t("prompt_lab.query"), elem_id="lab-query"
    )
    query_info = gr.Markdown(elem_id="lab-query-info")
    preview = gr.Textbox(
        label=t("prompt_lab.preview"), lines=14, max_lines=40, interactive=False, elem_id="lab-preview"
    )
    preview_info = gr.Markdown(elem_id="lab-preview-info")
    max_new = gr.Slider(1, 1024, value=128, step=1, label=t("prompt_lab.max_new"), elem_id="lab-max-new")
    with gr.Row():
        try_button = gr.Button(t("prompt_lab.try"), variant="primary", elem_id="lab-try")
        stop_button = gr.Button(t("prompt_lab.stop"), variant="stop", elem_id="lab-stop")
    answer = gr.Textbox(label=t("prompt_lab.answer"), lines=6, interactive=False, elem_id="lab-answer")
    stats = gr.Markdown(elem_id="lab-try-stats")
    return TrySection(
        query, query_info, preview, preview_info, max_new, try_button, stop_button, answer, stats
    )


def build_recipe_section() -> RecipeSection:
    with gr.Accordion(t("prompt_lab.recipes"), open=False):
        with gr.Row():
            name = gr.Textbox(label=t("prompt_lab.recipe_name"), elem_id="lab-recipe-name", scale=2)
            save = gr.Button(t("prompt_lab.save"), elem_id="lab-recipe-save", scale=1)
        with gr.Row():
            recipes = gr.Dropdown(
                [], value=None, label=t("prompt_lab.saved_recipes"), elem_id="lab-recipes", scale=2
            )
            load = gr.Button(t("prompt_lab.load"), elem_id="lab-recipe-load", scale=1)
        status = gr.Markdown(elem_id="lab-recipe-status")
    return RecipeSection(name, save, recipes, load, status)


def build_evaluate_section() -> EvaluateSection:
    with gr.Accordion(t("prompt_lab.evaluate_section"), open=True):
        with gr.Row():
            metrics = gr.CheckboxGroup(
                list(METRIC_GROUPS),
                value=["perplexity"],
                label=t("prompt_lab.metrics"),
                elem_id="lab-metrics",
            )
            ks = gr.Textbox("1, 2, 3", label=t("prompt_lab.ks"), elem_id="lab-ks")
            seeds = gr.Textbox("0, 1, 2", label=t("prompt_lab.seeds"), elem_id="lab-seeds")
            limit = gr.Number(20, label=t("prompt_lab.limit"), precision=0, elem_id="lab-limit")
        with gr.Row():
            start = gr.Button(t("prompt_lab.evaluate"), variant="primary", elem_id="lab-eval")
            cancel = gr.Button(t("prompt_lab.cancel"), variant="stop", elem_id="lab-cancel")
        status = gr.Markdown(elem_id="lab-eval-status")
        # The empty table and chart are drawn in the page's language when the page opens.
        summary = gr.Dataframe(label=t("prompt_lab.summary"), interactive=False, elem_id="lab-summary")
        chart_metric = gr.Dropdown(
            [], label=t("prompt_lab.chart_metric"), elem_id="lab-chart-metric", allow_custom_value=True
        )
        chart = gr.Plot(elem_id="lab-chart")
    return EvaluateSection(metrics, ks, seeds, limit, start, cancel, status, summary, chart_metric, chart)


def build_page(
    model_info: gr.Markdown, test: Dataset | None, pool: Dataset | None, default_train: str
) -> LabPage:
    """The whole tab: builder on the left, the question and its prompt on the right, evaluation below."""
    defaults = LabControls()
    states = gr.State(test), gr.State(pool), gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            data = build_data_section(test, default_train)
            prompt = build_prompt_section(defaults)
            examples = build_examples_section(defaults, effective_pool(test, pool))
            cot = build_cot_section(defaults)
        with gr.Column(scale=1):
            trial = build_try_section(test)
            recipes = build_recipe_section()
    evaluate = build_evaluate_section()
    return LabPage(model_info, data, prompt, examples, cot, trial, recipes, evaluate, *states)
