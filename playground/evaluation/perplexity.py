"""Perplexity of reference outputs, as defined by the NTU ADL homework.

Each example is `[bos] + prompt + output + [eos]`; only the output tokens and eos are scored.
`looped_perplexity` is the homework's one-example-at-a-time loop, kept as the reference;
`perplexity` is the service, with results identical to the loop: batched and right-padded; the
prompt prefix that every example shares (template, instruction, few-shot examples) is run once;
the softmax is computed only where a token is scored; and each batch is queued on the device
before the previous one's numbers are read back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

from playground.errors import Cancelled, PlaygroundError
from playground.models.unwrap import base_model, pad_id, takes_logits_to_keep
from playground.models.weightless import refuse_weightless_model

# float32 rows of log-softmax materialised at once, in elements (256 MiB).
_SOFTMAX_BUDGET = 1 << 26
# Tokens of left context used to decode one token: enough for any UTF-8 character split
# over byte-level tokens and for tokenizers that drop a leading space at the start.
_DECODE_CONTEXT = 8
# A shared prefix shorter than this is not worth its own forward pass.
_MIN_SHARED_PREFIX = 16


@dataclass(frozen=True)
class ScoreOptions:
    """`perplexity`'s batching and callbacks, handed on whole to the seq2seq scorer: examples per
    batch, tokens kept of each prompt, `progress(done, total)` and `should_stop()` (checked per batch)."""

    batch_size: int = 8
    max_length: int = 2048
    progress: Callable[[int, int], None] | None = None
    should_stop: Callable[[], bool] | None = None


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
    refuse_weightless_model(model, "Perplexity")
    if _is_seq2seq(model):
        from playground.evaluation.seq2seq_perplexity import seq2seq_perplexity

        return seq2seq_perplexity(model, tokenizer, pairs, ScoreOptions(batch_size=1, max_length=max_length))
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
    share_prefix: bool = True,
) -> PerplexityResult:
    """Score `(prompt, reference output)` pairs in batches; same numbers as `looped_perplexity`.

    `share_prefix=False` runs every example's shared prefix again (for comparisons only).
    """
    refuse_weightless_model(model, "Perplexity")
    if _is_seq2seq(model):
        from playground.evaluation.seq2seq_perplexity import seq2seq_perplexity

        return seq2seq_perplexity(
            model, tokenizer, pairs, ScoreOptions(batch_size, max_length, progress, should_stop)
        )
    if batch_size < 1:
        raise PlaygroundError(f"Batch size must be at least 1 (got {batch_size}).")
    encoded = _encode(tokenizer, pairs, max_length)
    # Longest first: if a batch does not fit in memory, the first one fails, not the last.
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
    pad = pad_id(tokenizer)
    # A PEFT wrapper takes **kwargs and hands logits_to_keep on to the model it wraps.
    keep_logits = takes_logits_to_keep(model)
    device = _device(model)
    scored: list[ScoredExample | None] = [None] * len(encoded)

    def finish(batch: list[int], nll: torch.Tensor | None) -> None:
        values = nll.tolist() if nll is not None else []
        at = 0
        for i in batch:
            n = len(encoded[i].targets)
            prompt, reference = pairs[i]
            scored[i] = _scored(tokenizer, prompt, reference, encoded[i], values[at : at + n])
            at += n
        if progress is not None:
            progress(sum(s is not None for s in scored), len(order))

    with torch.inference_mode():
        prefix = _shared_prefix(model, encoded, device, keep_logits) if share_prefix else None
        pending: tuple[list[int], torch.Tensor | None] | None = None
        for start in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled()
            batch = order[start : start + batch_size]
            nll = _batch_nll(model, [encoded[i] for i in batch], pad, device, keep_logits, batch_size, prefix)
            # This batch is queued on the device before the previous one's numbers are read back
            # (a host sync) and turned into tokens on the CPU, so the two overlap.
            if pending is not None:
                finish(*pending)
            pending = (batch, nll)
        if pending is not None:
            finish(*pending)
    return _summarize(scored)


@dataclass
class _Prefix:
    """Keys and values of the prompt prefix that every example starts with, one row per layer."""

    length: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    def cache(self, rows: int) -> Cache:
        return Cache(layers=[_PrefixLayer(k, v, rows) for k, v in zip(self.keys, self.values)])


class _PrefixLayer(DynamicLayer):
    """The shared prefix as seen by `rows` examples: an expanded view, never copied per row.

    A forward pass reads it and stores nothing, so a batch does not keep every layer's keys and
    values alive until its end.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: int) -> None:
        super().__init__()
        self.dtype, self.device = keys.dtype, keys.device
        self.keys = keys.expand(rows, -1, -1, -1)
        self.values = values.expand(rows, -1, -1, -1)
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


