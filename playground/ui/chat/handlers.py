"""The Chat tab's handlers. Those that need the model are methods of `ChatHandlers` (holding the
AppContext); the rest are plain functions of the session and the page's values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from playground import chat_history
from playground.context import AppContext
from playground.generation import stream_generate
from playground.generation.model_defaults import model_decoding
from playground.prompts.templates import default_system_text
from playground.ui.chat.decoding import decoding_from_ui, plain_history
from playground.ui.chat.session import ChatSession, forget, session_for
from playground.ui.chat.turn import ANSWER, CONTINUE, TurnSettings, run_turns
from playground.ui.common import message_text, user_errors
from playground.ui.i18n import tr


def session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def session_of(request: gr.Request | None) -> ChatSession:
    return session_for(session_key(request))


def _owner(request: gr.Request | None, browser_id: str | None) -> str | None:
    return chat_history.owner_name(getattr(request, "username", None), browser_id)


def _past_choices(owner: str | None) -> list[tuple[str, str]]:
    return [(c.title, c.id) for c in chat_history.list_conversations(owner)] if owner else []


# The ways to start a turn claim it without the queue, where gradio shows no gr.Info or gr.Warning:
# each says why nothing started in the chat's notice line instead (its last output; "" clears it).


def add_user(text: str, history: list[dict[str, Any]], request: gr.Request):
    if not (text or "").strip():
        return "", gr.skip(), "", gr.skip()
    if not session_of(request).send(text):
        return "", gr.skip(), "", tr(request, "chat.queued")
    return "", plain_history(history) + [{"role": "user", "content": text}], ANSWER, ""


def regenerate_from(history: list[dict[str, Any]], request: gr.Request):
    if not session_of(request).claim():
        return gr.skip(), "", tr(request, "chat.busy")
    history = plain_history(history)
    while history and history[-1]["role"] == "assistant":
        history.pop()
    return history, ANSWER, ""


def continue_last(history: list[dict[str, Any]], request: gr.Request):
    history = plain_history(history)
    if not history or history[-1]["role"] != "assistant":
        return gr.skip(), "", tr(request, "chat.nothing_to_continue")
    if not session_of(request).claim():
        return gr.skip(), "", tr(request, "chat.busy")
    return history, CONTINUE, ""


def edit_message(history: list[dict[str, Any]], evt: gr.EditData, request: gr.Request):
    index = evt.index if isinstance(evt.index, int) else evt.index[0]
    history = plain_history(history)
    if not session_of(request).claim():
        return gr.skip(), "", tr(request, "chat.busy")
    kept = history[:index] + [{"role": "user", "content": message_text(evt.value)}]
    return kept, ANSWER, ""


def on_stop(request: gr.Request) -> None:
    session_of(request).stop.set()


def on_unload(request: gr.Request) -> None:
    forget(session_key(request))


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


def as_markdown(history: list[dict[str, Any]]) -> dict:
    return gr.update(value=chat_history.as_markdown(plain_history(history)), visible=True)


class ChatHandlers:
    """The handlers that use the resident model."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def respond(
        self,
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
        knobs = (temp, tp, tk, mp, typ, mx, rp, sd, extra)
        turn = TurnSettings(
            system_text, template_name, custom_text, knobs, session_key(request), adapter, request
        )
        session = session_of(request)
        history = plain_history(history)
        shown_any = False
        try:
            with self.ctx.models.use() as loaded:
                for shown in run_turns(loaded, history, mode, turn, session):
                    shown_any = True
                    yield shown
        finally:
            session.release()
        if not shown_any:
            yield history, gr.skip(), gr.skip()

    def defaults_for_model(self, request: gr.Request) -> list[Any]:
        current = self.ctx.models.current
        name = current.name if current else ""
        config = getattr(getattr(current, "model", None), "generation_config", None)
        chosen = model_decoding(name, config)
        s = chosen.settings
        own_system = default_system_text(current.tokenizer) if current else None
        placeholder = (
            tr(request, "chat.system.own_default", text=own_system)
            if own_system
            else tr(request, "chat.system.none")
        )
        shown_name = name or tr(request, "chat.defaults.no_model")
        source = tr(request, f"chat.defaults.{chosen.origin}")
        return [
            s.temperature if s.do_sample else 0,
            s.top_p,
            s.top_k,
            s.min_p,
            s.typical_p,
            s.max_new_tokens,
            s.repetition_penalty,
            -1 if s.seed is None else s.seed,
            tr(request, "chat.defaults", name=shown_name, source=source),
            gr.update(placeholder=placeholder),
        ]

    def on_page_load(self, browser: str | None, request: gr.Request):
        if not (browser and chat_history.owner_name(None, browser)):
            browser = chat_history.new_browser_id()
        owner = _owner(request, browser)
        choices = _past_choices(owner)
        latest = choices[0][1] if choices else None
        history = chat_history.load_conversation(owner, latest) if latest else []
        past = gr.update(choices=choices, value=latest)
        return [browser, history, latest, past, *self.defaults_for_model(request)]

    def chat(
        self,
        message: str,
        system: str = "",
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        seed: int = 0,
    ) -> Iterator[str]:
        """One-turn chat for scripts: streams the growing answer of the resident model (no adapter)."""
        settings = decoding_from_ui(temperature, 0.9, 50, max_new_tokens, 1.0, seed)
        with self.ctx.models.use() as loaded:
            prompt = loaded.default_template.render(
                message, system=system or None, tokenizer=loaded.tokenizer
            )
            for update in stream_generate(loaded, prompt, settings):
                yield update.text
