"""The token explorer sub-tab's sections: the prompt and decoding knobs, the answers, the charts."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.ui.compare.decoding_settings import mode_choices
from playground.ui.compare.explorer_views import CLICK_JS, CSS
from playground.ui.compare.shared import build_instruction_row
from playground.ui.i18n import t

MAX_NEW = 256


@dataclass
class ExplorerControls:
    instruction: gr.Textbox
    extra: gr.Textbox
    knobs: list[
        gr.components.Component
    ]  # mode, temperature, top-k, top-p, min-p, rep. penalty, max new, seed
    run: gr.Button
    answers: gr.HTML
    info: gr.Markdown
    chart: gr.Plot
    branch_token: gr.Dropdown
    branch: gr.Button
    entropy: gr.Plot
    state: gr.State  # the session's ExplorerSession (None before the first answer)


def build_prompt_and_knobs() -> tuple[gr.Textbox, gr.Textbox, list[gr.components.Component], gr.Button]:
    gr.Markdown(t("explorer.intro"))
    instruction, extra = build_instruction_row("explorer", 2, "床前明月光，")
    with gr.Row(equal_height=True):
        knobs = [
            gr.Radio(mode_choices()[:2], value="sample", label=t("explorer.mode"), elem_id="explorer-mode"),
            gr.Slider(
                0.05, 2, value=0.7, step=0.05, label=t("explorer.temperature"), elem_id="explorer-temperature"
            ),
            gr.Slider(0, 200, value=50, step=1, label=t("explorer.top_k"), elem_id="explorer-top-k"),
            gr.Slider(0.05, 1, value=0.9, step=0.05, label=t("explorer.top_p"), elem_id="explorer-top-p"),
            gr.Slider(0, 0.5, value=0.0, step=0.01, label=t("explorer.min_p"), elem_id="explorer-min-p"),
            gr.Slider(
                0.8, 2, value=1.0, step=0.05, label=t("explorer.repetition_penalty"), elem_id="explorer-rep"
            ),
            gr.Slider(1, MAX_NEW, value=48, step=1, label=t("explorer.max_new"), elem_id="explorer-max-new"),
            gr.Number(0, label=t("explorer.seed"), precision=0, elem_id="explorer-seed"),
        ]
    run = gr.Button(t("explorer.run"), variant="primary", elem_id="explorer-run")
    return instruction, extra, knobs, run


def build_answers() -> tuple[gr.HTML, gr.Markdown]:
    gr.Markdown(t("explorer.answers"))
    answers = gr.HTML(
        "",
        js_on_load=CLICK_JS,
        css_template=CSS,
        elem_id="explorer-answers",
    )
    info = gr.Markdown("", elem_id="explorer-info")
    return answers, info


def build_step_view() -> tuple[gr.Plot, gr.Dropdown, gr.Button]:
    chart = gr.Plot(label=t("explorer.chart"), elem_id="explorer-chart")
    with gr.Row(equal_height=True):
        token = gr.Dropdown([], label=t("explorer.branch_token"), scale=3, elem_id="explorer-branch-token")
        branch = gr.Button(t("explorer.branch"), scale=1, elem_id="explorer-branch")
    return chart, token, branch


def build_explorer_layout() -> ExplorerControls:
    instruction, extra, knobs, run = build_prompt_and_knobs()
    answers, info = build_answers()
    with gr.Row():
        with gr.Column(scale=3):
            chart, token, branch = build_step_view()
        with gr.Column(scale=2):
            entropy = gr.Plot(label=t("explorer.entropy"), elem_id="explorer-entropy")
    state = gr.State(None)
    return ExplorerControls(
        instruction, extra, knobs, run, answers, info, chart, token, branch, entropy, state
    )
