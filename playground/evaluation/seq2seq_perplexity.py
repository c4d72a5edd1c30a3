"""Perplexity for encoder-decoder models (flan-t5): the decoder's NLL of the reference given
the prompt as encoder input (the reference is passed as `labels`, with eos).

Same per-example definition as the causal case (exp of the mean NLL over the output tokens),
so both kinds can share a leaderboard; the run's notes say which one the number is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from playground.errors import Cancelled
from playground.evaluation.perplexity import (
    PerplexityResult,
    ScoredExample,
    ScoreOptions,
    _summarize,
    _token_texts,
)
from playground.models.unwrap import pad_id


def _encode(tokenizer: Any, prompt: str, output: str, max_length: int) -> tuple[list[int], list[int]]:
    source = tokenizer(prompt, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    target = tokenizer(output, add_special_tokens=False)["input_ids"][: max_length - 1]
    return source, target + [tokenizer.eos_token_id]


def seq2seq_perplexity(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    options: ScoreOptions,
) -> PerplexityResult:
    batch_size, max_length = options.batch_size, options.max_length
    progress, should_stop = options.progress, options.should_stop
    encoded = [_encode(tokenizer, p, o, max_length) for p, o in pairs]
    order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i][0]) + len(encoded[i][1])))
    pad = pad_id(tokenizer)
    device = next(model.parameters()).device
    scored: list[ScoredExample | None] = [None] * len(pairs)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled()
            batch = order[start : start + batch_size]
            src_len = max(len(encoded[i][0]) for i in batch)
            tgt_len = max(len(encoded[i][1]) for i in batch)
            ids = torch.full((len(batch), src_len), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), src_len), dtype=torch.long)
            labels = torch.full((len(batch), tgt_len), -100, dtype=torch.long)
            for row, i in enumerate(batch):
                src, tgt = encoded[i]
                ids[row, : len(src)] = torch.tensor(src)
                mask[row, : len(src)] = 1
                labels[row, : len(tgt)] = torch.tensor(tgt)
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)
            ).logits.float()
            nll = F.cross_entropy(
                logits.transpose(1, 2), labels.to(device), ignore_index=-100, reduction="none"
            ).cpu()
            for row, i in enumerate(batch):
                n = len(encoded[i][1])
                values = nll[row, :n].tolist()
                prompt, reference = pairs[i]
                ppl = math.exp(math.fsum(values) / n)
                scored[i] = ScoredExample(
                    prompt, reference, ppl, values, _token_texts(tokenizer, encoded[i][1])
                )
            if progress is not None:
                progress(start + len(batch), len(order))
    return _summarize(scored)
