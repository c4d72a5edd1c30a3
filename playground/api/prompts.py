"""A prompt as token ids, tokenized the way the page's generation tokenizes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.generation.stream import add_special_tokens


@dataclass
class PromptIds:
    """One prompt as the model sees it, and its text (what `echo` writes back)."""

    ids: list[int]
    text: str


def prompt_ids(loaded: Any, prompt: str | list[int]) -> PromptIds:
    tok = loaded.tokenizer
    if isinstance(prompt, list):
        return PromptIds(list(prompt), tok.decode(prompt))
    ids = tok(prompt, add_special_tokens=add_special_tokens(tok, prompt))["input_ids"]
    return PromptIds(list(ids), prompt)
