"""Rows of different lengths decoding together: one KV cache, left-padded to a common width.

A newcomer is prefilled alone (exactly as it would be by itself), then its cache is padded on the
left and stacked under the others'; a row that ends is sliced out, and padding columns no row
needs any more are trimmed. Each step feeds one token per row with its own position and a mask
that hides the padding, so a row computes what it would alone. Works on any device.

Every row ends at the last column, so the cache's columns are one shared timeline of `width`
columns and the mask covers all of them. A full-attention layer holds every column. A
sliding-window layer (Mistral, Breeze) holds only the last `window - 1` columns and counts the
timeline in its own `cumulative_length`, which transformers reads to size and place the sliding
mask; that count must be the batch's width, not the length of the row whose cache was adopted
first. Since every row ends at the same column, the last `window - 1` columns hold each row's
window. Sliding layers record the step's token without dropping their oldest column, so a step
that fails part-way can be undone; `stepped` drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def can_pad(cache: Any) -> bool:
    """Whether a prefilled cache is made of full-attention or sliding-window layers this class can pad."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers)


def _pad_left(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if n == 0:
        return t
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_zeros(shape), t], dim=dim)


def _held(layer: Any, width: int) -> int:
    """Columns of a `width`-column timeline this layer holds between steps (the last ones)."""
    if getattr(layer, "is_sliding", False):
        return min(width, layer.sliding_window - 1)
    return width


def _set_width(layer: Any, width: int) -> None:
    """Tell a sliding layer how long the timeline is (full layers count their columns)."""
    if getattr(layer, "is_sliding", False):
        layer.cumulative_length = width


class PaddedRows:
    """The batch's cache (a DynamicCache), its attention mask and each row's length."""

    def __init__(self) -> None:
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # [rows, width], 1 for real tokens
        self.lengths: list[int] = []  # real tokens of each row in the cache

    @property
    def size(self) -> int:
        return len(self.lengths)

    @property
    def width(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[1])

    def add(self, cache: Any, length: int) -> None:
        """Append a row whose prefilled cache holds `length` tokens."""
        row_mask = torch.ones((1, length), dtype=torch.long, device=cache.layers[0].keys.device)
        if self.cache is None:
            for layer in cache.layers:
                if getattr(layer, "is_sliding", False):
                    layer.activate_past_recording()
            self.cache, self.mask, self.lengths = cache, row_mask, [length]
            return
        width = max(self.width, length)
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            held = _held(mine, width)
            mine.keys = torch.cat([self._fit(mine.keys, held), self._fit(theirs.keys, held)])
            mine.values = torch.cat([self._fit(mine.values, held), self._fit(theirs.values, held)])
            _set_width(mine, width)
        self.mask = torch.cat(
            [_pad_left(self.mask, width - self.width, 1), _pad_left(row_mask, width - length, 1)]
        )
        self.lengths.append(length)

    @staticmethod
    def _fit(t: torch.Tensor, held: int) -> torch.Tensor:
        """A layer's keys or values padded on the left to `held` columns."""
        return _pad_left(t, held - t.shape[-2], -2)

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these rows (in this order); drop padding columns no kept row needs."""
        if not rows:
            self.clear()
            return
        if list(rows) == list(range(self.size)):
            return
        index = torch.tensor(list(rows), device=self.mask.device)
        self.lengths = [self.lengths[i] for i in rows]
        width = max(self.lengths)
        self.mask = self.mask[index][:, self.width - width :]
        for layer in self.cache.layers:
            start = layer.keys.shape[-2] - _held(layer, width)
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
            _set_width(layer, width)

    def step_inputs(self, tokens: torch.Tensor) -> dict[str, Any]:
        """Model inputs that feed `tokens` (one per row) after each row's cached tokens."""
        ones = torch.ones((self.size, 1), dtype=self.mask.dtype, device=self.mask.device)
        positions = torch.tensor(self.lengths, device=tokens.device)[:, None]
        return {
            "input_ids": tokens.view(-1, 1),
            "attention_mask": torch.cat([self.mask, ones], dim=1),
            "position_ids": positions,
            "past_key_values": self.cache,
            "use_cache": True,
        }

    def stepped(self) -> None:
        """The last step's tokens are now in the cache."""
        ones = torch.ones((self.size, 1), dtype=self.mask.dtype, device=self.mask.device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        self.lengths = [n + 1 for n in self.lengths]
        for layer in self.cache.layers:
            start = layer.keys.shape[-2] - _held(layer, self.width)
            if start > 0:  # a sliding layer's column that left every row's window
                layer.keys = layer.keys[..., start:, :]
                layer.values = layer.values[..., start:, :]

    def undo_step(self) -> None:
        """After a step that failed part-way: layers it already extended are cut back."""
        if self.cache is None:
            return
        for layer in self.cache.layers:
            held = _held(layer, self.width)
            if layer.keys.shape[-2] > held:
                layer.keys = layer.keys[..., :held, :]
                layer.values = layer.values[..., :held, :]
            _set_width(layer, self.width)

    def clear(self) -> None:
        self.cache, self.mask, self.lengths = None, None, []
