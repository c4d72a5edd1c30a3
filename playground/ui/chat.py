"""Chat tab: streaming answers, stop, regenerate, continue, edit, history, system prompt, decoding."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import gradio as gr
from gradio.context import Context

from playground import chat_history
from playground.bounds import bounded, bounded_int
from playground.context import AppContext
from playground.generation import DecodingSettings, stream_generate
from playground.generation.model_defaults import model_decoding
from playground.generation.stops import parse_stop_lines
from playground.limits import current_limits
from playground.prompts.templates import TEMPLATES, default_system_text, resolve_template
from playground.ui.chat_session import ChatSession, forget, session_for
from playground.ui.common import GENERATION_EVENT, message_text, user_errors

ANSWER, CONTINUE = "answer", "continue"
BUSY = "An answer is on its way: wait for it or press Stop."
COPY_JS = "(text) => { navigator.clipboard.writeText(text || ''); return text; }"


def _session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def _session(request: gr.Request | None) -> ChatSession:
    return session_for(_session_key(request))


def decoding_from_ui(
    temperature: float,
    top_p: float,
    top_k: int,
    max_new: int,
    rep_penalty: float,
    seed: float | None,
    min_p: float = 0.0,
    typical_p: float = 1.0,
    stop: tuple[str, ...] = (),
) -> DecodingSettings:
    # Values from the API may be anything (NaN, 1e30, a string): bound them before any arithmetic.
    temperature = bounded(temperature, "temperature", 0, 10)
    top_p, top_k = bounded(top_p, "top-p", 0, 1), bounded_int(top_k, "top-k", 0, 100_000)
    max_new = bounded_int(max_new, "max new tokens", 1, 1_000_000)
    current_limits().check_new_tokens(max_new)
    rep_penalty = bounded(rep_penalty, "repetition penalty", 0.01, 100)
    seed = None if seed is None else bounded(seed, "seed", -1, 2**63 - 1)
    min_p = bounded(min_p or 0.0, "min-p", 0, 1)
    typical_p = bounded(1.0 if typical_p is None else typical_p, "typical-p", 0, 1)
    return DecodingSettings(
        do_sample=temperature > 0,
        temperature=float(temperature) if temperature > 0 else 1.0,
        top_p=float(top_p),
        top_k=int(top_k),
        max_new_tokens=int(max_new),
        repetition_penalty=float(rep_penalty),
        seed=None if seed is None or seed < 0 else int(seed),
        min_p=float(min_p or 0.0),
        typical_p=float(typical_p if typical_p is not None else 1.0),
        stop=tuple(stop),
    ).validate()


def with_drawn_seed(settings: DecodingSettings) -> DecodingSettings:
    """A random seed is drawn here, so the page can show it and the answer can be repeated."""
    return settings if settings.seed is not None else settings.with_(seed=random.randrange(2**31))


def plain_history(history: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for m in history or []
        if m.get("role") in ("user", "assistant")
    ]


def _owner(request: gr.Request | None, browser_id: str | None) -> str | None:
    return chat_history.owner_name(getattr(request, "username", None), browser_id)


def _past_choices(owner: str | None) -> list[tuple[str, str]]:
    return [(c.title, c.id) for c in chat_history.list_conversations(owner)] if owner else []


def build_chat_tab(ctx: AppContext, chat_adapter: gr.State | None = None) -> None:
    """`chat_adapter` is the session's adapter pick (the model bar's), None for the base model."""
    chat_adapter = chat_adapter if chat_adapter is not None else gr.State(None)
    page = Context.root_block
    browser_id = gr.BrowserState(
        None, storage_key="playground-chat-browser", secret=chat_history.browser_secret()
    )
    conversation = gr.State(None)
    # What this click started: ANSWER, CONTINUE, or "" when it was queued or refused.
    claimed = gr.State("")
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Chat",
                height=460,
                elem_id="chatbot",
                buttons=["copy", "copy_all"],
                editable="user",
            )
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a message and press Enter (one sent while an answer streams waits its turn)",
                    show_label=False,
                    scale=6,
                    elem_id="chat-input",
                    autofocus=True,
                )
                send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="chat-stop")
                regenerate = gr.Button("Regenerate", elem_id="chat-regenerate")
                continue_btn = gr.Button("Continue", elem_id="chat-continue")
                clear = gr.Button("New chat", elem_id="chat-clear")
                copy_md = gr.Button("Copy as Markdown", elem_id="chat-copy-md")
            stats = gr.Markdown("", elem_id="chat-stats")
            with gr.Row():
                past = gr.Dropdown(
                    [], value=None, label="Your earlier chats", elem_id="chat-past", scale=4, interactive=True
                )
            markdown = gr.Textbox(
                label="This chat as Markdown (copied to the clipboard)",
                lines=4,
                visible=False,
                buttons=["copy"],
                elem_id="chat-markdown",
            )
        with gr.Column(scale=2):
            system = gr.Textbox(label="System prompt", lines=3, elem_id="chat-system")
            template = gr.Dropdown(
                [(f"{t.name}: {t.notes}", t.name) for t in TEMPLATES.values()]
                + [("custom (below)", "custom")],
                value="chat",
                label="Prompt template",
                elem_id="chat-template",
            )
            custom = gr.Textbox(
                label="Custom template ({system}, {instruction}, {input})",
                lines=2,
                visible=False,
            )
            with gr.Accordion("Decoding", open=True):
                defaults_md = gr.Markdown("", elem_id="chat-defaults-info")
                temperature = gr.Slider(
                    0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)", elem_id="chat-temperature"
                )
                top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p", elem_id="chat-top-p")
                top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)", elem_id="chat-top-k")
                min_p = gr.Slider(
                    0,
                    0.5,
                    value=0.0,
                    step=0.01,
                    label="Min-p (0 = off)",
                    info="Drops tokens less likely than min-p × the top token's probability.",
                    elem_id="chat-min-p",
                )
                typical_p = gr.Slider(
                    0.05,
                    1,
                    value=1.0,
                    step=0.05,
                    label="Typical-p (1 = off)",
                    info="Keeps the tokens whose surprise is closest to the average surprise.",
                    elem_id="chat-typical-p",
                )
                max_new = gr.Slider(
                    1, 2048, value=256, step=1, label="Max new tokens", elem_id="chat-max-new"
                )
                rep = gr.Slider(0.8, 2, value=1.0, step=0.05, label="Repetition penalty")
                seed = gr.Number(
                    -1,
                    label="Seed (-1 = a new random one each time; the one used is shown under the chat)",
                    precision=0,
                    elem_id="chat-seed",
                )
                stops = gr.Textbox(
                    label="Extra stop strings (one per line, \\n = newline)",
                    info="The template's own next-turn text (e.g. USER:) always stops the answer.",
                    lines=2,
                    elem_id="chat-stops",
                )
                model_defaults = gr.Button("Model defaults", size="sm", elem_id="chat-model-defaults")
            preview = gr.Textbox(label="Last prompt sent to the model", lines=4, interactive=False)

    template.change(lambda t: gr.update(visible=t == "custom"), template, custom)
    decoding = [temperature, top_p, top_k, min_p, typical_p, max_new, rep, seed, stops]

    def answer_turn(
        loaded: Any,
        history: list[dict[str, Any]],
        system_text: str,
        template_name: str,
        custom_text: str,
        values: tuple[Any, ...],
        session: ChatSession,
        extend_last: bool,
        adapter: str | None,
    ) -> Iterator[tuple[list[dict[str, Any]], str, str]]:
        """Stream one answer: to the last user message, or more of the last answer (Continue)."""
        temp, tp, tk, mp, typ, mx, rp, sd, extra, session_key = values
        stop_flag = session.new_stop()
        template_obj = resolve_template(template_name, custom_text, loaded.default_template)
        settings = with_drawn_seed(
            decoding_from_ui(
                temp, tp, tk, mx, rp, sd, mp, typ, template_obj.stop_strings + parse_stop_lines(extra)
            )
        )
        system_arg = system_text if system_text.strip() else None
        question_at = len(history) - (2 if extend_last else 1)
        past = history[:question_at]
        prompt = template_obj.render_conversation(
            past, history[question_at]["content"], system_arg, loaded.tokenizer
        )
        start = history[-1]["content"] if extend_last else ""
        prompt += start
        if not extend_last:
            history.append({"role": "assistant", "content": ""})
        ends = f" · ends at {', '.join(repr(s) for s in settings.stop)}" if settings.stop else ""
        updates = stream_generate(loaded, prompt, settings, stop_flag, adapter, session_key)
        for update in updates:
            history[-1]["content"] = start + update.text
            shown = history + [{"role": "user", "content": t} for t in session.peek()]
            yield shown, f"{update.stats_line()} · seed {settings.seed}{ends}", prompt

    @user_errors
    def respond(
        history: list[dict[str, Any]],
        mode: str,
        system_text: str,
        template_name: str,
        custom_text: str,
        temp: float,
        tp: float,
        tk: int,
        mp: float,
        typ: float,
        mx: int,
        rp: float,
        sd: float | None,
        extra: str,
        adapter: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[Any, Any, Any]]:
        if not mode:  # the click was queued or refused: the running turn answers it
            yield gr.skip(), gr.skip(), gr.skip()
            return
        values = (temp, tp, tk, mp, typ, mx, rp, sd, extra, _session_key(request))
        session = _session(request)
        history = plain_history(history)
        shown_any = False
        try:
            with ctx.models.use() as loaded:
                if mode == CONTINUE and history and history[-1]["role"] == "assistant":
                    for shown in answer_turn(
                        loaded,
                        history,
                        system_text,
                        template_name,
                        custom_text,
                        values,
                        session,
                        True,
                        adapter,
                    ):
                        shown_any = True
                        yield shown
                while True:
                    queued = session.next_messages(bool(history) and history[-1]["role"] == "user")
                    if queued is None:
                        break
                    history += [{"role": "user", "content": t} for t in queued]
                    for shown in answer_turn(
                        loaded,
                        history,
                        system_text,
                        template_name,
                        custom_text,
                        values,
                        session,
                        False,
                        adapter,
                    ):
                        shown_any = True
                        yield shown
        finally:
            session.release()
        if not shown_any:
            yield history, gr.skip(), gr.skip()

    def add_user(text: str, history: list[dict[str, Any]], request: gr.Request):
        if not (text or "").strip():
            return "", gr.skip(), ""
        if not _session(request).send(text):
            gr.Info("Queued: it is answered right after the current answer.")
            return "", gr.skip(), ""
        return "", plain_history(history) + [{"role": "user", "content": text}], ANSWER

    def regenerate_from(history: list[dict[str, Any]], request: gr.Request):
        if not _session(request).claim():
            gr.Warning(BUSY)
            return gr.skip(), ""
        history = plain_history(history)
        while history and history[-1]["role"] == "assistant":
            history.pop()
        return history, ANSWER

    def continue_last(history: list[dict[str, Any]], request: gr.Request):
        history = plain_history(history)
        if not history or history[-1]["role"] != "assistant":
            gr.Warning("There is no answer to continue yet.")
            return gr.skip(), ""
        if not _session(request).claim():
            gr.Warning(BUSY)
            return gr.skip(), ""
        return history, CONTINUE

    def edit_message(history: list[dict[str, Any]], evt: gr.EditData, request: gr.Request):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        history = plain_history(history)
        if not _session(request).claim():
            gr.Warning(BUSY)
            return gr.skip(), ""
        kept = history[:index] + [{"role": "user", "content": message_text(evt.value)}]
        return kept, ANSWER

    def on_stop(request: gr.Request) -> None:
        _session(request).stop.set()

    def save(
        history: list[dict[str, Any]], conversation_id: str | None, browser: str | None, request: gr.Request
    ):
        owner = _owner(request, browser)
        if owner is None:
            return gr.skip(), gr.skip()
        saved = chat_history.save_conversation(owner, conversation_id, plain_history(history))
        return saved, gr.update(choices=_past_choices(owner), value=saved)

    @user_errors
    def open_past(chosen: str | None, current: str | None, browser: str | None, request: gr.Request):
        owner = _owner(request, browser)
        if not chosen or chosen == current or owner is None:
            return gr.skip(), gr.skip(), gr.skip()
        return chat_history.load_conversation(owner, chosen), chosen, ""

    def new_chat(browser: str | None, request: gr.Request):
        return [], None, "", "", gr.update(choices=_past_choices(_owner(request, browser)), value=None)

    def defaults_for_model() -> list[Any]:
        current = ctx.models.current
        name = current.name if current else ""
        config = getattr(getattr(current, "model", None), "generation_config", None)
        chosen = model_decoding(name, config)
        s = chosen.settings
        own_system = default_system_text(current.tokenizer) if current else None
        placeholder = (
            f"Empty: the model's own default system prompt, “{own_system}”"
            if own_system
            else "Empty: no system prompt"
        )
        return [
            s.temperature if s.do_sample else 0,
            s.top_p,
            s.top_k,
            s.min_p,
            s.typical_p,
            s.max_new_tokens,
            s.repetition_penalty,
            -1 if s.seed is None else s.seed,
            f"Defaults for **{name or 'no model'}** from {chosen.source}.",
            gr.update(placeholder=placeholder),
        ]

    defaults_outputs = [temperature, top_p, top_k, min_p, typical_p, max_new, rep, seed, defaults_md, system]
    model_defaults.click(defaults_for_model, None, defaults_outputs, queue=False)

    def on_page_load(browser: str | None, request: gr.Request):
        browser = (
            browser if browser and chat_history.owner_name(None, browser) else chat_history.new_browser_id()
        )
        owner = _owner(request, browser)
        choices = _past_choices(owner)
        latest = choices[0][1] if choices else None
        history = chat_history.load_conversation(owner, latest) if latest else []
        return [browser, history, latest, gr.update(choices=choices, value=latest), *defaults_for_model()]

    page.load(
        on_page_load,
        browser_id,
        [browser_id, chatbot, conversation, past, *defaults_outputs],
        queue=False,
    )

    def on_unload(request: gr.Request) -> None:
        forget(_session_key(request))

    page.unload(on_unload)

    inputs = [chatbot, claimed, system, template, custom, *decoding, chat_adapter]
    outputs = [chatbot, stats, preview]
    # The engine batches every session's answers; a session's own turns queue in its ChatSession.
    run = dict(fn=respond, inputs=inputs, outputs=outputs, **GENERATION_EVENT)
    keep = dict(
        fn=save, inputs=[chatbot, conversation, browser_id], outputs=[conversation, past], queue=False
    )
    message.submit(add_user, [message, chatbot], [message, chatbot, claimed], queue=False).then(**run).then(
        **keep
    )
    send.click(add_user, [message, chatbot], [message, chatbot, claimed], queue=False).then(**run).then(
        **keep
    )
    regenerate.click(regenerate_from, chatbot, [chatbot, claimed], queue=False).then(**run).then(**keep)
    continue_btn.click(continue_last, chatbot, [chatbot, claimed], queue=False).then(**run).then(**keep)
    chatbot.edit(edit_message, chatbot, [chatbot, claimed], queue=False).then(**run).then(**keep)
    stop.click(on_stop, None, None, queue=False)
    clear.click(new_chat, browser_id, [chatbot, conversation, stats, preview, past], queue=False)
    past.input(open_past, [past, conversation, browser_id], [chatbot, conversation, stats], queue=False)
    copy_md.click(
        lambda h: gr.update(value=chat_history.as_markdown(plain_history(h)), visible=True),
        chatbot,
        markdown,
        queue=False,
    ).then(None, markdown, None, js=COPY_JS)

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
