"""Side by side: several columns of decoding settings on one prompt, in as few generate calls as possible.

Every greedy and sampling row of a request runs in ONE batched call: `RowSettingsProcessor`
applies each row's own repetition penalty, no-repeat n-gram size, temperature, top-k and top-p,
and draws each sampling row's token with that row's own random generator. On a GPU, rows that
continue one prompt (the side-by-side grid) run through fast_decode's batched CUDA-graph loop,
where four columns cost about one; elsewhere the call is `generate()` with that processor.
Beam-search columns run in one call per distinct beam setting (beam search cannot be mixed
with other rows).

Because each row owns its generator (seeded with the shared seed, plus the draw number), a
column's text depends only on its prompt, settings and seed: not on which other columns share
the batch, nor on its position in it. Columns with the same seed also see the same random
numbers, so a difference between two columns is the settings', not luck's. (On a GPU, matrix
kernels round differently for different row counts, so this holds exactly among grids that run
the same number of rows: one to four, see fast_decode.row_bucket; bitsandbytes models excepted.)
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from playground.errors import Cancelled, PlaygroundError
from playground.generation import fast_decode
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.stops import cut_at_stop
from playground.generation.stream import decode_new, encode_prompt, oom_message, seed_everything
from playground.models.loader import LoadedModel

log = logging.getLogger(__name__)

MAX_SAMPLES = 16
MAX_SWEEP_VALUES = 20
# Parameters a sweep can vary, and the type each value is cast to.
SWEEP_PARAMS: dict[str, type] = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "num_beams": int,
    "length_penalty": float,
    "repetition_penalty": float,
    "no_repeat_ngram_size": int,
    "max_new_tokens": int,
}


@dataclass(frozen=True)
class Column:
    label: str
    settings: DecodingSettings


@dataclass
class ColumnResult:
    """One column's draws; `seconds` is the wall time of the generate call the column ran in."""

    label: str
    settings: DecodingSettings  # with the shared seed filled in
    texts: list[str]  # one per draw; greedy and beam columns have a single draw
    new_tokens: list[int]  # per draw
    seconds: float
    peak_memory_mb: float | None  # CUDA only: peak allocated during the column's call
    shared_call_with: int  # columns in the same generate call, this one included

    @property
    def tokens_per_s(self) -> float:
        return sum(self.new_tokens) / self.seconds if self.seconds > 0 else 0.0

    @property
    def deterministic(self) -> bool:
        return self.settings.mode != "sample"


@dataclass(frozen=True)
class RowRequest:
    prompt: str
    settings: DecodingSettings
    seed: int = 0  # seed of this row's own random generator (sampling rows)


@dataclass
class RowOutput:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the whole call
    peak_memory_mb: float | None
    call: int  # rows with the same number shared one generate call


@dataclass
class SweepPoint:
    value: float
    texts: list[str]
    distinct_1: float
    distinct_2: float
    mean_length: float  # new tokens
    mean_perplexity: float  # the model's perplexity of its own outputs, given the prompt


