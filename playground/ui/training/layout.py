"""The Training tab's sections: each builds its components and returns them by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.prompts.templates import TEMPLATES
from playground.training.presets import preset_values
from playground.ui.data_picker import UPLOAD_HEIGHT, DataPicker, build_data_picker
from playground.ui.i18n import t
from playground.ui.training.form import build_settings_form

NO_ADAPTER = "(none)"


def _picker(key: str, default: str, elem_id: str, allow_none: bool = False) -> DataPicker:
    return build_data_picker(
        "",
        default,
        elem_id=elem_id,
        allow_none=allow_none,
        labels=(t(f"{key}.example"), t(f"{key}.upload")),
        none_label=t("training.none"),
    )


@dataclass
class Source:
    """What to train: the base model, the data and where the adapter goes."""

    model: gr.Textbox
    data: DataPicker
    eval_data: DataPicker
    template: gr.Dropdown
    output: gr.Textbox
    resume_from: gr.Dropdown

    @property
    def inputs(self) -> list[Any]:
        return [
            self.model,
            *self.data.inputs,
            *self.eval_data.inputs,
            self.template,
            self.output,
            self.resume_from,
        ]


def build_source(ctx: AppContext) -> Source:
    return Source(
        model=gr.Textbox(
            ctx.models.current.name if ctx.models.current else "smollm2-135m-instruct",
            label=t("training.model"),
            elem_id="train-model",
        ),
        data=_picker("training.data", "poem_continuation_train.json", "train-data"),
        eval_data=_picker("training.eval_data", "", "train-eval", allow_none=True),
        template=gr.Dropdown(
            [x.name for x in TEMPLATES.values()], value="alpaca", label=t("training.template")
        ),
        output=gr.Textbox(
            label=t("training.output.label"),
            placeholder=t("training.output.placeholder"),
            elem_id="train-output",
        ),
        resume_from=gr.Dropdown(
            [(t("training.none"), NO_ADAPTER)], value=NO_ADAPTER, label=t("training.resume_from")
        ),
    )


@dataclass
class Settings:
    preset: gr.Dropdown
    form: list[gr.components.Component]


def build_settings(presets: dict[str, dict[str, Any]], gpu: bool) -> Settings:
    first = next(iter(presets))
    preset = gr.Dropdown(
        [(t(f"training.preset.{name}"), name) for name in presets],
        value=first,
        label=t("training.preset"),
        elem_id="train-preset",
    )
    return Settings(preset, build_settings_form(preset_values(first), gpu))


@dataclass
class Monitor:
    """The buttons that drive a job, and what shows how it goes."""

    preview_btn: gr.Button
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    preview: gr.HTML
    job_id: gr.State
    offset: gr.State
    progress: gr.State
    status: gr.Markdown
    chart: gr.Plot
    log: gr.Textbox
    jobs_table: gr.Dataframe
    timer: gr.Timer


def build_monitor() -> Monitor:
    with gr.Row():
        preview_btn = gr.Button(t("training.preview"), elem_id="train-preview")
        start = gr.Button(t("training.start"), variant="primary", elem_id="train-start")
        stop = gr.Button(t("training.stop"), variant="stop", elem_id="train-stop")
        resume = gr.Button(t("training.resume"), elem_id="train-resume")
    return Monitor(
        preview_btn=preview_btn,
        start=start,
        stop=stop,
        resume=resume,
        preview=gr.HTML(elem_id="train-preview-html"),
        job_id=gr.State(None),
        offset=gr.State(0),
        progress=gr.State(None),
        status=gr.Markdown(elem_id="train-status"),
        chart=gr.Plot(label=t("training.chart"), elem_id="train-chart"),
        log=gr.Textbox(label=t("training.log"), lines=6, interactive=False, elem_id="train-log"),
        jobs_table=gr.Dataframe(label=t("training.jobs"), interactive=False, elem_id="train-jobs"),
        timer=gr.Timer(2.0, active=False),
    )


@dataclass
class Adapters:
    """Saved adapters, one's curve, and its evaluation against the base model."""

    table: gr.Dataframe
    refresh: gr.Button
    chart: gr.Plot
    selected: gr.State
    test_set: DataPicker
    refs: gr.File
    limit: gr.Number
    evaluate: gr.Button
    result: gr.Markdown


def build_adapters() -> Adapters:
    gr.Markdown(t("training.adapters.heading"))
    table = gr.Dataframe(label=t("training.adapters"), interactive=False, elem_id="train-adapters")
    refresh = gr.Button(t("training.refresh"), size="sm")
    chart = gr.Plot(label=t("training.adapter_curve"))
    selected = gr.State(None)
    with gr.Accordion(t("training.evaluate.heading"), open=True):
        test_set = _picker("training.test_set", "poem_continuation_test.json", "train-eval-test")
        refs = gr.File(
            label=t("training.evaluate.refs"),
            file_types=[".txt"],
            height=UPLOAD_HEIGHT,
            elem_id="train-eval-refs",
        )
        with gr.Row():
            limit = gr.Number(20, label=t("training.evaluate.limit"), precision=0)
            evaluate = gr.Button(t("training.evaluate"), variant="primary", elem_id="train-evaluate")
        result = gr.Markdown(elem_id="train-evaluate-status")
    return Adapters(table, refresh, chart, selected, test_set, refs, limit, evaluate, result)


@dataclass
class Export:
    """Taking the selected adapter out: a zip, a merged model, or a push to the Hub."""

    zip: gr.Button
    merge: gr.Button
    status: gr.Markdown
    file: gr.File
    repo: gr.Textbox
    token: gr.Textbox
    what: gr.Radio
    push: gr.Button


def build_export() -> Export:
    with gr.Accordion(t("training.export.heading"), open=False, elem_id="train-export"):
        with gr.Row():
            zip_btn = gr.Button(t("training.export.zip"), elem_id="train-export-zip")
            merge = gr.Button(t("training.export.merge"), elem_id="train-export-merge")
        status = gr.Markdown(elem_id="train-export-status")
        file = gr.File(label=t("training.export.file"), interactive=False, elem_id="train-export-file")
        with gr.Row():
            repo = gr.Textbox(label=t("training.export.repo"), elem_id="train-push-repo")
            token = gr.Textbox(label=t("training.export.token"), type="password", elem_id="train-push-token")
            what = gr.Radio(
                [
                    (t("training.export.what.adapter"), "adapter"),
                    (t("training.export.what.merged"), "merged"),
                ],
                value="adapter",
                label=t("training.export.what"),
            )
        push = gr.Button(t("training.export.push"), elem_id="train-push")
    return Export(zip_btn, merge, status, file, repo, token, what, push)
