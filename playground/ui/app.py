"""Builds the whole Blocks app from the tab modules."""

from __future__ import annotations

import gradio as gr

from playground.context import AppContext
from playground.ui.chat import build_chat_tab
from playground.ui.model_bar import build_model_bar, model_status

TITLE = "LLM playground"
CSS = """
.masked-token { color: #9ca3af; }
footer { display: none !important; }
"""


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\nCompare instruction-tuned LLMs side by side: chat, prompts, decoding, adapters."
        )
        status = build_model_bar(ctx)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(ctx)
        demo.load(lambda: model_status(ctx), None, status, queue=False)
    return demo


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft(), "css": CSS}
