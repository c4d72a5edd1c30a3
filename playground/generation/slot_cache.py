"""A KV cache of fixed slots: each row of the batch owns one slot and its own write column.

Keys and values are preallocated per layer as [slots, kv_heads, max_len, head_dim]; `positions`
[slots] holds each slot's next write column. A one-token step scatters every slot's new key and
value into its own column with index tensors (no host sync, no shape that changes from step to
step), so the step can be captured once as a CUDA graph and replayed whichever rows are active.
The model gets a ready 4D additive mask [slots, 1, 1, max_len] (a slot sees columns up to its
position), which transformers' masking uses as it is, and each slot's position as its position id.

A newcomer is prefilled alone elsewhere; `load` copies its keys and values into a free slot's
first columns. A row that leaves only frees its slot. Inactive slots still run (at column 0,
seeing only that column); nobody reads their outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class SlotLayer(CacheLayerMixin):
    """One layer's slots; `positions` is shared by all layers of the cache."""

    is_compileable = True
    is_sliding = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values, self.positions = keys, values, positions
        self.max_cache_len = int(keys.shape[2])
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Allocated up front (in __init__)."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if key_states.shape[0] != self.keys.shape[0] or key_states.shape[-2] != 1:
            raise ValueError(
                f"a slot cache takes one token for each of its {self.keys.shape[0]} slots per step, "
                f"got {tuple(key_states.shape)}"
            )
        at = self.positions.view(-1, 1, 1, 1)
        self.keys.scatter_(2, at.expand(-1, key_states.shape[1], 1, key_states.shape[-1]), key_states)
        self.values.scatter_(2, at.expand(-1, value_states.shape[1], 1, value_states.shape[-1]), value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.max_cache_len, 0

    def get_seq_length(self) -> int:
        # Rows differ; callers pass position_ids and a 4D mask, so nothing needs one length.
        return self.max_cache_len

    def get_max_length(self) -> int:
        return self.max_cache_len


class SlotCache(Cache):
    """Per-layer slot tensors, each slot's next column (`positions`) and which slots are in use."""

    def __init__(
        self,
        shapes: list[tuple[int, int, int]],
        slots: int,
        max_len: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        """`shapes`: (kv_heads, key_dim, value_dim) of each layer."""
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.active = torch.zeros(slots, dtype=torch.long, device=device)
        self.columns = torch.arange(max_len, dtype=torch.long, device=device)
        layers = [
            SlotLayer(
                torch.zeros((slots, heads, max_len, kd), dtype=dtype, device=device),
                torch.zeros((slots, heads, max_len, vd), dtype=dtype, device=device),
                self.positions,
            )
            for heads, kd, vd in shapes
        ]
        super().__init__(layers=layers)
        self.slots, self.max_len, self.dtype, self.device = slots, max_len, dtype, device

    @staticmethod
    def shapes_of(prefilled: Any) -> list[tuple[int, int, int]]:
        return [
            (int(layer.keys.shape[1]), int(layer.keys.shape[-1]), int(layer.values.shape[-1]))
            for layer in prefilled.layers
        ]

    @staticmethod
    def bytes_per_column(prefilled: Any) -> int:
        """Bytes one slot needs per token (all layers, keys and values)."""
        return sum(
            layer.keys[0, :, :1].numel() * layer.keys.element_size()
            + layer.values[0, :, :1].numel() * layer.values.element_size()
            for layer in prefilled.layers
        )

    def load(self, slot: int, prefilled: Any, length: int) -> None:
        """Copy a one-row prefilled cache holding `length` tokens into `slot`'s first columns."""
        if length > self.max_len:
            raise ValueError(f"{length} tokens do not fit a slot of {self.max_len}")
        for mine, theirs in zip(self.layers, prefilled.layers, strict=True):
            mine.keys[slot, :, :length].copy_(theirs.keys[0, :, -length:])
            mine.values[slot, :, :length].copy_(theirs.values[0, :, -length:])
        self.positions[slot] = length
        self.active[slot] = 1

    def release(self, slot: int) -> None:
        self.active[slot] = 0
        self.positions[slot] = 0

    def resized(self, max_len: int) -> SlotCache:
        """A copy with `max_len` columns per slot (the used columns must fit)."""
        shapes = [
            (int(la.keys.shape[1]), int(la.keys.shape[-1]), int(la.values.shape[-1])) for la in self.layers
        ]
        other = SlotCache(shapes, self.slots, max_len, self.dtype, self.device)
        keep = min(max_len, self.max_len)
        for mine, theirs in zip(other.layers, self.layers, strict=True):
            mine.keys[:, :, :keep].copy_(theirs.keys[:, :, :keep])
            mine.values[:, :, :keep].copy_(theirs.values[:, :, :keep])
        other.positions.copy_(self.positions)
        other.active.copy_(self.active)
        return other

    def head(self, slots: int) -> SlotCache:
        """The first `slots` slots as a cache of their own: views of the same memory, so a step run
        on it writes this cache (a small batch need not compute every slot)."""
        if slots == self.slots:
            return self
        part = SlotCache.__new__(SlotCache)
        part.positions, part.active = self.positions[:slots], self.active[:slots]
        part.columns = self.columns
        layers = [SlotLayer(la.keys[:slots], la.values[:slots], part.positions) for la in self.layers]
        Cache.__init__(part, layers=layers)
        part.slots, part.max_len, part.dtype, part.device = slots, self.max_len, self.dtype, self.device
        return part

    def step_inputs(self, ids: torch.Tensor) -> dict[str, Any]:
        """Model inputs feeding `ids` [slots, 1] at each slot's position (graph-safe: tensor ops only)."""
        visible = self.columns[None, :] <= self.positions[:, None]
        mask = torch.zeros(visible.shape, dtype=self.dtype, device=self.device)
        mask = mask.masked_fill(~visible, torch.finfo(self.dtype).min)
        return {
            "input_ids": ids,
            "attention_mask": mask[:, None, None, :],
            "position_ids": self.positions[:, None],
            "past_key_values": self,
            "use_cache": True,
        }

    def advance(self) -> None:
        """The step's tokens are in the cache: every active slot moves to its next column."""
        self.positions.add_(self.active)
