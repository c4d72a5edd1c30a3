"""The engine's GPU batch: rows in the slots of a SlotCache, every step one CUDA graph replay.

A step runs the first 1, 2, 4, 8... slots, the fewest that hold every row (rows take the lowest
free slot), every count captured when the cache is first stepped (per cache length) and replayed: decode reads the weights
once for all of them, and the graph removes the host's kernel launches (fast_decode's capture:
warm-up on a side stream, fused RMSNorm and rotary inside). Counting slots matters for 4-bit
weights, whose kernels cost more with every row: a lone row runs as a batch of one.
A row's tokens in a slot equal its tokens alone (each slot sees only its own columns).

The cache length grows in buckets (256, 512, ... up to `cap`: the model's context, 4096 and what
half the free GPU memory holds), re-capturing the step when it grows; attention reads every
column of every slot each step, so short chats stay in a short cache. With no row running the
next newcomer picks the bucket again, so one long answer does not keep the cache long.

`slot_reason` says when the engine keeps PaddedRows instead: CPU (unless forced), peft models
(each row picks its adapter through peft's `adapter_names`, which a captured graph would freeze
to the rows of its capture), sliding-window models, or what fast_decode cannot capture.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from typing import Any

import torch

from playground.generation.fast_decode import (
    ENV_SWITCH,
    FUSE_SWITCH,
    _fused_ops,
    _layer_types,
    _model_reason,
)
from playground.generation.slot_cache import SlotCache
from playground.models.unwrap import base_model

log = logging.getLogger(__name__)

# "padded": the engine always uses PaddedRows; "slots": the slot batch on any device (eager
# steps off CUDA); "auto" (default): slots on CUDA when the model allows it.
CACHE_SWITCH = "PLAYGROUND_ENGINE_CACHE"
FIRST_BUCKET = 256
MAX_LEN = 4096


def cache_choice() -> str:
    choice = os.environ.get(CACHE_SWITCH, "auto").strip().lower() or "auto"
    if choice not in ("auto", "slots", "padded"):
        raise ValueError(f"{CACHE_SWITCH} must be auto, slots or padded (got {choice!r})")
    return choice


def slot_reason(model: Any, choice: str = "auto") -> str | None:
    """Why the engine's rows cannot share a slot cache on this model (so PaddedRows), or None."""
    if choice == "padded":
        return f"PaddedRows chosen ({CACHE_SWITCH}=padded)"
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return f"turned off by {ENV_SWITCH}=0"
    if hasattr(model, "peft_config") and hasattr(model, "base_model"):
        return "rows choose LoRA adapters per step (peft adapter_names), which a captured graph cannot vary"
    reason = _model_reason(model, model.device, 0, choice != "slots", ())
    if reason is not None:
        return reason
    base = base_model(model)
    if any(t != "full_attention" for t in _layer_types(base.config)):
        return "the model has sliding-window attention layers"
    attention = getattr(base.config, "_attn_implementation", None)
    if attention not in ("sdpa", "eager"):
        return f"{attention} attention takes no ready 4D mask (the slots need sdpa or eager)"
    return None


def bucket_for(needed: int, cap: int, first: int = FIRST_BUCKET) -> int:
    length = max(1, first)
    while length < needed:
        length *= 2
    return min(length, cap)


