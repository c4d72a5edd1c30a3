"""What code on a loaded model reaches for below the wrappers: the transformers model, the pad id."""

from __future__ import annotations

import inspect
from typing import Any


def base_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (the model itself when it has none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def pad_id(tokenizer: Any) -> int:
    """The id rows are padded with: the pad token, else end-of-sequence (Llama-family models
    have no pad token), else 0. Padded positions are masked, so any id in the vocabulary does."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def takes_logits_to_keep(model: Any) -> bool:
    """Whether the model can compute logits for the last positions only (most transformers LMs)."""
    return "logits_to_keep" in inspect.signature(base_model(model).forward).parameters
