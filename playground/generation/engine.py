"""One generation engine per resident model: every caller's rows decode together.

A background thread runs a continuous batch. Requests (prompt ids, decoding settings, a stop
flag, an adapter name) wait in a queue and join the batch at step boundaries; each step feeds one
token per row through the model once, so sixteen answers cost about what one costs where reading
the weights dominates. A row leaves when it reaches eos, its token limit, a stop string or its
stop flag, and its ticket yields the growing text meanwhile.

- Newcomers are prefilled alone (at most `max_prefills_per_step` and `prefill_tokens` per step),
  so a long prompt delays the others by one prefill, not by its whole answer.
- Interactive requests (chat) are admitted before background ones (evaluations, comparisons),
  and background rows never take the last `reserved_interactive` rows of the batch: a chat
  stays interactive while an evaluation runs. Background owners are served round-robin.
- A row whose prefill fails fails alone; a step that fails undoes itself and drops its newest
  row (the one that made it fail, e.g. by running out of memory), then the others go on.
- On a PeftModel every row names its adapter (or the base model) via peft's `adapter_names`,
  so rows with different LoRA adapters share one batch.
- Each step holds the model's access lock (models/access.py): direct work on the model waits
  for the step, and the batch waits for it.

Two batch caches, one decode loop and one sampler:
- `SlotRows` (slot_rows.py; CUDA): each row holds a slot of a preallocated cache and every step
  is one CUDA-graph replay over all slots, so 1..N rows cost about one step of kernels.
- `PaddedRows` (padded_rows.py; any device): a left-padded DynamicCache with eager steps, for
  what the slots do not take (see `slot_reason`: CPU, peft models whose rows pick adapters,
  sliding-window models) and for rows longer than the slot cache's cap.
`PLAYGROUND_ENGINE_CACHE=padded` (or `slots`) picks the cache for comparison. Beam search and
encoder-decoder models stay on `generate()` (see `engine_reason`).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from playground.errors import Cancelled, PlaygroundError
from playground.generation.kept import KeptStep, kept_steps, record_steps
from playground.generation.padded_rows import PaddedRows, can_pad
from playground.generation.sampler import RowSampling, draw_next_token, process_logits
from playground.generation.settings import (
    UNSAMPLED_GENERATION_OPTIONS,
    DecodingSettings,
    generation_config_option,
)
from playground.generation.stops import cut_at_stop, held_back
from playground.messages import Message
from playground.models.access import model_access

log = logging.getLogger(__name__)

INTERACTIVE = "interactive"
BACKGROUND = "background"


@dataclass(frozen=True)
class EngineLimits:
    max_rows: int = 16
    # Newcomers prefilled per step. On the slot cache they share one left-padded forward (up to
    # `max_prefill_rows`); elsewhere each is a forward of its own, so fewer.
    max_prefills_per_step: int = 2
    max_prefill_rows: int = 8
    # Prompt tokens prefilled per step (one newcomer is always admitted, however long).
    prefill_tokens: int = 1024
    # Rows only interactive requests may take.
    reserved_interactive: int = 4
    # Interactive requests one owner (session) may have waiting or running.
    per_owner: int = 4
    max_waiting: int = 512
    # The thread ends after this long without work (a later request starts it again).
    idle_seconds: float = 30.0


@dataclass
class Request:
    prompt_ids: list[int]
    settings: DecodingSettings
    stop: threading.Event = field(default_factory=threading.Event)
    adapter: str | None = None
    kind: str = INTERACTIVE
    owner: str = ""
    # Keep each step's top `keep_top` candidates (kept.py) for the final update; 0 keeps nothing,
    # so ordinary rows pay nothing for the explorer.
    keep_top: int = 0
    # Draws of the seeded generator to pass over first (a branch continuing another answer).
    skip_draws: int = 0


@dataclass
class RowUpdate:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # since the row joined the batch
    finished: bool = False
    stopped: bool = False
    reason: str = ""  # eos, length, stop string, stopped, error
    ids: list[int] | None = None  # the new ids, on the final update
    error: BaseException | None = None
    kept: list[KeptStep] | None = None  # one per new id, on the final update of a keep_top row


@dataclass(frozen=True)
class EngineSnapshot:
    running: int
    waiting: int
    interactive_running: int
    background_running: int
    max_rows: int


class Ticket:
    """A submitted request: its updates, its place in the queue, a way to stop it."""

    def __init__(self, engine: Engine, request: Request, number: int) -> None:
        self.engine = engine
        self.request = request
        self.number = number
        self.submitted = time.perf_counter()
        self.first_token_at: float | None = None
        self.state = "waiting"
        self._updates: queue.Queue[RowUpdate] = queue.Queue()
        self.last: RowUpdate | None = None

    def put(self, update: RowUpdate) -> None:
        if self.first_token_at is None and update.new_tokens > 0:
            self.first_token_at = time.perf_counter()
        self._updates.put(update)

    def updates(self, poll: float | None = None) -> Iterator[RowUpdate | None]:
        """The latest update whenever there is news; None every `poll` seconds without news."""
        while True:
            try:
                update = self._updates.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            while not update.finished:
                try:
                    update = self._updates.get_nowait()
                except queue.Empty:
                    break
            self.last = update
            yield update
            if update.finished:
                return

    def result(self) -> RowUpdate:
        """The final update; the row's error is raised."""
        for update in self.updates():
            if update is not None and update.finished:
                if update.error is not None:
                    raise update.error
                return update
        raise AssertionError("unreachable")

    def cancel(self) -> None:
        self.request.stop.set()

    def status(self) -> str:
        return self.engine.ticket_status(self)


