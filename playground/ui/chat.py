"""Chat tab: streaming answers, stop, regenerate, clear, system prompt, template, decoding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground.bounds import bounded, bounded_int
from playground.context import AppContext
from playground.generation import DecodingSettings, stream_generate
from playground.limits import current_limits
from playground.prompts.templates import TEMPLATES, get_template
from playground.ui.common import GENERATION_EVENT, message_text, user_errors

# One stop flag per browser session: the stop button's handler sets the flag that the
# generation thread of the same session checks between tokens.
_stop_flags: dict[str, threading.Event] = {}


def _session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def decoding_from_ui(
    temperature: float, top_p: float, top_k: int, max_new: int, rep_penalty: float, seed: float | None
) -> DecodingSettings:
    # Values from the API may be anything (NaN, 1e30, a string): bound them before any arithmetic.
    temperature = bounded(temperature, "temperature", 0, 10)
    top_p, top_k = bounded(top_p, "top-p", 0, 1), bounded_int(top_k, "top-k", 0, 100_000)
    max_new = bounded_int(max_new, "max new tokens", 1, 1_000_000)
    current_limits().check_new_tokens(max_new)
    rep_penalty = bounded(rep_penalty, "repetition penalty", 0.01, 100)
    seed = None if seed is None else bounded(seed, "seed", -1, 2**63 - 1)
    return DecodingSettings(
        do_sample=temperature > 0,
        temperature=float(temperature) if temperature > 0 else 1.0,
        top_p=float(top_p),
        top_k=int(top_k),
        max_new_tokens=int(max_new),
        repetition_penalty=float(rep_penalty),
        seed=None if seed is None or seed < 0 else int(seed),
    ).validate()


def build_chat_tab(ctx: AppContext, chat_adapter: gr.State | None = None) -> None:
    """`chat_adapter` is the session's adapter pick (the model bar's), None for the base model."""
    chat_adapter = chat_adapter if chat_adapter is not None else gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", height=460, elem_id="chatbot", buttons=["copy"])
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a message and press Enter",
                    show_label=False,
                    scale=6,
                    elem_id="chat-input",
                    autofocus=True,
                )
                send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
                clear = gr.Button("Clear", elem_id="chat-clear")
            stats = gr.Markdown("", elem_id="chat-stats")
        with gr.Column(scale=2):
            system = gr.Textbox(label="System prompt", lines=3, elem_id="chat-system")
            template = gr.Dropdown(
                [(f"{t.name}: {t.notes}", t.name) for t in TEMPLATES.values()]
                + [("custom (below)", "custom")],
                value="chat",
                label="Prompt template",
            )
            custom = gr.Textbox(
                label="Custom template ({system}, {instruction}, {input})",
                lines=2,
                visible=False,
            )
            temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)")
            top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p")
            top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
            max_new = gr.Slider(1, 2048, value=256, step=1, label="Max new tokens", elem_id="chat-max-new")
            rep = gr.Slider(0.8, 2, value=1.0, step=0.05, label="Repetition penalty")
            seed = gr.Number(0, label="Seed (-1 = random)", precision=0)
            preview = gr.Textbox(label="Last prompt sent to the model", lines=4, interactive=False)

    template.change(lambda t: gr.update(visible=t == "custom"), template, custom)
    decoding = [temperature, top_p, top_k, max_new, rep, seed]

    @user_errors
    def respond(
        history: list[dict[str, Any]],
        system_text: str,
        template_name: str,
        custom_text: str,
        temperature: float,
        top_p: float,
        top_k: int,
        max_new: int,
        rep_penalty: float,
        seed: float | None,
        adapter: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[list[dict[str, Any]], str, str]]:
        settings = decoding_from_ui(temperature, top_p, top_k, max_new, rep_penalty, seed)
        if not history or history[-1]["role"] != "user":
            yield history, "", ""
            return
        past = [{"role": m["role"], "content": message_text(m["content"])} for m in history[:-1]]
        user_text = message_text(history[-1]["content"])
        stop_flag = threading.Event()
        _stop_flags[_session_key(request)] = stop_flag
        with ctx.models.use() as loaded:
            template_obj = (
                get_template(custom_text) if template_name == "custom" else get_template(template_name)
            )
            if template_name == "chat" or (template_name != "custom" and template_obj.uses_chat_template):
                template_obj = loaded.default_template if template_name == "chat" else template_obj
            system_arg = system_text if system_text.strip() else None
            prompt = template_obj.render_conversation(past, user_text, system_arg, loaded.tokenizer)
            history = history + [{"role": "assistant", "content": ""}]
            owner = _session_key(request)
            for update in stream_generate(loaded, prompt, settings, stop_flag, adapter, owner):
                history[-1]["content"] = update.text
                yield history, update.stats_line(), prompt

    def add_user(text: str, history: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        if not text.strip():
            return "", history
        return "", (history or []) + [{"role": "user", "content": text}]

    def drop_last_answer(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        history = list(history or [])
        while history and history[-1]["role"] == "assistant":
            history.pop()
        return history

    def on_stop(request: gr.Request) -> None:
        flag = _stop_flags.get(_session_key(request))
        if flag:
            flag.set()

    inputs = [chatbot, system, template, custom, *decoding, chat_adapter]
    outputs = [chatbot, stats, preview]
    run = dict(fn=respond, inputs=inputs, outputs=outputs, **GENERATION_EVENT)
    submit_event = message.submit(add_user, [message, chatbot], [message, chatbot], queue=False).then(**run)
    send_event = send.click(add_user, [message, chatbot], [message, chatbot], queue=False).then(**run)
    regen_event = regenerate.click(drop_last_answer, chatbot, chatbot, queue=False).then(**run)
    stop.click(on_stop, None, None, queue=False)
    clear.click(lambda: ([], "", ""), None, outputs, queue=False)

    def chat(
        message: str,
        system: str = "",
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        seed: int = 0,
    ) -> Iterator[str]:
        """One-turn chat for scripts: streams the growing answer of the resident model (no adapter)."""
        settings = decoding_from_ui(temperature, 0.9, 50, max_new_tokens, 1.0, seed)
        with ctx.models.use() as loaded:
            prompt = loaded.default_template.render(
                message, system=system or None, tokenizer=loaded.tokenizer
            )
            for update in stream_generate(loaded, prompt, settings):
                yield update.text

    gr.api(user_errors(chat), api_name="chat", **GENERATION_EVENT)
    del submit_event, send_event, regen_event
