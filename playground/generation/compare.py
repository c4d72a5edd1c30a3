"""Side by side: several columns of decoding settings on one prompt.

Every greedy and sampling row joins the model's generation engine (engine.py), where each row
keeps its own repetition penalty, no-repeat n-gram size, temperature, top-k, top-p, min-p and
typical-p, and draws with its own random generator (sampler.py); the rows decode in one batch,
beside whatever else the engine is running. Beam-search columns, and every column of an
encoder-decoder model, run in one `generate()` call per distinct setting.

Because each row owns its generator (seeded with the shared seed, plus the draw number), a
column's text depends only on its prompt, settings and seed: not on which other columns share
the batch, nor on its position in it. Columns with the same seed also see the same random
numbers, so a difference between two columns is the settings', not luck's. (On a GPU, matrix
kernels can round differently for different row counts, so a sampled column's text can differ
in rare near-ties.)
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from playground.errors import Cancelled, PlaygroundError
from playground.generation.engine import BACKGROUND, Request, engine_reason, eos_ids, oom_message, run_all
from playground.generation.remote import remote_engine
from playground.generation.settings import DecodingSettings
from playground.generation.stops import cut_at_stop
from playground.generation.stream import decode_new, encode_prompt, seed_everything, stream_generate
from playground.messages import Message
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel
from playground.models.unwrap import pad_id

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
    """One column's label and settings; `adapter` is an adapter attached to the model, by the name
    attach_adapter gave it (None: the base model)."""

    label: str
    settings: DecodingSettings
    adapter: str | None = None


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
    # Per draw, the model's entropy (nats) at each step, when asked for; None for a draw that did
    # not decode in the engine (beam search, encoder-decoder models), which keeps no steps.
    entropies: list[list[float] | None] | None = None

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
    adapter: str | None = None  # None: the base model
    keep_top: int = 0  # >0: keep each step's candidates (Request.keep_top), e.g. for its entropy


@dataclass
class RowOutput:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the whole call
    peak_memory_mb: float | None
    call: int  # rows with the same number shared one generate call
    entropies: list[float] | None = None  # per step, for a row that kept its steps


@dataclass
class SweepPoint:
    value: float
    texts: list[str]
    distinct_1: float
    distinct_2: float
    mean_length: float  # new tokens
    mean_perplexity: float  # the model's perplexity of its own outputs, given the prompt


class _StopFlag(StoppingCriteria):
    """Ends every row of a generate() call when `stop` is set."""

    def __init__(self, stop: threading.Event | None) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        stopped = self.stop is not None and self.stop.is_set()
        return torch.full((input_ids.shape[0],), stopped, dtype=torch.bool, device=input_ids.device)


def _encode_left(loaded: LoadedModel, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Left-padded ids and mask; each prompt encoded exactly as a single-prompt run encodes it."""
    rows = [encode_prompt(loaded, p)["input_ids"][0] for p in prompts]
    width = max(len(r) for r in rows)
    device = rows[0].device
    ids = torch.full((len(rows), width), pad_id(loaded.tokenizer), dtype=torch.long, device=device)
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


def _engine_rows(
    loaded: LoadedModel, requests: Sequence[RowRequest], stop: threading.Event | None
) -> list[tuple[str, int, int, list[float] | None]]:
    """(text, prompt tokens, new tokens, entropy per step or None) of rows decoded together in the
    generation engine; only rows that ask (`keep_top`) keep steps, the others pay nothing."""
    stop = stop or threading.Event()
    if remote_engine(loaded) is not None:
        return _remote_rows(loaded, requests, stop)
    owner = f"compare-{uuid.uuid4().hex[:8]}"
    ids = {r.prompt: encode_prompt(loaded, r.prompt)["input_ids"][0].tolist() for r in requests}
    rows = [
        Request(
            ids[r.prompt],
            r.settings.with_(seed=r.seed),
            stop,
            r.adapter,
            BACKGROUND,
            owner,
            keep_top=r.keep_top,
        )
        for r in requests
    ]
    return [
        (u.text, u.prompt_tokens, u.new_tokens, [s.entropy for s in u.kept] if u.kept is not None else None)
        for u in run_all(loaded, rows, stop.is_set)
    ]


