"""POST /v1/completions: raw prompts (text or token ids) with `logprobs` and `echo`, as
lm-evaluation-harness's `local-completions` model sends them.

Every prompt is generated through the same engine as the chat tab; logprobs come from one
scoring pass afterwards (logprobs.py). `max_tokens` 0 with `echo` generates nothing and only
scores the prompt.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from playground.api.logprobs import completion_logprobs
from playground.api.models import ModelChoice
from playground.api.params import CompletionParams
from playground.api.prompts import PromptIds, prompt_ids
from playground.api.responses import completion_id, finish_reason, now, usage
from playground.generation.stream import GenerationUpdate, stream_generate


def _updates(
    choice: ModelChoice, prompt: PromptIds, params: CompletionParams, owner: str, stop: threading.Event
) -> Iterator[GenerationUpdate]:
    if params.sampling.max_tokens == 0:
        yield GenerationUpdate("", len(prompt.ids), 0, 0.0, finished=True, reason="length", ids=[])
        return
    # Each prompt has its own flag (a finished generation sets its flag); the request's flag,
    # set when the client goes away, stops the one running.
    row_stop = threading.Event()
    loaded = choice.loaded
    settings = params.sampling.settings_for(len(prompt.ids), loaded.context_length)
    for update in stream_generate(loaded, prompt.ids, settings, row_stop, choice.adapter, owner):
        if stop.is_set():
            row_stop.set()
        if update.finished or update.new_tokens:
            yield update


def _choice(
    choice: ModelChoice, index: int, prompt: PromptIds, final: GenerationUpdate, params: CompletionParams
) -> dict[str, Any]:
    logprobs = None
    if params.logprobs is not None:
        shown = final.text if final.reason == "stop string" else None
        logprobs = completion_logprobs(
            choice.loaded, prompt.ids, final.ids or [], choice.adapter, params.logprobs, params.echo, shown
        ).to_dict()
    text = (prompt.text if params.echo else "") + final.text
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason(final)}


def completion_response(
    choice: ModelChoice, params: CompletionParams, owner: str, stop: threading.Event
) -> dict[str, Any]:
    """Each prompt's answer in turn (the engine batches them with everyone else's rows)."""
    choices, prompt_tokens, new_tokens = [], 0, 0
    for index, prompt in enumerate(params.prompts):
        ids = prompt_ids(choice.loaded, prompt)
        *_, final = _updates(choice, ids, params, owner, stop)
        choices.append(_choice(choice, index, ids, final, params))
        prompt_tokens += final.prompt_tokens
        new_tokens += final.new_tokens
    return {
        "id": completion_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": choice.name,
        "choices": choices,
        "usage": usage(prompt_tokens, new_tokens),
    }


def completion_chunks(
    choice: ModelChoice, params: CompletionParams, owner: str, stop: threading.Event
) -> Iterator[dict[str, Any]]:
    """OpenAI's streamed completions: pieces of text per prompt index, then each finish reason."""
    ident, created = completion_id("cmpl"), now()
    totals = [0, 0]

    def chunk(index: int, text: str, reason: str | None = None) -> dict[str, Any]:
        piece = {"index": index, "text": text, "logprobs": None, "finish_reason": reason}
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": choice.name,
            "choices": [piece],
        }

    for index, prompt in enumerate(params.prompts):
        ids = prompt_ids(choice.loaded, prompt)
        sent = ""
        if params.echo:
            yield chunk(index, ids.text)
        for update in _updates(choice, ids, params, owner, stop):
            if update.text.startswith(sent) and len(update.text) > len(sent):
                yield chunk(index, update.text[len(sent) :])
                sent = update.text
            if update.finished:
                yield chunk(index, "", finish_reason(update))
                totals[0] += update.prompt_tokens
                totals[1] += update.new_tokens
    if params.sampling.include_usage:
        yield {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": choice.name,
            "choices": [],
            "usage": usage(*totals),
        }
