"""Text generation with streaming and a stop that really stops the computation.

Requests go to the model's generation engine (engine.py), which decodes everyone's rows in one
batch and checks each row's stop flag between tokens. What it does not batch (beam search,
encoder-decoder models) runs `generate()` in a worker thread with a streamer and a stopping
criterion on the same flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.errors import PlaygroundError
from playground.generation.engine import INTERACTIVE, Request, engine_for, engine_reason, oom_message
from playground.generation.remote import remote_engine, stream_remote
from playground.generation.settings import DecodingSettings
from playground.generation.stops import find_stop, held_back
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel

# How often a waiting request's queue position is refreshed.
QUEUE_POLL_SECONDS = 0.5


@dataclass
class GenerationUpdate:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    finished: bool = False
    stopped: bool = False
    queue: str = ""  # where the request is: "generating with 3 others", "waiting: position 2 …"
    # On the final update: why the answer ended (eos, length, stop string, stopped) and its new
    # token ids (the HTTP API reports both: finish_reason, and logprobs of exactly those tokens).
    reason: str = ""
    ids: list[int] | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def stats_line(self) -> str:
        state = "stopped" if self.stopped else ("done" if self.finished else "generating")
        line = (
            f"prompt {self.prompt_tokens} tokens · new {self.new_tokens} tokens · "
            f"{self.tokens_per_s:.1f} tokens/s · {self.seconds:.1f} s · {state}"
        )
        return f"{line} · {self.queue}" if self.queue else line


def _stopping(stop: threading.Event) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return stop.is_set()

    return StoppingCriteriaList([_Stop()])


def add_special_tokens(tokenizer: Any, prompt: str) -> bool:
    """Whether the tokenizer should add its special tokens (bos) to this prompt.

    Chat templates write bos as text (<s>, <|im_start|>, <bos>), and a second one is out of
    distribution; raw homework templates have none, so the tokenizer adds it, as perplexity does.
    """
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and prompt.startswith(bos))


def encode_prompt(loaded: LoadedModel, prompt: str) -> dict[str, Any]:
    tok = loaded.tokenizer
    enc = tok(prompt, return_tensors="pt", add_special_tokens=add_special_tokens(tok, prompt))
    return {k: v.to(loaded.model.device) for k, v in enc.items()}


def decode_new(tokenizer: Any, ids: Any) -> str:
    """Generated text; a character cut in half by the token limit is dropped, not shown as U+FFFD."""
    return tokenizer.decode(ids, skip_special_tokens=True).rstrip("\ufffd")


def seed_everything(seed: int | None) -> None:
    if seed is None:
        return
    import torch

    torch.manual_seed(int(seed))
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(int(seed))


def token_inputs(loaded: LoadedModel, ids: list[int]) -> dict[str, Any]:
    """Model inputs for a prompt that is already token ids (the HTTP API accepts those)."""
    import torch

    tensor = torch.tensor([ids], dtype=torch.long, device=loaded.model.device)
    return {"input_ids": tensor, "attention_mask": torch.ones_like(tensor)}


def stream_generate(
    loaded: LoadedModel,
    prompt: str | list[int],
    settings: DecodingSettings,
    stop: threading.Event | None = None,
    adapter: str | None = None,
    owner: str = "",
    kind: str = INTERACTIVE,
) -> Iterator[GenerationUpdate]:
    """Yield the growing answer; the last update has finished=True (stopped=True if stopped).

    The answer ends at the first of `settings.stop` (cut off, not shown); a stream never shows
    the beginning of a stop string that may still be coming.

    The request joins the model's generation engine (engine.py), decoded in one batch with
    everyone else's; while it waits, updates with no text say where it is in the queue. Beam
    search and encoder-decoder models run on `generate()` by themselves (`engine_reason`).
    A prompt given as token ids is used as it is (no special tokens added).
    """
    settings.validate()
    stop = stop or threading.Event()
    inputs = encode_prompt(loaded, prompt) if isinstance(prompt, str) else token_inputs(loaded, prompt)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    if prompt_tokens + (0 if loaded.is_seq2seq else settings.max_new_tokens) > loaded.context_length:
        raise PlaygroundError(
            f"The prompt has {prompt_tokens} tokens; with {settings.max_new_tokens} new tokens it exceeds "
            f"the model's context of {loaded.context_length}. Shorten the chat (Clear) or lower max new tokens."
        )
    remote = remote_engine(loaded)
    if remote is not None:
        text = prompt if isinstance(prompt, str) else loaded.tokenizer.decode(prompt)
        yield from stream_remote(remote, loaded, text, prompt_tokens, settings, stop, adapter)
        return
    if engine_reason(loaded, settings) is not None:
        yield from _generate_alone(loaded, inputs, settings, stop, adapter)
        return
    ids = inputs["input_ids"][0].tolist()
    ticket = engine_for(loaded).submit(Request(ids, settings, stop, adapter, kind, owner))
    try:
        for update in ticket.updates(poll=QUEUE_POLL_SECONDS):
            if update is None:  # still waiting: tell the user where
                yield GenerationUpdate("", prompt_tokens, 0, 0.0, queue=ticket.status())
                continue
            if update.error is not None:
                raise update.error
            yield GenerationUpdate(
                update.text,
                prompt_tokens,
                update.new_tokens,
                update.seconds,
                finished=update.finished,
                stopped=update.stopped,
                queue="" if update.finished else ticket.status(),
                reason=update.reason,
                ids=update.ids,
            )
    finally:
        # A consumer that goes away (closed browser tab, cancelled event) stops the generation too.
        stop.set()


def _generate_alone(
    loaded: LoadedModel,
    inputs: dict[str, Any],
    settings: DecodingSettings,
    stop: threading.Event,
    adapter: str | None,
) -> Iterator[GenerationUpdate]:
    """`generate()` for what the engine does not batch (beam search, encoder-decoder models)."""
    import torch
    from transformers import TextIteratorStreamer

    prompt_tokens = int(inputs["input_ids"].shape[1])
    counter = {"n": 0}

    class _CountingStreamer(TextIteratorStreamer):
        def put(self, value: Any) -> None:
            if self.skip_prompt and self.next_tokens_are_prompt:
                super().put(value)
                return
            counter["n"] += int(value.numel()) if hasattr(value, "numel") else 1
            super().put(value)

    tok = loaded.tokenizer
    beams = settings.num_beams > 1
    streamer = (
        None if beams else _CountingStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=None)
    )
    error: list[BaseException] = []
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            seed_everything(settings.seed)
            with exclusive_model(loaded, adapter), torch.inference_mode():
                out = loaded.model.generate(
                    **inputs,
                    **settings.generate_kwargs(),
                    streamer=streamer,
                    stopping_criteria=_stopping(stop),
                    pad_token_id=tok.pad_token_id,
                )
            # Encoder-decoder models return only decoder tokens, after a start token.
            result["ids"] = out[0, 1:] if loaded.is_seq2seq else out[0, prompt_tokens:]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)
            if streamer is not None:
                streamer.end()

    start = time.perf_counter()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    text = ""
    stops = settings.stop
    try:
        if streamer is not None:
            for piece in streamer:
                text += piece
                if stops and find_stop(text, stops) is not None:
                    stop.set()  # ends generate(); the final text is cut below
                    break
                shown = text[: len(text) - held_back(text, stops)] if stops else text
                yield GenerationUpdate(shown, prompt_tokens, counter["n"], time.perf_counter() - start)
        thread.join()
    finally:
        stop.set()
    if error:
        exc = error[0]
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
            raise PlaygroundError(oom_message("generation")) from exc
        raise exc
    ids = result["ids"]
    pad = tok.pad_token_id
    new = int((ids != pad).sum()) if pad is not None and pad != tok.eos_token_id else int(ids.numel())
    text = decode_new(tok, ids)
    at = find_stop(text, stops)
    if at is not None:
        text = text[:at]
    stopped = stop.is_set() and at is None and not _ended_naturally(ids, tok, settings)
    reason = "stopped" if stopped else ("stop string" if at is not None else _natural_end(ids, settings))
    yield GenerationUpdate(
        text,
        prompt_tokens,
        new,
        time.perf_counter() - start,
        finished=True,
        stopped=stopped,
        reason=reason,
        ids=[int(i) for i in ids.tolist()],
    )


def _ended_naturally(ids: Any, tok: Any, settings: DecodingSettings) -> bool:
    n = int(ids.numel())
    return n >= settings.max_new_tokens or (n > 0 and int(ids[-1]) == tok.eos_token_id)


def _natural_end(ids: Any, settings: DecodingSettings) -> str:
    return "length" if int(ids.numel()) >= settings.max_new_tokens else "eos"


def generate_text(loaded: LoadedModel, prompt: str, settings: DecodingSettings) -> GenerationUpdate:
    """The whole answer at once (for evaluation and scripts)."""
    *_, last = stream_generate(loaded, prompt, settings)
    return last