def _remote_rows(
    loaded: LoadedModel, requests: Sequence[RowRequest], stop: threading.Event
) -> list[tuple[str, int, int, None]]:
    """The rows sent to the external engine at once (it batches them), in request order; no
    entropy (the engine's candidates are not kept)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(r: RowRequest) -> tuple[str, int, int, None]:
        # A row's own flag: a finished stream sets it; the shared Stop still reaches it below.
        row_stop = threading.Event()
        last = None
        for update in stream_generate(loaded, r.prompt, r.settings.with_(seed=r.seed), row_stop, r.adapter):
            last = update
            if stop.is_set():
                row_stop.set()
        if stop.is_set():
            raise Cancelled(Message("cancelled.stopped"))
        return last.text, last.prompt_tokens, last.new_tokens, None

    with ThreadPoolExecutor(max_workers=REMOTE_PARALLEL_ROWS) as pool:
        return list(pool.map(one, requests))


# Rows of one comparison in flight on an external engine at once.
REMOTE_PARALLEL_ROWS = 8


def _generate_call(
    loaded: LoadedModel, requests: Sequence[RowRequest], stop: threading.Event | None
) -> list[tuple[str, int, int, None]]:
    """One generate() call for rows with the same settings, seed and adapter (beam search, T5)."""
    tok = loaded.tokenizer
    ids, mask, pads = _encode_left(loaded, [r.prompt for r in requests])
    width = ids.shape[1]
    # Encoder-decoder models return decoder tokens only, after one start token.
    start = 1 if loaded.is_seq2seq else width
    settings = requests[0].settings
    limit = settings.max_new_tokens
    if width + (0 if loaded.is_seq2seq else limit) > loaded.context_length:
        raise PlaygroundError(
            f"The prompt has {width - min(pads)} tokens; with {limit} new tokens it exceeds the "
            f"model's context of {loaded.context_length}. Shorten the prompt or lower max new tokens."
        )
    seed_everything(requests[0].seed)
    try:
        with exclusive_model(loaded, requests[0].adapter), torch.inference_mode():
            out = loaded.model.generate(
                input_ids=ids,
                attention_mask=mask,
                **settings.generate_kwargs(),
                stopping_criteria=StoppingCriteriaList([_StopFlag(stop)]),
                pad_token_id=pad_id(tok),
            )
            eos = eos_ids(loaded.model, tok)
    except torch.cuda.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise PlaygroundError(oom_message("the side-by-side comparison")) from exc
    if stop is not None and stop.is_set():
        raise Cancelled(Message("cancelled.stopped"))
    rows = []
    for i in range(len(requests)):
        new = out[i, start : start + limit]
        # generate() stops a row at its generation_config's eos ids, which may differ from
        # the tokenizer's (several ids for some chat models).
        n = _new_tokens(new, eos)
        rows.append((cut_at_stop(decode_new(tok, new[:n]), settings.stop)[0], width - pads[i], n, None))
    return rows


def generate_rows(
    loaded: LoadedModel, requests: Sequence[RowRequest], stop: threading.Event | None = None
) -> list[RowOutput]:
    """Outputs in request order: rows the engine serves decode together in its batch (call 0);
    the others (beam search, encoder-decoder models) in one generate() call per setting."""
    for r in requests:
        r.settings.validate()
    batched = [i for i, r in enumerate(requests) if engine_reason(loaded, r.settings) is None]
    groups: dict[tuple[DecodingSettings, int, str | None], list[int]] = {}
    for i, r in enumerate(requests):
        if i not in batched:
            groups.setdefault((r.settings, r.seed, r.adapter), []).append(i)
    calls = ([batched] if batched else []) + list(groups.values())
    outputs: list[RowOutput | None] = [None] * len(requests)
    for number, idx in enumerate(calls):
        if stop is not None and stop.is_set():
            raise Cancelled(Message("cancelled.stopped"))
        cuda = loaded.model.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(loaded.model.device)
        began = time.perf_counter()
        part = [requests[i] for i in idx]
        rows = _engine_rows(loaded, part, stop) if idx is batched else _generate_call(loaded, part, stop)
        seconds = time.perf_counter() - began
        peak = torch.cuda.max_memory_allocated(loaded.model.device) / 2**20 if cuda else None
        for i, (text, prompt_tokens, new_tokens, entropies) in zip(idx, rows, strict=True):
            outputs[i] = RowOutput(text, prompt_tokens, new_tokens, seconds, peak, number, entropies)
    return [o for o in outputs if o is not None]


def compare_columns(
    loaded: LoadedModel,
    prompt: str,
    columns: Sequence[Column],
    n_samples: int = 1,
    seed: int | None = 0,
    stop: threading.Event | None = None,
    batched: bool = True,
    entropy: bool = False,
) -> list[ColumnResult]:
    """Every column on the same prompt and seed; sampling columns get `n_samples` draws (seed + draw).

    `entropy`: also the model's entropy at each step of each draw (kept by the engine's rows only
    then, so an ordinary comparison keeps nothing)."""
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
            # One kept candidate is enough: the entropy is of the whole row, computed on the device.
            requests.append(RowRequest(prompt, s, seed + draw, column.adapter, keep_top=1 if entropy else 0))
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
                entropies=[o.entropies for o in mine] if entropy else None,
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
    with exclusive_model(loaded):
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
