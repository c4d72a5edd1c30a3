"""The Chat tab's layout in sections: the conversation, the prompt settings, the decoding knobs."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.prompts.templates import TEMPLATES
from playground.ui.i18n import t


@dataclass
class Conversation:
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    regenerate: gr.Button
    continue_btn: gr.Button
    clear: gr.Button
    copy_md: gr.Button
    stats: gr.Markdown
    past: gr.Dropdown
    markdown: gr.Textbox
    # Why a click started nothing (busy, queued, nothing to continue): the stats line is the
    # running answer's, so this says it apart.
    notice: gr.Markdown


@dataclass
class PromptSettings:
    system: gr.Textbox
    template: gr.Dropdown
    custom: gr.Textbox


@dataclass
class Decoding:
    defaults_md: gr.Markdown
    temperature: gr.Slider
    top_p: gr.Slider
    top_k: gr.Slider
    min_p: gr.Slider
    typical_p: gr.Slider
    max_new: gr.Slider
    rep: gr.Slider
    seed: gr.Number
    stops: gr.Textbox
    model_defaults: gr.Button

    def knobs(self) -> list[gr.components.Component]:
        """The inputs of a turn, in the order the handlers take them."""
        return [
            self.temperature,
            self.top_p,
            self.top_k,
            self.min_p,
            self.typical_p,
            self.max_new,
            self.rep,
            self.seed,
            self.stops,
        ]

    def model_values(self) -> list[gr.components.Component]:
        """What the model's defaults fill in (the stop strings stay the user's)."""
        return self.knobs()[:-1] + [self.defaults_md]


@dataclass
class ChatLayout:
    conversation: Conversation
    prompt: PromptSettings
    decoding: Decoding
    preview: gr.Textbox


def build_layout() -> ChatLayout:
    with gr.Row():
        with gr.Column(scale=3):
            conversation = build_conversation()
        with gr.Column(scale=2):
            prompt = build_prompt_settings()
            with gr.Accordion(t("chat.decoding"), open=True):
                decoding = build_decoding()
            preview = gr.Textbox(label=t("chat.preview"), lines=4, interactive=False)
    return ChatLayout(conversation, prompt, decoding, preview)


def build_conversation() -> Conversation:
    chatbot = gr.Chatbot(
        label=t("chat.chatbot"),
        height=460,
        elem_id="chatbot",
        buttons=["copy", "copy_all"],
        editable="user",
    )
    with gr.Row():
        message = gr.Textbox(
            placeholder=t("chat.input.placeholder"),
            show_label=False,
            scale=6,
            elem_id="chat-input",
            autofocus=True,
        )
        send = gr.Button(t("chat.send"), variant="primary", scale=1, elem_id="chat-send")
    with gr.Row():
        stop = gr.Button(t("chat.stop"), variant="stop", elem_id="chat-stop")
        regenerate = gr.Button(t("chat.regenerate"), elem_id="chat-regenerate")
        continue_btn = gr.Button(t("chat.continue"), elem_id="chat-continue")
        clear = gr.Button(t("chat.clear"), elem_id="chat-clear")
        copy_md = gr.Button(t("chat.copy_markdown"), elem_id="chat-copy-md")
    notice = gr.Markdown("", elem_id="chat-notice")
    stats = gr.Markdown("", elem_id="chat-stats")
    with gr.Row():
        past = gr.Dropdown(
            [], value=None, label=t("chat.past"), elem_id="chat-past", scale=4, interactive=True
        )
    markdown = gr.Textbox(
        label=t("chat.markdown"), lines=4, visible=False, buttons=["copy"], elem_id="chat-markdown"
    )
    return Conversation(
        chatbot, message, send, stop, regenerate, continue_btn, clear, copy_md, stats, past, markdown, notice
    )


def build_prompt_settings() -> PromptSettings:
    system = gr.Textbox(label=t("chat.system"), lines=3, elem_id="chat-system")
    template = gr.Dropdown(
        [(t(f"chat.template.{name}"), name) for name in TEMPLATES] + [(t("chat.template.custom"), "custom")],
        value="chat",
        label=t("chat.template"),
        elem_id="chat-template",
    )
    custom = gr.Textbox(label=t("chat.custom_template"), lines=2, visible=False)
    return PromptSettings(system, template, custom)


def build_decoding() -> Decoding:
    defaults_md = gr.Markdown("", elem_id="chat-defaults-info")
    temperature = gr.Slider(
        0, 2, value=0.7, step=0.05, label=t("chat.temperature"), elem_id="chat-temperature"
    )
    top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label=t("chat.top_p"), elem_id="chat-top-p")
    top_k = gr.Slider(0, 200, value=50, step=1, label=t("chat.top_k"), elem_id="chat-top-k")
    min_p = gr.Slider(
        0, 0.5, value=0.0, step=0.01, label=t("chat.min_p"), info=t("chat.min_p.info"), elem_id="chat-min-p"
    )
    typical_p = gr.Slider(
        0.05,
        1,
        value=1.0,
        step=0.05,
        label=t("chat.typical_p"),
        info=t("chat.typical_p.info"),
        elem_id="chat-typical-p",
    )
    max_new = gr.Slider(1, 2048, value=256, step=1, label=t("chat.max_new"), elem_id="chat-max-new")
    rep = gr.Slider(0.8, 2, value=1.0, step=0.05, label=t("chat.repetition_penalty"))
    seed = gr.Number(-1, label=t("chat.seed"), precision=0, elem_id="chat-seed")
    stops = gr.Textbox(label=t("chat.stops"), info=t("chat.stops.info"), lines=2, elem_id="chat-stops")
    model_defaults = gr.Button(t("chat.model_defaults"), size="sm", elem_id="chat-model-defaults")
    return Decoding(
        defaults_md, temperature, top_p, top_k, min_p, typical_p, max_new, rep, seed, stops, model_defaults
    )
