"""POST /v1/chat/completions: the conversation in the model's (or adapter's) template, through
the same engine as the chat tab, as one answer or as OpenAI's stream of chunks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from playground.api.models import ModelChoice
from playground.api.params import ChatParams
from playground.api.prompts import prompt_ids
from playground.api.responses import completion_id, finish_reason, now, usage
from playground.generation.stream import GenerationUpdate, stream_generate


def chat_updates(
    choice: ModelChoice, params: ChatParams, owner: str, stop: threading.Event
) -> Iterator[GenerationUpdate]:
    """The growing answer; the template's next-turn text ends it as in the chat tab."""
    loaded, template = choice.loaded, choice.template
    text = template.render_conversation(params.history, params.message, params.system, loaded.tokenizer)
    prompt = prompt_ids(loaded, text).ids
    settings = params.sampling.settings_for(len(prompt), loaded.context_length)
    settings = settings.with_(stop=template.stop_strings + settings.stop)
    for update in stream_generate(loaded, prompt, settings, stop, choice.adapter, owner):
        if update.finished or update.new_tokens:  # waiting-in-queue updates carry no text
            yield update


def chat_response(choice: ModelChoice, final: GenerationUpdate) -> dict[str, Any]:
    return {
        "id": completion_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": choice.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final.text},
                "finish_reason": finish_reason(final),
                "logprobs": None,
            }
        ],
        "usage": usage(final.prompt_tokens, final.new_tokens),
    }


def chat_chunks(
    choice: ModelChoice, updates: Iterator[GenerationUpdate], include_usage: bool
) -> Iterator[dict[str, Any]]:
    """OpenAI's chunks: the role, then each piece of new text, then the finish reason (and usage)."""
    ident, created = completion_id("chatcmpl"), now()

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": choice.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
        }

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    for update in updates:
        # A stream shows only text that stays (stream.py holds back a possible stop string).
        if update.text.startswith(sent) and len(update.text) > len(sent):
            yield chunk({"content": update.text[len(sent) :]})
            sent = update.text
        if update.finished:
            yield chunk({}, finish_reason(update))
            if include_usage:
                yield {**chunk({}), "choices": [], "usage": usage(update.prompt_tokens, update.new_tokens)}
