"""Chat tab: streaming answers, stop, regenerate, continue, edit, history, system prompt, decoding.

`layout.py` lays the tab out, `handlers.py` answers its events, `turn.py` streams one answer,
`session.py` holds each browser session's turn state; this module connects them.
"""

from __future__ import annotations

import gradio as gr
from gradio.context import Context

from playground import chat_history
from playground.context import AppContext
from playground.ui.chat import handlers
from playground.ui.chat.decoding import decoding_from_ui
from playground.ui.chat.layout import ChatLayout, build_layout
from playground.ui.common import GENERATION_EVENT, user_errors

__all__ = ["build_chat_tab", "decoding_from_ui"]

COPY_JS = "(text) => { navigator.clipboard.writeText(text || ''); return text; }"


def build_chat_tab(ctx: AppContext, chat_adapter: gr.State | None = None) -> None:
    """`chat_adapter` is the session's adapter pick (the model bar's), None for the base model."""
    chat_adapter = chat_adapter if chat_adapter is not None else gr.State(None)
    browser_id = gr.BrowserState(
        None, storage_key="playground-chat-browser", secret=chat_history.browser_secret()
    )
    conversation = gr.State(None)
    # What this click started: ANSWER, CONTINUE, or "" when it was queued or refused.
    claimed = gr.State("")
    layout = build_layout()
    model = handlers.ChatHandlers(ctx)
    _wire_page(layout, model, browser_id, conversation)
    _wire_turns(layout, model, chat_adapter, claimed, browser_id, conversation)
    _wire_tools(layout, browser_id, conversation)
    gr.api(user_errors(model.chat), api_name="chat", **GENERATION_EVENT)


def _wire_page(
    layout: ChatLayout, model: handlers.ChatHandlers, browser_id: gr.BrowserState, conversation: gr.State
) -> None:
    """Page load fills the history and the model's defaults; closing the tab ends its answer."""
    chat, prompt, decoding = layout.conversation, layout.prompt, layout.decoding
    defaults = [*decoding.model_values(), prompt.system]
    decoding.model_defaults.click(model.defaults_for_model, None, defaults, queue=False)
    page = Context.root_block
    outputs = [browser_id, chat.chatbot, conversation, chat.past, *defaults]
    page.load(model.on_page_load, browser_id, outputs, queue=False)
    page.unload(handlers.on_unload)
    prompt.template.change(_show_custom, prompt.template, prompt.custom)


def _show_custom(template_name: str) -> dict:
    return gr.update(visible=template_name == "custom")


def _wire_turns(
    layout: ChatLayout,
    model: handlers.ChatHandlers,
    chat_adapter: gr.State,
    claimed: gr.State,
    browser_id: gr.BrowserState,
    conversation: gr.State,
) -> None:
    """Each way to start a turn claims it at once, then streams the answer, then saves the chat."""
    chat, prompt = layout.conversation, layout.prompt
    inputs = [chat.chatbot, claimed, prompt.system, prompt.template, prompt.custom]
    inputs += [*layout.decoding.knobs(), chat_adapter]
    # The engine batches every session's answers; a session's own turns queue in its ChatSession.
    run = dict(fn=model.respond, inputs=inputs, outputs=[chat.chatbot, chat.stats, layout.preview])
    run.update(GENERATION_EVENT)
    keep = dict(
        fn=handlers.save,
        inputs=[chat.chatbot, conversation, browser_id],
        outputs=[conversation, chat.past],
        queue=False,
    )
    starts = [
        (chat.message.submit, handlers.add_user, [chat.message, chat.chatbot], [chat.message]),
        (chat.send.click, handlers.add_user, [chat.message, chat.chatbot], [chat.message]),
        (chat.regenerate.click, handlers.regenerate_from, [chat.chatbot], []),
        (chat.continue_btn.click, handlers.continue_last, [chat.chatbot], []),
        (chat.chatbot.edit, handlers.edit_message, [chat.chatbot], []),
    ]
    for event, claim, claim_inputs, cleared in starts:
        outputs = [*cleared, chat.chatbot, claimed, chat.notice]
        event(claim, claim_inputs, outputs, queue=False).then(**run).then(**keep)


def _wire_tools(layout: ChatLayout, browser_id: gr.BrowserState, conversation: gr.State) -> None:
    """Stop, New chat, earlier chats and Copy as Markdown."""
    chat = layout.conversation
    chat.stop.click(handlers.on_stop, None, None, queue=False)
    chat.clear.click(
        handlers.new_chat,
        browser_id,
        [chat.chatbot, conversation, chat.stats, layout.preview, chat.past],
        queue=False,
    )
    chat.past.input(
        handlers.open_past,
        [chat.past, conversation, browser_id],
        [chat.chatbot, conversation, chat.stats],
        queue=False,
    )
    chat.copy_md.click(handlers.as_markdown, chat.chatbot, chat.markdown, queue=False).then(
        None, chat.markdown, None, js=COPY_JS
    )