def _shared_prefix(
    model: Any, encoded: list[_Encoded], device: torch.device, keep_logits: bool
) -> _Prefix | None:
    """Run the tokens every example starts with once; None when too few are shared.

    Homework prompts repeat one template and instruction (84 of the Tang pairs' 131 tokens), and a
    few-shot prompt repeats its examples: each is then computed once instead of once per example.
    Causal attention makes a prefix's keys and values independent of what follows, so the numbers
    are the loop's.
    """
    if len(encoded) < 2:
        return None
    # Each example keeps at least the token before its first scored one, so every scored
    # position is predicted in the batched pass.
    limit = min((e.targets[0] if e.targets else len(e.input_ids)) - 1 for e in encoded)
    length = min(len(os.path.commonprefix([e.input_ids for e in encoded])), limit)
    if length < _MIN_SHARED_PREFIX:
        return None
    window = getattr(base_model(model).config, "sliding_window", None)
    if window and max(len(e.input_ids) for e in encoded) > int(window):
        return None  # beyond the window the cache keeps only its tail
    ids = torch.tensor([encoded[0].input_ids[:length]], device=device)
    kwargs = {"logits_to_keep": 1} if keep_logits else {}
    cache = model(input_ids=ids, use_cache=True, **kwargs).past_key_values
    layers = getattr(cache, "layers", None)
    if not layers or any(
        getattr(layer, "keys", None) is None or layer.keys.shape[-2] != length for layer in layers
    ):
        return None  # a cache of another kind (recurrent, compressed): no sharing
    return _Prefix(length, [layer.keys for layer in layers], [layer.values for layer in layers])


def _batch_nll(
    model: Any,
    batch: list[_Encoded],
    pad_id: int,
    device: torch.device,
    keep_logits: bool,
    batch_size: int,
    prefix: _Prefix | None = None,
) -> torch.Tensor | None:
    """Per-token NLL of the batch's targets, in order, from one right-padded forward pass.

    Returned on the device, so that the caller decides when to wait for it; None when the batch
    has nothing to score.
    """
    rows = [b for b, enc in enumerate(batch) for _ in enc.targets]
    if not rows:
        return None
    skip = prefix.length if prefix is not None else 0
    width = max(len(enc.input_ids) for enc in batch) - skip
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    for b, enc in enumerate(batch):
        ids[b, : len(enc.input_ids) - skip] = torch.tensor(enc.input_ids[skip:])
    # Right padding keeps every real token at the same position as when run alone, and under the
    # causal mask no real token sees the padding after it, so no padding mask is needed (without
    # one, attention can take its causal kernel).
    cols = torch.tensor([t - 1 - skip for enc in batch for t in enc.targets])
    first = int(cols.min()) if keep_logits else 0
    targets = ids[torch.tensor(rows), cols + 1]
    ids_d, targets, rows_t, cols_t = _to_device(device, ids, targets, torch.tensor(rows), cols - first)
    kwargs: dict[str, Any] = {}
    if keep_logits:
        # Only positions that predict a scored token go through the LM head.
        kwargs["logits_to_keep"] = torch.arange(first, int(cols.max()) + 1, device=device)
    if prefix is not None:
        kwargs["past_key_values"] = prefix.cache(len(batch))
    try:
        logits = model(input_ids=ids_d, use_cache=prefix is not None, **kwargs).logits
    except torch.OutOfMemoryError as err:
        raise PlaygroundError(
            f"Out of memory scoring {len(batch)} examples of up to {width + skip} tokens at once. "
            f"Lower the batch size (now {batch_size}) or the maximum length."
        ) from err
    chunk = max(1, _SOFTMAX_BUDGET // logits.shape[-1])
    return torch.cat(
        [
            F.cross_entropy(
                logits[rows_t[s : s + chunk], cols_t[s : s + chunk]].float(),
                targets[s : s + chunk],
                reduction="none",
            )
            for s in range(0, len(rows), chunk)
        ]
    )


def _to_device(device: torch.device, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """The batch's integer tensors on the device in one asynchronous copy.

    A copy from ordinary (pageable) host memory waits for the work already queued, i.e. the
    previous batch's forward pass, so the host could not prepare this batch meanwhile; a copy
    from pinned memory does not wait.
    """
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if device.type == "cuda":
        flat = flat.pin_memory()
    parts = flat.to(device, non_blocking=True).split([t.numel() for t in tensors])
    return [part.view(t.shape) for part, t in zip(parts, tensors)]


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
    starts = [max(0, i - _DECODE_CONTEXT) for i in range(len(ids))]
    windows = [w for i, start in enumerate(starts) for w in (ids[start:i], ids[start : i + 1])]
    decoded = _decode_all(tokenizer, windows)
    texts = []
    for i in range(len(ids)):
        before, now = decoded[2 * i].rstrip("\ufffd"), decoded[2 * i + 1]
        if i + 1 < len(ids):
            # An unfinished character shows as U+FFFD; it belongs to a later token.
            now = now.rstrip("\ufffd")
        texts.append(now[len(before) :] if now.startswith(before) else now)
    return texts


def _decode_all(tokenizer: Any, windows: list[list[int]]) -> list[str]:
    """`_decode` of each window; one call into the Rust tokenizer where decode is the stock one.

    Two decodes per scored token through Python cost as much as a forward pass of a batch.
    """
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is not None and _stock_decode(type(tokenizer)):
        return backend.decode_batch(windows, skip_special_tokens=False)
    return [_decode(tokenizer, w) for w in windows]


def _stock_decode(cls: type) -> bool:
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    return cls.decode is PreTrainedTokenizerBase.decode and cls._decode is TokenizersBackend._decode


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