@dataclass(eq=False)
class _Row:
    ticket: Ticket
    sampling: RowSampling
    started: float
    eos: set[int]
    ids: list[int] = field(default_factory=list)
    text: str = ""
    slot: int | None = None  # its slot in the SlotRows batch; None: in PaddedRows
    kept: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # record_steps slices, per new id


def engine_reason(loaded: Any, settings: DecodingSettings) -> str | None:
    """Why the engine cannot serve this request (so it runs on generate()), or None."""
    if settings.num_beams > 1:
        return "beam search runs on generate(), one request at a time"
    if loaded.is_seq2seq:
        return "encoder-decoder models run on generate()"
    key = generation_config_option(loaded.model, UNSAMPLED_GENERATION_OPTIONS)
    return f"the model's generation_config sets {key}" if key else None


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end an answer, as generate() sees them (model's generation_config first)."""
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None) if gen is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(e) for e in [eos]}


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "base_model")


@contextmanager
def _adapter_layers_on(model: Any) -> Iterator[None]:
    """peft ignores `adapter_names` while adapter layers are disabled (the base-model state)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = next((m for m in model.modules() if isinstance(m, BaseTunerLayer)), None)
    was_off = layer is not None and layer.disable_adapters
    if was_off:
        model.base_model.enable_adapter_layers()
    try:
        yield
    finally:
        if was_off:
            model.base_model.disable_adapter_layers()


def _left_padded(prompts: Sequence[list[int]], device: Any) -> dict[str, torch.Tensor]:
    """Prompts of different lengths as one left-padded batch: ids, mask and each token's position
    (counted from the row's own first token, as if the row were alone)."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for j, prompt in enumerate(prompts):
        ids[j, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[j, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": positions.to(device),
    }


class _OneRow:
    """Row `j` of a batched prefill's cache as a one-row cache: what SlotRows copies into a slot
    (the row's tokens are its last columns, the padding before them is never read)."""

    def __init__(self, cache: Any, j: int) -> None:
        self.layers = [_RowLayer(layer.keys[j : j + 1], layer.values[j : j + 1]) for layer in cache.layers]


@dataclass
class _RowLayer:
    keys: torch.Tensor
    values: torch.Tensor


def oom_message(where: str) -> str:
    return (
        f"Out of GPU memory during {where}. Try fewer max new tokens, fewer beams, a shorter prompt "
        "or a smaller batch, or load the model in 4-bit. The model is still loaded and usable."
    )


class Engine:
    def __init__(self, loaded: Any, limits: EngineLimits | None = None, cache: str | None = None) -> None:
        """`cache`: auto (slots on CUDA where the model allows), slots or padded; default from the
        PLAYGROUND_ENGINE_CACHE environment variable."""
        from playground.generation.slot_rows import cache_choice

        self.loaded = loaded
        self.cache_choice = cache or cache_choice()
        if self.cache_choice not in ("auto", "slots", "padded"):
            raise ValueError(f"cache must be auto, slots or padded (got {self.cache_choice!r})")
        # The slot batch, once the first prefill showed the model can use it; why not otherwise.
        self._slots: Any = None
        self.slot_reason: str | None = None
        self._slot_checked: Any = None
        self.limits = limits or EngineLimits()
        self._access = model_access(loaded)
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []
        self._rows: list[_Row] = []
        self._padded = PaddedRows()
        self._thread: threading.Thread | None = None
        self._closed: str | None = None
        self._numbers = itertools.count()
        self._last_background_owner: str | None = None
        # Rows one batch may hold: 1 until a prefill shows the cache can be padded.
        self._row_capacity: int | None = None
        self._mean_seconds = 5.0  # of a finished request, for the queue estimate
        self.steps = 0

    # --- callers' side
    def submit(self, request: Request) -> Ticket:
        """Queue a request; refused at once (PlaygroundError) when it cannot or may not run."""
        loaded, settings = self.loaded, request.settings.validate()
        reason = engine_reason(loaded, settings)
        if reason is not None:
            raise PlaygroundError(f"This request cannot be batched: {reason}.")
        if self._access.held_here():
            raise RuntimeError("generation was requested inside exclusive_model(): it would wait on itself")
        n = len(request.prompt_ids)
        if n == 0:
            raise PlaygroundError("The prompt is empty.")
        if n + settings.max_new_tokens > loaded.context_length:
            raise PlaygroundError(
                f"The prompt has {n} tokens; with {settings.max_new_tokens} new tokens it exceeds the "
                f"model's context of {loaded.context_length}. Shorten the chat (Clear) or lower max new tokens."
            )
        if request.adapter is not None:
            names = getattr(loaded.model, "peft_config", {}) if _is_peft(loaded.model) else {}
            if request.adapter not in names:
                raise PlaygroundError(f"Adapter {request.adapter} is not loaded.")
        with self._cond:
            if self._closed is not None:
                raise PlaygroundError(self._closed)
            if len(self._waiting) >= self.limits.max_waiting:
                raise PlaygroundError(
                    f"The server has {len(self._waiting)} requests waiting already; try again in a moment."
                )
            if request.owner and request.kind == INTERACTIVE:
                mine = sum(
                    t.request.owner == request.owner and t.request.kind == INTERACTIVE
                    for t in self._waiting + [r.ticket for r in self._rows]
                )
                if mine >= self.limits.per_owner:
                    raise PlaygroundError(
                        f"You already have {mine} answers being generated (the limit is "
                        f"{self.limits.per_owner}); wait for one to finish or press Stop."
                    )
            ticket = Ticket(self, request, next(self._numbers))
            self._waiting.append(ticket)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="generation-engine", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return ticket

    def snapshot(self) -> EngineSnapshot:
        with self._cond:
            interactive = sum(r.ticket.request.kind == INTERACTIVE for r in self._rows)
            return EngineSnapshot(
                running=len(self._rows),
                waiting=len(self._waiting),
                interactive_running=interactive,
                background_running=len(self._rows) - interactive,
                max_rows=self.capacity(),
            )

    def capacity(self) -> int:
        return self.limits.max_rows if self._row_capacity is None else self._row_capacity

    def position(self, ticket: Ticket) -> int | None:
        """1-based place in the order admission takes waiting requests; None once running."""
        with self._cond:
            order = self._admission_order()
            return order.index(ticket) + 1 if ticket in order else None

    def ticket_status(self, ticket: Ticket) -> str:
        """What a user sees: 'generating with N others' or their place in the queue."""
        if ticket.state == "running":
            others = len(self._rows) - 1
            if others <= 0:
                return "generating alone"
            return f"generating with {others} other{'s' if others > 1 else ''}"
        if ticket.state == "waiting":
            k = self.position(ticket)
            if k is None:
                return "starting"
            wait = self._mean_seconds * -(-k // max(1, self.capacity()))
            return f"waiting: position {k} of {len(self._waiting)}, about {wait:.0f} s"
        return ticket.state

    def close(self, message: str = "The model was unloaded.") -> None:
        """Fail everything queued or running with `message`, and end the thread."""
        with self._cond:
            self._closed = message
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        with self._cond:
            pending = self._waiting + [r.ticket for r in self._rows]
            self._waiting, self._rows = [], []
            self._clear_caches()
        for ticket in pending:
            self._finish_ticket(
                ticket, RowUpdate("", len(ticket.request.prompt_ids), 0, 0.0), PlaygroundError(message)
            )

    # --- the batch thread
    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._waiting and not self._rows and self._closed is None:
                    self._cond.wait(timeout=self.limits.idle_seconds)
                if self._closed is not None or (not self._waiting and not self._rows):
                    self._thread = None
                    self._clear_caches()
                    return
            try:
                with torch.inference_mode():
                    self._drop_stopped()
                    self._admit()
                    if self._rows:
                        self._step()
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything
                log.exception("generation engine step failed")
                self._fail_rows(list(range(len(self._rows))), exc)

    def _admission_order(self) -> list[Ticket]:
        interactive = [t for t in self._waiting if t.request.kind == INTERACTIVE]
        background = [t for t in self._waiting if t.request.kind != INTERACTIVE]
        owners = list(dict.fromkeys(t.request.owner for t in background))
        if self._last_background_owner in owners:
            at = owners.index(self._last_background_owner) + 1
            owners = owners[at:] + owners[:at]
        queues = {o: [t for t in background if t.request.owner == o] for o in owners}
        fair = [
            q[i]
            for i in range(max((len(q) for q in queues.values()), default=0))
            for q in queues.values()
            if i < len(q)
        ]
        return interactive + fair

    def _choose(self, most: int) -> list[Ticket]:
        capacity = self.capacity()
        free = (1 if self._row_capacity is None else capacity) - len(self._rows)
        reserve = min(self.limits.reserved_interactive, capacity - 1)
        background = sum(r.ticket.request.kind != INTERACTIVE for r in self._rows)
        chosen: list[Ticket] = []
        tokens = 0
        for ticket in self._admission_order():
            if len(chosen) >= min(free, most):
                break
            if ticket.request.kind != INTERACTIVE:
                if background >= capacity - reserve:
                    continue
                background += 1
            n = len(ticket.request.prompt_ids)
            if chosen and tokens + n > self.limits.prefill_tokens:
                break
            chosen.append(ticket)
            tokens += n
        return chosen

    def _drop_stopped(self) -> None:
        with self._cond:
            cancelled = [t for t in self._waiting if t.request.stop.is_set()]
            self._waiting = [t for t in self._waiting if not t.request.stop.is_set()]
        for ticket in cancelled:
            update = RowUpdate("", len(ticket.request.prompt_ids), 0, 0.0, True, True, "stopped", [])
            self._finish_ticket(ticket, update)
        stopped = [i for i, r in enumerate(self._rows) if r.ticket.request.stop.is_set()]
        if stopped:
            self._end_rows({i: "stopped" for i in stopped})

    def _admit(self) -> None:
        slots = self._ready_slots()
        most = self.limits.max_prefill_rows if slots is not None else self.limits.max_prefills_per_step
        with self._cond:
            chosen = self._choose(most)
            for ticket in chosen:
                self._waiting.remove(ticket)
                ticket.state = "starting"
            if chosen:
                request = chosen[-1].request
                if request.kind != INTERACTIVE:
                    self._last_background_owner = request.owner
        together = [t for t in chosen if slots is not None and self._fits_slot(slots, t)]
        if len(together) > 1 and len(together) <= slots.slots - len(slots.used):
            groups = [together] + [[t] for t in chosen if t not in together]
        else:
            groups = [[t] for t in chosen]
        for group in groups:
            try:
                self._prefill(group)
            except Exception as exc:  # noqa: BLE001 - these requests fail, the batch goes on
                for ticket in group:
                    self._finish_ticket(
                        ticket,
                        RowUpdate("", len(ticket.request.prompt_ids), 0, 0.0),
                        self._user_error(exc, "prefill"),
                    )

    def _ready_slots(self) -> Any:
        """The slot batch once a first prefill has sized it, else None (newcomers go one by one)."""
        model = self.loaded.model
        if model is None or self._row_capacity is None:
            return None
        slots = self._slot_batch(model)
        return slots if slots is not None and slots.cap is not None else None

    @staticmethod
    def _fits_slot(slots: Any, ticket: Ticket) -> bool:
        return len(ticket.request.prompt_ids) + ticket.request.settings.max_new_tokens <= slots.cap

    def _model_kwargs(self, adapters: Sequence[str | None]) -> dict[str, Any]:
        if not _is_peft(self.loaded.model):
            return {}
        return {"adapter_names": [a or "__base__" for a in adapters]}

    @contextmanager
    def _forward(self) -> Iterator[Any]:
        model = self.loaded.model
        if model is None:
            raise PlaygroundError(self._closed or "The model was unloaded.")
        with self._access:
            if _is_peft(model):
                with _adapter_layers_on(model):
                    yield model
            else:
                yield model

    def _prefill(self, tickets: list[Ticket]) -> None:
        """Prefill newcomers and start their rows: one alone, or several (bound for the slots) in
        one left-padded forward, each row then copied out of it into its slot."""
        loaded, started = self.loaded, time.perf_counter()
        requests = [t.request for t in tickets]
        with self._forward() as model:
            device = model.device
            if len(requests) == 1:
                ids = torch.tensor([requests[0].prompt_ids], dtype=torch.long, device=device)
                out = model(input_ids=ids, use_cache=True, **self._model_kwargs([requests[0].adapter]))
            else:
                out = model(**_left_padded([r.prompt_ids for r in requests], device), use_cache=True)
            logits = out.logits[:, -1, :]
            min_new = int(getattr(getattr(model, "generation_config", None), "min_new_tokens", None) or 0)
            eos = eos_ids(model, loaded.tokenizer)
            samplings = [
                RowSampling.start(r.settings, r.prompt_ids, device, sorted(eos), min_new, r.skip_draws)
                for r in requests
            ]
            scores = process_logits(logits, samplings)
            chosen = draw_next_token(scores, samplings)
            tokens = chosen.tolist()
        cache = out.past_key_values
        if self._row_capacity is None:
            self._row_capacity = self.limits.max_rows if can_pad(cache) else 1
        rows = [_Row(t, sampling, started, eos) for t, sampling in zip(tickets, samplings, strict=True)]
        for row in rows:
            if row.ticket.request.keep_top > 0:
                row.kept = []
        if any(row.kept is not None for row in rows):
            self._keep(rows, logits, scores, chosen)
        slots = self._slot_batch(model)
        with self._cond:
            for j, row in enumerate(rows):
                request = row.ticket.request
                n = len(request.prompt_ids)
                prefilled = cache if len(rows) == 1 else _OneRow(cache, j)
                if slots is not None and slots.fits(n + request.settings.max_new_tokens, prefilled):
                    row.slot = slots.add(prefilled, n, n + request.settings.max_new_tokens)
                else:
                    self._padded.add(cache, n)
                self._rows.append(row)
                row.ticket.state = "running"
        for row, token in zip(rows, tokens, strict=True):
            try:
                self._took([row], [token])
            except Exception as exc:  # noqa: BLE001 - this row fails, the batch goes on
                self._fail_rows([self._rows.index(row)], exc)

    def _slot_batch(self, model: Any) -> Any:
        """The slot batch for this model (made on first use), or None where PaddedRows serve."""
        from playground.generation.slot_rows import SlotRows, slot_reason

        if self._slots is not None and self._slots.model is model:
            return self._slots
        if self._slots is not None:
            if any(r.slot is not None for r in self._rows):
                return None  # the model object changed under running rows: new rows go padded
            self._slots.clear()  # its captured step belongs to another model object
            self._slots = None
        if self._slot_checked is model:
            return None
        self._slot_checked = model
        self.slot_reason = slot_reason(model, self.cache_choice)
        if self.slot_reason is not None:
            if self.cache_choice == "slots":
                log.warning("engine: slot cache unavailable (%s); rows use PaddedRows", self.slot_reason)
            return None
        self._slots = SlotRows(model, self.limits.max_rows, int(self.loaded.context_length))
        return self._slots

    def _clear_caches(self) -> None:
        self._padded.clear()
        if self._slots is not None:
            self._slots.clear()

    def _step(self) -> None:
        rows = list(self._rows)
        in_slots = [r for r in rows if r.slot is not None]
        padded = [r for r in rows if r.slot is None]
        try:
            with self._forward() as model:
                logits = []
                if in_slots:
                    logits.append(self._slots.step([(r.slot, r.ids[-1]) for r in in_slots]))
                if padded:
                    last = torch.tensor([r.ids[-1] for r in padded], dtype=torch.long, device=model.device)
                    kwargs = self._model_kwargs([r.ticket.request.adapter for r in padded])
                    out = model(**self._padded.step_inputs(last), **kwargs)
                    logits.append(out.logits[:, -1, :])
                ordered = in_slots + padded
                raw = torch.cat(logits)
                scores = process_logits(raw, [r.sampling for r in ordered])
                chosen = draw_next_token(scores, [r.sampling for r in ordered])
                tokens = chosen.tolist()
        except Exception as exc:  # noqa: BLE001 - drop the newest row, the others go on
            # Slots only advance after a whole step, so a failed one leaves them as they were.
            self._padded.undo_step()
            if isinstance(exc, torch.OutOfMemoryError) and torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("batch step failed (%s: %s); dropping the newest row", type(exc).__name__, exc)
            self._fail_rows([len(rows) - 1], exc)
            return
        if in_slots:
            self._slots.stepped()
        if padded:
            self._padded.stepped()
        self.steps += 1
        self._keep(ordered, raw, scores, chosen)
        self._took(ordered, tokens)

    @staticmethod
    def _keep(rows: list[_Row], raw: torch.Tensor, scores: torch.Tensor, chosen: torch.Tensor) -> None:
        """Record this step's candidates for the rows that keep them (on the device, no sync)."""
        keeping = [i for i, r in enumerate(rows) if r.kept is not None]
        by_k: dict[int, list[int]] = {}
        for i in keeping:
            by_k.setdefault(rows[i].ticket.request.keep_top, []).append(i)
        for k, group in by_k.items():
            at = torch.tensor(group, device=raw.device)
            ids, values = record_steps(raw[at], scores[at], chosen[at], k)
            for j, i in enumerate(group):
                rows[i].kept.append((ids[j], values[j]))

    def _took(self, rows: list[_Row], tokens: list[int]) -> None:
        """Each of these rows took one token: stream it, end the rows that are done."""
        tok = self.loaded.tokenizer
        ended: dict[int, str] = {}
        now = time.perf_counter()
        for row, token in zip(rows, tokens, strict=True):
            row.sampling.observe(token)
            row.ids.append(token)
            settings = row.ticket.request.settings
            text, hit = cut_at_stop(
                tok.decode(row.ids, skip_special_tokens=True).rstrip("\ufffd"), settings.stop
            )
            row.text = text
            at = self._rows.index(row)
            if hit:
                ended[at] = "stop string"
            elif token in row.eos:
                ended[at] = "eos"
            elif len(row.ids) >= settings.max_new_tokens:
                ended[at] = "length"
            else:
                prompt = len(row.ticket.request.prompt_ids)
                # The start of a stop string that may still be coming is not shown yet.
                shown = text[: len(text) - held_back(text, settings.stop)] if settings.stop else text
                row.ticket.put(RowUpdate(shown, prompt, len(row.ids), now - row.started))
        if ended:
            self._end_rows(ended)

    def _end_rows(self, reasons: dict[int, str]) -> None:
        now = time.perf_counter()
        with self._cond:
            ending = [(self._rows[i], reason) for i, reason in reasons.items()]
            self._remove_rows(set(reasons))
        for row, reason in ending:
            seconds = now - row.started
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * seconds
            update = RowUpdate(
                row.text,
                len(row.ticket.request.prompt_ids),
                len(row.ids),
                seconds,
                finished=True,
                stopped=reason == "stopped",
                reason=reason,
                ids=list(row.ids),
                kept=None if row.kept is None else kept_steps(row.kept, row.ids),
            )
            self._finish_ticket(row.ticket, update)

    def _fail_rows(self, indices: list[int], exc: BaseException) -> None:
        error = self._user_error(exc, "generation")
        with self._cond:
            failing = [self._rows[i] for i in indices]
            self._remove_rows(set(indices))
        for row in failing:
            update = RowUpdate(row.text, len(row.ticket.request.prompt_ids), len(row.ids), 0.0)
            self._finish_ticket(row.ticket, update, error)

    def _remove_rows(self, indices: set[int]) -> None:
        """Take these rows out of the batch: free their slots, cut them out of PaddedRows."""
        padded = [r for r in self._rows if r.slot is None]
        self._padded.keep([i for i, r in enumerate(padded) if self._rows.index(r) not in indices])
        for i in indices:
            if self._rows[i].slot is not None:
                self._slots.release(self._rows[i].slot)
        self._rows = [r for i, r in enumerate(self._rows) if i not in indices]

    @staticmethod
    def _user_error(exc: BaseException, where: str) -> BaseException:
        if isinstance(exc, torch.OutOfMemoryError):
            return PlaygroundError(oom_message(where))
        return exc

    @staticmethod
    def _finish_ticket(ticket: Ticket, update: RowUpdate, error: BaseException | None = None) -> None:
        ticket.state = "failed" if error is not None else "done"
        update.finished = True
        update.error = error
        if error is not None:
            update.reason = "error"
        ticket.put(update)


_ENGINES_LOCK = threading.Lock()


def engine_for(loaded: Any) -> Engine:
    """The engine of a loaded model (made on first use and kept on it)."""
    engine = loaded.__dict__.get("_engine")
    if engine is None:
        from playground.models.weightless import require_weights

        require_weights(loaded, "The in-process decode loop (batched and fused decoding)")
        with _ENGINES_LOCK:
            engine = loaded.__dict__.get("_engine")
            if engine is None:
                engine = loaded.__dict__["_engine"] = Engine(loaded)
    return engine


def close_engine(loaded: Any, message: str = "The model was unloaded.") -> None:
    engine = loaded.__dict__.pop("_engine", None) if loaded is not None else None
    if engine is not None:
        engine.close(message)


def run_all(
    loaded: Any,
    requests: Sequence[Request],
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    window: int | None = None,
) -> list[RowUpdate]:
    """Every request's final update, in order; at most `window` of them in the engine at once.

    A stopped request or `should_stop()` cancels the rest and raises Cancelled; a failed row's
    error is raised once the others in flight are cancelled.
    """
    engine = engine_for(loaded)
    window = window or engine.capacity()
    results: list[RowUpdate | None] = [None] * len(requests)
    in_flight: dict[int, Ticket] = {}
    submitted = done = 0
    try:
        while done < len(requests):
            while submitted < len(requests) and len(in_flight) < window:
                in_flight[submitted] = engine.submit(requests[submitted])
                submitted += 1
            oldest = min(in_flight)
            for update in in_flight[oldest].updates(poll=0.2):
                if should_stop is not None and should_stop():
                    raise Cancelled()
                if update is not None and update.finished:
                    if update.error is not None:
                        raise update.error
                    if update.stopped:
                        raise Cancelled(Message("cancelled.stopped"))
                    results[oldest] = update
            del in_flight[oldest]
            done += 1
            if progress is not None:
                progress(done, len(requests))
    finally:
        for ticket in in_flight.values():
            ticket.cancel()
    return [r for r in results if r is not None]
