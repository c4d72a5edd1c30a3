"""Perplexity of reference outputs, as defined by the NTU ADL homework.

Each example is `[bos] + prompt + output + [eos]`; only the output tokens and eos are scored.
`looped_perplexity` is the homework's one-example-at-a-time loop, kept as the reference;
`perplexity` is the service: batched, right-padded, and computing the softmax only where a
token is scored, with results identical to the loop.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from playground.errors import Cancelled, PlaygroundError

# float32 rows of log-softmax materialised at once, in elements (256 MiB).
_SOFTMAX_BUDGET = 1 << 26
# Tokens of left context used to decode one token: enough for any UTF-8 character split
# over byte-level tokens and for tokenizers that drop a leading space at the start.
_DECODE_CONTEXT = 8


@dataclass
class ScoredExample:
    """One example's score; `nll` and `tokens` cover the output tokens and eos."""

    prompt: str
    reference: str
    perplexity: float
    nll: list[float]
    tokens: list[str]


@dataclass
class PerplexityResult:
    """`mean_perplexity` is the homework number; examples are in the order they were given.

    Examples whose output was cut away entirely by `max_length` have perplexity NaN and are
    left out of both means.
    """

    mean_perplexity: float
    corpus_perplexity: float
    n_tokens: int
    examples: list[ScoredExample]

    @property
    def n_skipped(self) -> int:
        return sum(1 for e in self.examples if not e.nll)


@dataclass(frozen=True)
class _Encoded:
    input_ids: list[int]
    # Positions t whose token is scored (predicted from position t - 1).
    targets: list[int]


def looped_perplexity(
    model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int = 2048
) -> PerplexityResult:
    """The homework's loop: one example per forward pass, full logits."""
    if _is_seq2seq(model):
        from playground.evaluation.seq2seq_perplexity import seq2seq_perplexity

        return seq2seq_perplexity(model, tokenizer, pairs, batch_size=1, max_length=max_length)
    encoded = _encode(tokenizer, pairs, max_length)
    device = _device(model)
    scored = []
    with torch.inference_mode():
        for (prompt, reference), enc in zip(pairs, encoded):
            ids = torch.tensor([enc.input_ids], device=device)
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
            nll = F.cross_entropy(logits[0, :-1].float(), ids[0, 1:], reduction="none")
            mask = torch.zeros_like(nll, dtype=torch.bool)
            mask[[t - 1 for t in enc.targets]] = True
            scored.append(_scored(tokenizer, prompt, reference, enc, nll[mask].tolist()))
    return _summarize(scored)


def perplexity(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 8,
    max_length: int = 2048,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PerplexityResult:
    """Score `(prompt, reference output)` pairs in batches; same numbers as `looped_perplexity`."""
    if _is_seq2seq(model):
        from playground.evaluation.seq2seq_perplexity import seq2seq_perplexity

        return seq2seq_perplexity(
            model,
            tokenizer,
            pairs,
            batch_size=batch_size,
            max_length=max_length,
            progress=progress,
            should_stop=should_stop,
        )
    if batch_size < 1:
        raise PlaygroundError(f"Batch size must be at least 1 (got {batch_size}).")
    encoded = _encode(tokenizer, pairs, max_length)
    # Longest first: if a batch does not fit in memory, the first one fails, not the last.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
    pad_id = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)
    # A PEFT wrapper takes **kwargs and hands logits_to_keep on to the model it wraps.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    keep_logits = "logits_to_keep" in inspect.signature(inner.forward).parameters
    device = _device(model)
    scored: list[ScoredExample | None] = [None] * len(encoded)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled()
            batch = order[start : start + batch_size]
            nlls = _batch_nll(model, [encoded[i] for i in batch], pad_id, device, keep_logits, batch_size)
            for i, nll in zip(batch, nlls):
                prompt, reference = pairs[i]
                scored[i] = _scored(tokenizer, prompt, reference, encoded[i], nll)
            if progress is not None:
                progress(start + len(batch), len(order))
    return _summarize(scored)


