"""Side-by-side tab: the shared template and system controls over two sub-tabs."""

from __future__ import annotations

import gradio as gr

from playground.context import AppContext
from playground.prompts.templates import TEMPLATES
from playground.ui.common import cancel_on_close
from playground.ui.compare_adapters import build_adapters_tab
from playground.ui.compare_decoding import build_decoding_tab
from playground.ui.compare_shared import MODEL_DEFAULT, stop_flags


def build_compare_tab(ctx: AppContext) -> None:
    gr.Markdown(
        "One prompt, several columns of decoding settings, all on the same seed, so that a difference "
        "between columns is the setting's and not luck's. Greedy and sampling columns share one batched "
        "generate call; each beam setting runs on its own."
    )
    with gr.Row():
        template = gr.Dropdown(
            [(f"{MODEL_DEFAULT}: the loaded model's own", MODEL_DEFAULT)]
            + [(f"{t.name}: {t.notes}", t.name) for t in TEMPLATES.values()]
            + [("custom (below)", "custom")],
            value=MODEL_DEFAULT,
            label="Prompt template",
            elem_id="compare-template",
        )
        system = gr.Textbox(label="System prompt (optional)", lines=1, elem_id="compare-system")
    custom = gr.Textbox(label="Custom template ({system}, {instruction}, {input})", lines=2, visible=False)
    template.change(lambda t: gr.update(visible=t == "custom"), template, custom)
    shared = (template, custom, system)
    cancel_on_close(stop_flags)
    with gr.Tabs():
        with gr.Tab("Decoding side by side", id="compare-decoding"):
            build_decoding_tab(ctx, shared)
        with gr.Tab("Base model vs adapters", id="compare-adapters"):
            build_adapters_tab(ctx, shared)
