"""Many prompts at once (evaluations, scripts): rows of the model's generation engine.

Each prompt is encoded as it would be alone and joins the engine's batch as a background
request, so an evaluation shares the model fairly with chats. Encoder-decoder models and beam
search run in one left-padded `generate()` call instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from playground.errors import Cancelled, PlaygroundError
from playground.generation.engine import BACKGROUND, Request, engine_reason, oom_message, run_all
from playground.generation.logprobs import MAX_TOP, TokenLogprob, token_logprobs
from playground.generation.settings import DecodingSettings
from playground.generation.stops import cut_at_stop
from playground.generation.stream import add_special_tokens, decode_new, encode_prompt, seed_everything
from playground.messages import Message
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel


@dataclass
class BatchOutput:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the whole batch this row was part of
    # Per generated token (when asked for with `logprobs`): its log-probability and alternatives.
    logprobs: list[TokenLogprob] | None = field(default=None)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def generate_batch(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: DecodingSettings,
    num_return_sequences: int = 1,
    adapter: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[list[BatchOutput]]:
    """For each prompt, `num_return_sequences` outputs (draw j samples with seed + j)."""
    settings.validate()
    if not prompts:
        return []
    if engine_reason(loaded, settings) is None:
        return _through_engine(loaded, prompts, settings, num_return_sequences, adapter, should_stop)
    return _one_generate_call(loaded, prompts, settings, num_return_sequences, adapter)


def _through_engine(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: DecodingSettings,
    draws: int,
    adapter: str | None,
    should_stop: Callable[[], bool] | None,
) -> list[list[BatchOutput]]:
    owner = f"batch-{uuid.uuid4().hex[:8]}"
    seed = settings.seed
    requests = [
        Request(
            encode_prompt(loaded, p)["input_ids"][0].tolist(),
            settings.with_(seed=None if seed is None else seed + j),
            adapter=adapter,
            kind=BACKGROUND,
            owner=owner,
        )
        for p in prompts
        for j in range(draws)
    ]
    start = time.perf_counter()
    updates = run_all(loaded, requests, should_stop)
    seconds = time.perf_counter() - start
    outputs = [BatchOutput(u.text, u.prompt_tokens, u.new_tokens, seconds) for u in updates]
    return [outputs[i * draws : (i + 1) * draws] for i in range(len(prompts))]


def _one_generate_call(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: DecodingSettings,
    num_return_sequences: int,
    adapter: str | None,
) -> list[list[BatchOutput]]:
    import torch

    tok = loaded.tokenizer
    add_special = add_special_tokens(tok, prompts[0])
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        enc = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special)
    finally:
        tok.padding_side = old_side
    enc = {k: v.to(loaded.model.device) for k, v in enc.items()}
    width = int(enc["input_ids"].shape[1])
    if width + (0 if loaded.is_seq2seq else settings.max_new_tokens) > loaded.context_length:
        raise PlaygroundError(
            f"The longest prompt has {width} tokens; with {settings.max_new_tokens} new tokens it exceeds "
            f"the model's context of {loaded.context_length}."
        )
    seed_everything(settings.seed)
    start = time.perf_counter()
    try:
        with exclusive_model(loaded, adapter), torch.inference_mode():
            out = loaded.model.generate(
                **enc,
                **settings.generate_kwargs(),
                num_return_sequences=num_return_sequences,
                pad_token_id=tok.pad_token_id,
            )
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise PlaygroundError(oom_message("batched generation")) from exc
    seconds = time.perf_counter() - start
    prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
    results: list[list[BatchOutput]] = []
    for i in range(len(prompts)):
        row = []
        for j in range(num_return_sequences):
            row_ids = out[i * num_return_sequences + j]
            ids = row_ids[1:] if loaded.is_seq2seq else row_ids[width:]
            row.append(
                BatchOutput(
                    text=cut_at_stop(decode_new(tok, ids), settings.stop)[0],
                    prompt_tokens=int(prompt_lens[i]),
                    new_tokens=_count_new(ids, tok),
                    seconds=seconds,
                )
            )
        results.append(row)
    return results


def _count_new(ids, tok) -> int:
    """Tokens up to and including the first eos (the rest is padding)."""
    ids = ids.tolist()
    eos = tok.eos_token_id
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    for n, t in enumerate(ids):
        if t in eos_ids:
            return n + 1
    return len(ids)


def generate_many(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: DecodingSettings,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    adapter: str | None = None,
    logprobs: int | None = None,
) -> list[BatchOutput]:
    """One output per prompt, in order (for evaluation).

    Through the engine the prompts join its batch as rows finish (at most `batch_size` waiting
    or running at once); otherwise in `generate()` calls of `batch_size` prompts. `logprobs`
    (0..MAX_TOP alternatives) adds each token's log-probability; it needs the engine.
    """
    settings.validate()
    if logprobs is not None:
        if not 0 <= logprobs <= MAX_TOP:
            raise PlaygroundError(f"logprobs takes 0 to {MAX_TOP} alternatives (got {logprobs}).")
        reason = engine_reason(loaded, settings)
        if reason is not None:
            raise PlaygroundError(f"Log-probabilities are not available here: {reason}.")
    if engine_reason(loaded, settings) is None:
        owner = f"batch-{uuid.uuid4().hex[:8]}"
        requests = [
            Request(
                encode_prompt(loaded, p)["input_ids"][0].tolist(),
                settings,
                adapter=adapter,
                kind=BACKGROUND,
                owner=owner,
                keep_top=0 if logprobs is None else max(1, logprobs),
            )
            for p in prompts
        ]
        start = time.perf_counter()
        updates = run_all(loaded, requests, should_stop, progress, window=max(1, batch_size))
        seconds = time.perf_counter() - start
        return [
            BatchOutput(
                u.text,
                u.prompt_tokens,
                u.new_tokens,
                seconds,
                None if logprobs is None else token_logprobs(loaded.tokenizer, u.kept or [], logprobs),
            )
            for u in updates
        ]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs: list[BatchOutput | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        if should_stop and should_stop():
            raise Cancelled(Message("cancelled.evaluation"))
        idx = order[start : start + batch_size]
        rows = _one_generate_call(loaded, [prompts[i] for i in idx], settings, 1, adapter)
        for i, row in zip(idx, rows, strict=True):
            outputs[i] = row[0]
        if progress:
            progress(min(start + batch_size, len(prompts)), len(prompts))
    return [o for o in outputs if o is not None]