class RowSettingsProcessor(LogitsProcessor):
    """Per-row decoding settings inside one batched, otherwise greedy, `generate()` call.

    Sampling rows pick their token here (Gumbel-max with the row's generator) and leave it as the
    only finite score, so generate's argmax takes it; greedy rows are left to that argmax. Penalties
    ignore each row's left padding, so a row behaves as it would alone.
    """

    def __init__(
        self,
        settings: Sequence[DecodingSettings],
        seeds: Sequence[int],
        pad_lengths: Sequence[int],
    ) -> None:
        self.settings = list(settings)
        self.seeds = [int(s) for s in seeds]
        self.ngram = [s.no_repeat_ngram_size for s in settings]
        # Settings live on the CPU, so deciding what to apply needs no device sync per token;
        # `_t` copies each once to the scores' device.
        self.pad_lengths = torch.tensor([int(n) for n in pad_lengths])
        self.penalty = torch.tensor([s.repetition_penalty for s in settings], dtype=torch.float32)
        self.sample = torch.tensor([s.do_sample for s in settings])
        self.temperature = torch.tensor([s.temperature if s.do_sample else 1.0 for s in settings])
        self.top_k = torch.tensor([s.top_k if s.do_sample else 0 for s in settings])
        self.top_p = torch.tensor([s.top_p if s.do_sample else 1.0 for s in settings], dtype=torch.float32)
        self._any_sample = bool(self.sample.any())
        self._any_penalty = bool((self.penalty != 1).any())
        self._max_k = int(self.top_k.max())
        self._any_p = bool((self.top_p < 1).any())
        self._on_device: dict[str, torch.Tensor] = {}
        self._generators: list[torch.Generator] | None = None

    def _t(self, name: str, device: torch.device) -> torch.Tensor:
        cached = self._on_device.get(name)
        if cached is None or cached.device != device:
            cached = self._on_device[name] = getattr(self, name).to(device)
        return cached

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = self.penalize(input_ids, scores)
        scores = self.ban_ngrams(input_ids, scores)
        if not self._any_sample:
            return scores
        chosen = self.draw(self.warp(scores))
        only_chosen = torch.full_like(scores, -math.inf).scatter_(1, chosen[:, None], 0.0)
        return torch.where(self._t("sample", scores.device)[:, None], only_chosen, scores)

    def _real(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Which positions are real tokens rather than left padding."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return positions[None, :] >= self._t("pad_lengths", input_ids.device)[:, None]

    def penalize(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if not self._any_penalty:
            return scores
        penalty = self._t("penalty", scores.device)[:, None]
        vocab = scores.shape[1]
        # Padding goes to a spare column past the vocabulary, so it marks no token as seen.
        ids = torch.where(self._real(input_ids), input_ids, vocab)
        seen = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
        seen = seen.scatter_(1, ids, True)[:, :vocab]
        penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
        return torch.where(seen, penalized, scores)

    def ban_ngrams(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        length, vocab = input_ids.shape[1], scores.shape[1]
        sizes = sorted(set(self.ngram) - {0})
        if sizes:
            scores = scores.clone()  # rows are filled in place below
        for n in sizes:
            if length < n:
                continue
            rows = torch.tensor([i for i, m in enumerate(self.ngram) if m == n], device=scores.device)
            ids = input_ids[rows]
            # A window whose first n-1 tokens equal the current suffix bans its last token.
            prefix = ids[:, length + 1 - n :]
            windows = ids.unfold(1, n, 1)
            starts = torch.arange(windows.shape[1], device=ids.device)
            real = starts[None, :] >= self._t("pad_lengths", ids.device)[rows][:, None]
            matches = (windows[..., :-1] == prefix[:, None, :]).all(dim=-1) & real
            banned = torch.zeros(len(rows), vocab + 1, dtype=torch.bool, device=scores.device)
            banned.scatter_(1, torch.where(matches, windows[..., -1], vocab), True)
            scores[rows] = scores[rows].masked_fill(banned[:, :vocab], -math.inf)
        return scores

    def warp(self, scores: torch.Tensor) -> torch.Tensor:
        """Temperature, then top-k, then top-p, per row: the order of transformers' own warpers."""
        device, vocab = scores.device, scores.shape[1]
        scores = scores / self._t("temperature", device)[:, None]
        if self._max_k > 0:
            k = self._t("top_k", device).clamp(max=vocab)
            top = scores.topk(min(self._max_k, vocab), dim=-1).values
            kth = top.gather(1, (k.clamp(min=1) - 1)[:, None])
            scores = scores.masked_fill((k > 0)[:, None] & (scores < kth), -math.inf)
        if self._any_p:
            top_p = self._t("top_p", device)[:, None]
            ascending, order = scores.sort(dim=-1, descending=False)
            cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1 - top_p)
            drop[:, -1] = False  # keep at least the most likely token
            drop = drop.scatter(1, order, drop) & (top_p < 1)
            scores = scores.masked_fill(drop, -math.inf)
        return scores

    def draw(self, warped: torch.Tensor) -> torch.Tensor:
        """One token per row, sampled from softmax(warped) with each row's own generator."""
        if self._generators is None:
            # Rows with the same seed would draw the same numbers from generators of their own,
            # so they share one: a step costs one draw per distinct seed, not one per row (the
            # grid gives every column the same seed).
            distinct = sorted(set(self.seeds))
            self.seed_rows = torch.tensor([distinct.index(s) for s in self.seeds])
            self._generators = [torch.Generator(device=warped.device).manual_seed(s) for s in distinct]
        uniform = torch.stack(
            [
                torch.rand(warped.shape[1], generator=g, device=warped.device, dtype=torch.float32)
                for g in self._generators
            ]
        )
        if len(self._generators) != warped.shape[0]:
            uniform = uniform[self._t("seed_rows", warped.device)]
        gumbel = -torch.log(-torch.log(uniform))
        return (warped + gumbel).argmax(dim=-1)


class _RowLimits(StoppingCriteria):
    """Ends each row at its own max_new_tokens, and every row when `stop` is set."""

    def __init__(self, start: int, limits: Sequence[int] | None, stop: threading.Event | None) -> None:
        self.start = start  # where generated tokens begin in the ids generate() passes
        self.limits = torch.tensor(list(limits)) if limits is not None else None
        self.stop = stop

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        rows = input_ids.shape[0]
        if self.stop is not None and self.stop.is_set():
            return torch.ones(rows, dtype=torch.bool, device=input_ids.device)
        if self.limits is None:
            return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        if self.limits.device != input_ids.device:
            self.limits = self.limits.to(input_ids.device)  # once, not a copy per step
        return (input_ids.shape[1] - self.start) >= self.limits


def _pad_id(tok: Any) -> int:
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return int(pad if pad is not None else 0)


def _encode_left(loaded: LoadedModel, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Left-padded ids and mask; each prompt encoded exactly as a single-prompt run encodes it."""
    rows = [encode_prompt(loaded, p)["input_ids"][0] for p in prompts]
    width = max(len(r) for r in rows)
    device = rows[0].device
    ids = torch.full((len(rows), width), _pad_id(loaded.tokenizer), dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = r
        mask[i, width - len(r) :] = 1
    return ids, mask, [width - len(r) for r in rows]


def _new_tokens(ids: torch.Tensor, eos_ids: set[int]) -> int:
    """Generated tokens up to and including the first eos (the rest is padding)."""
    for n, t in enumerate(ids.tolist()):
        if t in eos_ids:
            return n + 1
    return int(ids.numel())


def _run_call(
    loaded: LoadedModel, requests: Sequence[RowRequest], per_row: bool, stop: threading.Event | None
) -> tuple[list[tuple[str, int, int]], float, float | None]:
    """One generate call; per (text, prompt tokens, new tokens), seconds and CUDA peak MB."""
    tok = loaded.tokenizer
    ids, mask, pads = _encode_left(loaded, [r.prompt for r in requests])
    width = ids.shape[1]
    # Encoder-decoder models return decoder tokens only, after one start token, and their
    # processors see those decoder tokens, which have no padding.
    start = 1 if loaded.is_seq2seq else width
    limits = [r.settings.max_new_tokens for r in requests]
    if width + (0 if loaded.is_seq2seq else max(limits)) > loaded.context_length:
        raise PlaygroundError(
            f"The prompt has {width - min(pads)} tokens; with {max(limits)} new tokens it exceeds the "
            f"model's context of {loaded.context_length}. Shorten the prompt or lower max new tokens."
        )
    if per_row:
        kwargs = GREEDY.with_(max_new_tokens=max(limits)).generate_kwargs()
        processor = RowSettingsProcessor(
            [r.settings for r in requests],
            [r.seed for r in requests],
            [0] * len(pads) if loaded.is_seq2seq else pads,
        )
        extra: dict[str, Any] = {"logits_processor": LogitsProcessorList([processor])}
        criteria = _RowLimits(start, limits, stop)
    else:
        kwargs = requests[0].settings.generate_kwargs()
        extra = {}
        criteria = _RowLimits(start, None, stop)
        seed_everything(requests[0].seed)
    cuda = ids.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(ids.device)
    began = time.perf_counter()
    fast = None
    try:
        with torch.inference_mode():
            if per_row:
                fast = _fast_rows(loaded, ids, pads, processor, limits, stop)
            if fast is None:
                out = loaded.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    **kwargs,
                    **extra,
                    stopping_criteria=StoppingCriteriaList([criteria]),
                    pad_token_id=_pad_id(tok),
                )
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise PlaygroundError(oom_message("the side-by-side comparison")) from exc
    seconds = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(ids.device) / 2**20 if cuda else None
    if stop is not None and stop.is_set():
        raise Cancelled("Stopped.")
    rows = []
    for i, limit in enumerate(limits):
        if fast is not None:
            new, n = torch.tensor(fast[i], dtype=torch.long), len(fast[i])
        else:
            new = out[i, start : start + limit]
            # generate() stops a row at its generation_config's eos ids, which may differ from
            # the tokenizer's (several ids for some chat models).
            n = _new_tokens(new, fast_decode.eos_ids(loaded.model, tok))
        rows.append((cut_at_stop(decode_new(tok, new[:n]), requests[i].settings.stop), width - pads[i], n))
    return rows, seconds, peak


def _fast_rows(
    loaded: LoadedModel,
    ids: torch.Tensor,
    pads: list[int],
    processor: RowSettingsProcessor,
    limits: list[int],
    stop: threading.Event | None,
) -> list[list[int]] | None:
    """Every row's new ids from fast_decode's batched loop, or None where it does not apply.

    generate() spends most of a 7B step launching kernels from Python, and more for four rows
    than for one; the loop replays one captured step for all rows, so a grid of four columns
    costs about what one column does.
    """
    if loaded.is_seq2seq or any(pads) or not bool((ids == ids[:1]).all()):
        return None  # only continuations of one prompt share the loop's cache
    model, prompt = loaded.model, ids[:1]
    reason = fast_decode.rows_unsupported_reason(model, prompt, len(limits), max(limits))
    if reason is not None:
        if ids.device.type == "cuda":
            log.info("batched fast decode not used: %s", reason)
        return None
    min_new = int(getattr(model.generation_config, "min_new_tokens", None) or 0)
    eos = fast_decode.eos_ids(model, loaded.tokenizer)
    try:
        return fast_decode.decode_rows(
            model, prompt, processor, limits, eos, min_new, stop.is_set if stop is not None else None
        )
    except fast_decode.Busy:
        log.info("batched fast decode not used: another request is decoding with this model")
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - nothing was shown yet, so generate() can take over
        log.warning("batched fast decode failed (%s: %s); using generate()", type(exc).__name__, exc)
        model._playground_fast_rows = None
    return None


def generate_rows(
    loaded: LoadedModel, requests: Sequence[RowRequest], stop: threading.Event | None = None
) -> list[RowOutput]:
    """Outputs in request order: every non-beam row in one call, beam rows in one call per setting."""
    for r in requests:
        r.settings.validate()
    per_row = [i for i, r in enumerate(requests) if r.settings.num_beams == 1]
    beam_groups: dict[tuple[DecodingSettings, int], list[int]] = {}
    for i, r in enumerate(requests):
        if r.settings.num_beams > 1:
            beam_groups.setdefault((r.settings, r.seed), []).append(i)
    calls = ([(per_row, True)] if per_row else []) + [(idx, False) for idx in beam_groups.values()]
    outputs: list[RowOutput | None] = [None] * len(requests)
    for number, (idx, is_per_row) in enumerate(calls):
        if stop is not None and stop.is_set():
            raise Cancelled("Stopped.")
        rows, seconds, peak = _run_call(loaded, [requests[i] for i in idx], is_per_row, stop)
        for i, (text, prompt_tokens, new_tokens) in zip(idx, rows, strict=True):
            outputs[i] = RowOutput(text, prompt_tokens, new_tokens, seconds, peak, number)
    return [o for o in outputs if o is not None]


def compare_columns(
    loaded: LoadedModel,
    prompt: str,
    columns: Sequence[Column],
    n_samples: int = 1,
    seed: int | None = 0,
    stop: threading.Event | None = None,
    batched: bool = True,
) -> list[ColumnResult]:
    """Every column on the same prompt and seed; sampling columns get `n_samples` draws (seed + draw)."""
    if not columns:
        raise PlaygroundError("Add at least one column to compare.")
    if not 1 <= n_samples <= MAX_SAMPLES:
        raise PlaygroundError(f"Samples per column must be between 1 and {MAX_SAMPLES} (got {n_samples}).")
    seed = random.randrange(2**31) if seed is None else int(seed)
    requests: list[RowRequest] = []
    owner: list[int] = []
    settings = []
    for c, column in enumerate(columns):
        try:
            s = column.settings.with_(seed=seed).validate()
        except PlaygroundError as exc:
            raise PlaygroundError(f"Column {column.label}: {exc}") from exc
        settings.append(s)
        for draw in range(n_samples if s.mode == "sample" else 1):
            requests.append(RowRequest(prompt, s, seed + draw))
            owner.append(c)
    if batched:
        outputs = generate_rows(loaded, requests, stop)
    else:
        outputs = []
        for c in range(len(columns)):
            part = generate_rows(loaded, [r for r, o in zip(requests, owner) if o == c], stop)
            outputs += [RowOutput(**{**vars(o), "call": c}) for o in part]
    results = []
    for c, column in enumerate(columns):
        mine = [o for o, k in zip(outputs, owner) if k == c]
        call = mine[0].call
        results.append(
            ColumnResult(
                label=column.label,
                settings=settings[c],
                texts=[o.text for o in mine],
                new_tokens=[o.new_tokens for o in mine],
                seconds=mine[0].seconds,
                peak_memory_mb=mine[0].peak_memory_mb,
                shared_call_with=len({k for o, k in zip(outputs, owner) if o.call == call}),
            )
        )
    return results


def with_param(base: DecodingSettings, param: str, value: float) -> DecodingSettings:
    """`base` with one parameter changed; temperature 0 means greedy, above 0 turns sampling on."""
    if param not in SWEEP_PARAMS:
        raise PlaygroundError(f"Cannot sweep {param!r}; choose one of {', '.join(SWEEP_PARAMS)}.")
    cast = SWEEP_PARAMS[param]
    if param == "temperature":
        if value <= 0:
            return base.with_(do_sample=False)
        return base.with_(do_sample=True, temperature=float(value))
    if cast is int and float(value) != int(value):
        raise PlaygroundError(f"{param} takes whole numbers (got {value}).")
    return base.with_(**{param: cast(value)})


def sweep(
    loaded: LoadedModel,
    prompt: str,
    base: DecodingSettings,
    param: str = "temperature",
    values: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5),
    n_samples: int = 4,
    seed: int | None = 0,
    stop: threading.Event | None = None,
) -> list[SweepPoint]:
    """Output diversity, length and perplexity as one decoding parameter varies."""
    from playground.evaluation.metrics import distinct_n
    from playground.evaluation.perplexity import perplexity

    if not values:
        raise PlaygroundError("Give at least one value to sweep.")
    if len(values) > MAX_SWEEP_VALUES:
        raise PlaygroundError(f"A sweep takes at most {MAX_SWEEP_VALUES} values (got {len(values)}).")
    columns = [Column(f"{param}={v:g}", with_param(base, param, v)) for v in values]
    results = compare_columns(loaded, prompt, columns, n_samples, seed, stop)
    pairs = [(prompt, text) for r in results for text in r.texts]
    scored = perplexity(
        loaded.model,
        loaded.tokenizer,
        pairs,
        batch_size=8,
        should_stop=(stop.is_set if stop is not None else None),
    ).examples
    points, start = [], 0
    for value, r in zip(values, results, strict=True):
        ppl = [e.perplexity for e in scored[start : start + len(r.texts)] if not math.isnan(e.perplexity)]
        start += len(r.texts)
        points.append(
            SweepPoint(
                value=float(value),
                texts=r.texts,
                distinct_1=distinct_n(r.texts, 1),
                distinct_2=distinct_n(r.texts, 2),
                mean_length=sum(r.new_tokens) / len(r.new_tokens),
                mean_perplexity=sum(ppl) / len(ppl) if ppl else math.nan,
            )
        )
    return points
