"""Prompts the arena takes from a test set (a demo file or an upload): an example's question whole."""

from __future__ import annotations

import random

from playground.data_types import Dataset, Example
from playground.errors import PlaygroundError


def example_prompt(example: Example) -> str:
    """The question as one typed prompt: the instruction, then its input after a blank line."""
    return (example.instruction + (f"\n\n{example.input}" if example.input else "")).strip()


def draw_prompt(dataset: Dataset, rng: random.Random | None = None) -> str:
    """One example's question, drawn at random."""
    if not dataset.examples:
        raise PlaygroundError(f"{dataset.name} has no examples to draw from.")
    return example_prompt((rng or random.SystemRandom()).choice(dataset.examples))
