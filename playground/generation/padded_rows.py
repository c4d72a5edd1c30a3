"""Rows of different lengths decoding together: one KV cache, left-padded to a common width.

A newcomer is prefilled alone (exactly as it would be by itself), then its cache is padded on the
left and stacked under the others'; a row that ends is sliced out, and padding columns no row
needs any more are trimmed. Each step feeds one token per row with its own position and a mask
that hides the padding, so a row computes what it would alone. Works on any device; it needs
full-attention layers (a sliding-window layer crops its cache by itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def can_pad(cache: Any) -> bool:
    """Whether a prefilled cache is made of plain full-attention layers this class can pad."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _pad_left(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if n == 0:
        return t
    shape = list(t.shape)
    shape[dim] = n
    return torch.cat([t.new_zeros(shape), t], dim=dim)


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
        row_width = cache.layers[0].keys.shape[-2]
        row_mask = torch.ones((1, row_width), dtype=torch.long, device=cache.layers[0].keys.device)
        if self.cache is None:
            self.cache, self.mask, self.lengths = cache, row_mask, [length]
            return
        width = max(self.width, row_width)
        grow, fill = width - self.width, width - row_width
        for mine, theirs in zip(self.cache.layers, cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, grow, -2), _pad_left(theirs.keys, fill, -2)])
            mine.values = torch.cat([_pad_left(mine.values, grow, -2), _pad_left(theirs.values, fill, -2)])
        self.mask = torch.cat([_pad_left(self.mask, grow, 1), _pad_left(row_mask, fill, 1)])
        self.lengths.append(length)

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these rows (in this order); drop padding columns no kept row needs."""
        if not rows:
            self.clear()
            return
        if list(rows) == list(range(self.size)):
            return
        index = torch.tensor(list(rows), device=self.mask.device)
        self.lengths = [self.lengths[i] for i in rows]
        mask = self.mask[index]
        start = self.width - max(self.lengths)
        self.mask = mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]

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

    def undo_step(self) -> None:
        """After a step that failed part-way: layers it already extended are cut back."""
        if self.cache is None:
            return
        for layer in self.cache.layers:
            if layer.keys.shape[-2] > self.width:
                layer.keys = layer.keys[..., : self.width, :]
                layer.values = layer.values[..., : self.width, :]

    def clear(self) -> None:
        self.cache, self.mask, self.lengths = None, None, []
