"""Batched generation: many prompts (or many columns of one prompt) in one `generate()` call.

Left padding, so every row's new tokens start at the same position. Rows that need
different sampling settings cannot share a call; `generate_batch` takes one settings object
and the comparison service groups columns by mode before calling it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from playground.errors import Cancelled, PlaygroundError
from playground.generation.settings import DecodingSettings
from playground.generation.stops import cut_at_stop
from playground.generation.stream import add_special_tokens, decode_new, oom_message, seed_everything
from playground.models.loader import LoadedModel


@dataclass
class BatchOutput:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the whole batch this row was part of

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def generate_batch(
    loaded: LoadedModel,
    prompts: Sequence[str],
    settings: DecodingSettings,
    num_return_sequences: int = 1,
) -> list[list[BatchOutput]]:
    """For each prompt, `num_return_sequences` outputs, from a single generate call."""
    import torch

    settings.validate()
    tok = loaded.tokenizer
    if not prompts:
        return []
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
        with torch.inference_mode():
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
                    text=cut_at_stop(decode_new(tok, ids), settings.stop),
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
) -> list[BatchOutput]:
    """One output per prompt, in order, in batches (for evaluation)."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs: list[BatchOutput | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        if should_stop and should_stop():
            raise Cancelled("Evaluation cancelled.")
        idx = order[start : start + batch_size]
        rows = generate_batch(loaded, [prompts[i] for i in idx], settings)
        for i, row in zip(idx, rows, strict=True):
            outputs[i] = row[0]
        if progress:
            progress(min(start + batch_size, len(prompts)), len(prompts))
    return [o for o in outputs if o is not None]
