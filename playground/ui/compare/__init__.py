"""Side-by-side tab: the shared template and system controls over three sub-tabs, decoding columns
(`decoding`), base model vs adapters (`adapters`) and the token explorer (`explorer`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.prompts.templates import TEMPLATES
from playground.ui.compare.adapters import build_adapters_tab
from playground.ui.compare.decoding import build_decoding_tab
from playground.ui.compare.explorer import build_explorer_tab
from playground.ui.compare.shared import MODEL_DEFAULT, SharedControls
from playground.ui.i18n import t
from playground.ui.session_stop import session_runs_state

__all__ = ["build_compare_tab"]


def template_choices() -> list[tuple[Any, str]]:
    return (
        [(t("compare.template.model_default"), MODEL_DEFAULT)]
        + [(f"{tpl.name}: {tpl.notes}", tpl.name) for tpl in TEMPLATES.values()]
        + [(t("compare.template.custom"), "custom")]
    )


def custom_box_shown(template: str) -> Any:
    return gr.update(visible=template == "custom")


def build_shared_controls() -> SharedControls:
    gr.Markdown(t("compare.intro"))
    with gr.Row():
        template = gr.Dropdown(
            template_choices(), value=MODEL_DEFAULT, label=t("compare.template"), elem_id="compare-template"
        )
        system = gr.Textbox(label=t("compare.system"), lines=1, elem_id="compare-system")
    custom = gr.Textbox(label=t("compare.custom"), lines=2, visible=False)
    template.change(custom_box_shown, template, custom)
    return SharedControls(template, custom, system, session_runs_state())


def build_compare_tab(ctx: AppContext) -> None:
    shared = build_shared_controls()
    with gr.Tabs():
        with gr.Tab(t("compare.tab.decoding"), id="compare-decoding"):
            build_decoding_tab(ctx, shared)
        with gr.Tab(t("compare.tab.adapters"), id="compare-adapters"):
            build_adapters_tab(ctx, shared)
        with gr.Tab(t("explorer.tab"), id="compare-explorer"):
            build_explorer_tab(ctx, shared)