def _batch_nll(
    model: Any,
    batch: list[_Encoded],
    pad_id: int,
    device: torch.device,
    keep_logits: bool,
    batch_size: int,
) -> list[list[float]]:
    """Per-token NLL of each example's targets, from one right-padded forward pass."""
    rows = [b for b, enc in enumerate(batch) for _ in enc.targets]
    if not rows:
        return [[] for _ in batch]
    width = max(len(enc.input_ids) for enc in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for b, enc in enumerate(batch):
        ids[b, : len(enc.input_ids)] = torch.tensor(enc.input_ids)
        attention[b, : len(enc.input_ids)] = 1
    # Right padding keeps every real token at the same position as when run alone, and the
    # causal mask stops real tokens from seeing the padding after them.
    cols = torch.tensor([t - 1 for enc in batch for t in enc.targets])
    targets = ids[torch.tensor(rows), cols + 1].to(device)
    first = int(cols.min())
    kwargs = {}
    if keep_logits:
        # Only positions that predict a scored token go through the LM head.
        kwargs["logits_to_keep"] = torch.arange(first, int(cols.max()) + 1, device=device)
    else:
        first = 0
    try:
        logits = model(
            input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False, **kwargs
        ).logits
    except torch.OutOfMemoryError as err:
        raise PlaygroundError(
            f"Out of memory scoring {len(batch)} examples of up to {width} tokens at once. "
            f"Lower the batch size (now {batch_size}) or the maximum length."
        ) from err
    rows_t, cols_t = torch.tensor(rows, device=device), (cols - first).to(device)
    chunk = max(1, _SOFTMAX_BUDGET // logits.shape[-1])
    nll = torch.cat(
        [
            F.cross_entropy(
                logits[rows_t[s : s + chunk], cols_t[s : s + chunk]].float(),
                targets[s : s + chunk],
                reduction="none",
            )
            for s in range(0, len(rows), chunk)
        ]
    ).tolist()
    out, at = [], 0
    for enc in batch:
        out.append(nll[at : at + len(enc.targets)])
        at += len(enc.targets)
    return out


def _encode(tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int) -> list[_Encoded]:
    if not pairs:
        raise PlaygroundError("There are no examples to score.")
    if tokenizer.eos_token_id is None:
        raise PlaygroundError("The tokenizer has no end-of-sequence token, which perplexity scores.")
    if max_length < 2:
        raise PlaygroundError(f"Maximum length must be at least 2 tokens (got {max_length}).")
    prompts = tokenizer([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    outputs = tokenizer([o for _, o in pairs], add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = []
    for (prompt, _), prompt_ids, output_ids in zip(pairs, prompts, outputs):
        # The homework's raw templates have no bos, so it is added; a chat template that
        # already writes bos as text (SmolLM2's <|im_start|>) must not get a second one.
        starts_with_bos = bool(tokenizer.bos_token) and prompt.startswith(tokenizer.bos_token)
        head = ([] if starts_with_bos else bos) + list(prompt_ids)
        ids = (head + list(output_ids) + [tokenizer.eos_token_id])[:max_length]
        # Position 0 cannot be predicted, so it is never scored even when it is an output token.
        encoded.append(_Encoded(ids, list(range(max(len(head), 1), len(ids)))))
    return encoded


def _scored(tokenizer: Any, prompt: str, reference: str, enc: _Encoded, nll: list[float]) -> ScoredExample:
    ppl = math.exp(math.fsum(nll) / len(nll)) if nll else math.nan
    ids = [enc.input_ids[t] for t in enc.targets]
    return ScoredExample(prompt, reference, ppl, nll, _token_texts(tokenizer, ids))


def _token_texts(tokenizer: Any, ids: list[int]) -> list[str]:
    """Text each token adds; a character split over several tokens goes to the one completing it."""
    texts = []
    for i in range(len(ids)):
        start = max(0, i - _DECODE_CONTEXT)
        before = _decode(tokenizer, ids[start:i]).rstrip("\ufffd")
        now = _decode(tokenizer, ids[start : i + 1])
        if i + 1 < len(ids):
            # An unfinished character shows as U+FFFD; it belongs to a later token.
            now = now.rstrip("\ufffd")
        texts.append(now[len(before) :] if now.startswith(before) else now)
    return texts


def _decode(tokenizer: Any, ids: list[int]) -> str:
    # Clean-up would delete spaces before punctuation, so pieces would not add up to the text.
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False)


def _summarize(scored: Sequence[ScoredExample | None]) -> PerplexityResult:
    examples = [e for e in scored if e is not None]
    counted = [e for e in examples if e.nll]
    if not counted:
        raise PlaygroundError(
            "Nothing left to score: every prompt fills the maximum length, so no output token remains."
        )
    n_tokens = sum(len(e.nll) for e in counted)
    total = math.fsum(x for e in counted for x in e.nll)
    return PerplexityResult(
        mean_perplexity=math.fsum(e.perplexity for e in counted) / len(counted),
        corpus_perplexity=math.exp(total / n_tokens),
        n_tokens=n_tokens,
        examples=examples,
    )


def _is_seq2seq(model: Any) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def _device(model: Any) -> torch.device:
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else next(model.parameters()).device