class SlotRows:
    """Which slot each row holds, the cache, and the captured step."""

    def __init__(
        self,
        model: Any,
        slots: int,
        context: int,
        first_bucket: int | None = None,
        max_len: int | None = None,
    ) -> None:
        self.model = model
        self.slots = slots
        self.context = context
        self.first_bucket = first_bucket or FIRST_BUCKET
        self.max_len = max_len or MAX_LEN
        self.device = model.device
        self.use_graph = self.device.type == "cuda"
        self.fuse = os.environ.get(FUSE_SWITCH, "1") != "0"
        self.cache: SlotCache | None = None
        self.cap: int | None = None  # longest slot, known once a prefill shows the layer shapes
        self.used: set[int] = set()
        # Per slot count: (the cache's first slots, their input ids, the captured graph, its logits).
        self.steps: dict[int, tuple[SlotCache, torch.Tensor, Any, torch.Tensor | None]] = {}
        self.captures = 0

    def _cap_for(self, prefilled: Any) -> int:
        cap = min(self.context, self.max_len)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            per_slot_column = SlotCache.bytes_per_column(prefilled) * self.slots
            cap = min(cap, int(0.5 * free) // max(1, per_slot_column))
        return cap

    def fits(self, needed: int, prefilled: Any) -> bool:
        """Whether a row of `needed` tokens (prompt and new tokens) can take a slot now."""
        if self.cap is None:
            self.cap = self._cap_for(prefilled)
        return needed <= self.cap and len(self.used) < self.slots

    def add(self, prefilled: Any, length: int, needed: int) -> int:
        """Put a prefilled one-row cache in a free slot (growing the cache if needed); its slot."""
        want = bucket_for(needed, self.cap or needed, self.first_bucket)
        if self.cache is None or (not self.used and self.cache.max_len != want):
            self._drop_graph()
            self.cache = None
            first = prefilled.layers[0].keys
            self.cache = SlotCache(
                SlotCache.shapes_of(prefilled), self.slots, want, first.dtype, first.device
            )
        elif self.cache.max_len < needed:
            self._drop_graph()
            self.cache = self.cache.resized(want)
        slot = min(set(range(self.slots)) - self.used)
        self.cache.load(slot, prefilled, length)
        self.used.add(slot)
        return slot

    def release(self, slot: int) -> None:
        if slot in self.used and self.cache is not None:
            self.used.discard(slot)
            self.cache.release(slot)

    def step_slots(self) -> int:
        """How many of the first slots this step runs: the fewest power of two that holds every row."""
        highest = max(self.used, default=0) + 1
        count = 1
        while count < highest:
            count *= 2
        return min(count, self.slots)

    def step_counts(self) -> list[int]:
        """Every slot count a step may run: 1, 2, 4, ... up to the number of slots."""
        counts, count = [], 1
        while count < self.slots:
            counts.append(count)
            count *= 2
        return [*counts, self.slots]

    def step(self, slot_tokens: list[tuple[int, int]]) -> torch.Tensor:
        """Logits [rows, vocab] for (slot, last token) rows, in their order; positions stay put."""
        count = self.step_slots()
        if self.use_graph and not self.steps:
            # Every count at once, when this cache is first stepped: a count first needed while
            # users wait would stall all of them for a capture.
            for each in self.step_counts():
                self._step_for(each, capture=True)
        part, ids, graph, logits = self._step_for(count, capture=self.use_graph)
        values = [0] * count
        for slot, token in slot_tokens:
            values[slot] = token
        ids.copy_(torch.tensor(values, dtype=torch.long).view(count, 1))
        if self.use_graph:
            graph.replay()
        else:
            logits = self._eager_step(part, ids)
        index = torch.tensor([slot for slot, _ in slot_tokens], dtype=torch.long, device=logits.device)
        return logits.index_select(0, index)

    def _step_for(
        self, count: int, capture: bool
    ) -> tuple[SlotCache, torch.Tensor, Any, torch.Tensor | None]:
        """The first `count` slots' step: their cache view, input ids and (captured once) graph."""
        if count not in self.steps:
            ids = torch.zeros((count, 1), dtype=torch.long, device=self.device)
            self.steps[count] = (self.cache.head(count), ids, None, None)
        part, ids, graph, logits = self.steps[count]
        if capture and graph is None:
            graph, logits = self._capture_step(part, ids)
            self.steps[count] = (part, ids, graph, logits)
        return part, ids, graph, logits

    def stepped(self) -> None:
        self.cache.advance()

    def clear(self) -> None:
        self._drop_graph()
        self.cache, self.used = None, set()

    def _eager_step(self, part: SlotCache, ids: torch.Tensor) -> torch.Tensor:
        out = self.model(**part.step_inputs(ids))
        return out.logits[:, -1, :]

    def _drop_graph(self) -> None:
        """Forget every captured step (the cache they read is being replaced)."""
        captured = any(graph is not None for _, _, graph, _ in self.steps.values())
        self.steps = {}
        if captured:
            torch.cuda.empty_cache()

    def _capture_step(self, part: SlotCache, ids: torch.Tensor) -> tuple[Any, torch.Tensor]:
        if self.fuse:
            try:
                return self._capture(part, ids, fused=True)
            except Exception as exc:  # noqa: BLE001 - no compiler (Triton) etc.: capture unfused
                log.warning(
                    "fused slot step unavailable (%s: %s); capturing it unfused", type(exc).__name__, exc
                )
        return self._capture(part, ids, fused=False)

    def _capture(self, part: SlotCache, ids: torch.Tensor, fused: bool) -> tuple[Any, torch.Tensor]:
        # Warm-up steps (compilation, lazy initialisations, cuBLAS workspaces) run outside the
        # capture. They write each slot's next column, which the real step overwrites anyway.
        with _fused_ops(self.model) if fused else nullcontext():
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._eager_step(part, ids)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: CUDA work of other threads (another model, the UI) does not void it.
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                logits = self._eager_step(part, ids)
        self.captures += 1
        log.info(
            "captured the engine's slot step: %d of %d slots x %d columns (%s)",
            part.slots,
            self.slots,
            self.cache.max_len,
            "fused" if fused else "unfused",
        )
        return graph, logits
