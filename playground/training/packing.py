"""Padding-free batches: the examples of one optimizer step packed end to end into a few rows.

Padding each micro-batch to its longest example spends compute on pad tokens, and many small
forward passes each pay a pass's fixed costs: a 4-bit base dequantizes every weight once per
pass, three times with gradient checkpointing (forward, recompute, backward), and short passes
run small, slow matrix products. Packing a step's examples into as few rows as the token budget
allows does the same arithmetic on real tokens only.

Each example keeps its own position ids, restarting at 0. With no attention mask given,
transformers reads those restarts as packed sequences (masking_utils.find_packed_sequence_indices)
and builds a block-diagonal causal mask, so no example attends to another. An example's first
token is never a target: otherwise the previous example's last position would learn to predict it.
"""

from __future__ import annotations

from typing import Any

from playground.training.formatting import IGNORE, FormattedExample


def pack_rows(examples: list[FormattedExample], budget: int) -> list[list[FormattedExample]]:
    """Examples grouped into as few rows of at most `budget` tokens as first-fit decreasing finds.

    An example longer than the budget gets a row of its own (formatting already cut it to max_length).
    """
    rows: list[list[FormattedExample]] = []
    room: list[int] = []
    for example in sorted(examples, key=lambda e: len(e.input_ids), reverse=True):
        n = len(example.input_ids)
        for i, left in enumerate(room):
            if n <= left:
                rows[i].append(example)
                room[i] -= n
                break
        else:
            rows.append([example])
            room.append(budget - n)
    return rows


def packed_batch(row: list[FormattedExample]) -> dict[str, Any]:
    """One row [1, tokens] with input_ids, labels and per-example position_ids (no attention_mask)."""
    import torch

    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for example in row:
        if example.seq2seq:
            raise ValueError("encoder-decoder examples are padded, not packed")
        ids.extend(example.input_ids)
        labels.append(IGNORE)
        labels.extend(example.labels[1:])
        positions.extend(range(len(example.input_ids)))
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
    }


def pack_step(examples: list[FormattedExample], budget: int) -> list[dict[str, Any]]:
    """A step's examples as packed rows of at most `budget` tokens each."""
    return [packed_batch(row) for row in pack_rows(examples, budget)]


def real_tokens(batch: dict[str, Any]) -> int:
    """Tokens a forward pass reads that are not padding."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())
