"""The chat's settings as the page sends them, turned into what generation takes."""

from __future__ import annotations

import random
from typing import Any

from playground.bounds import bounded, bounded_int
from playground.generation import DecodingSettings
from playground.limits import current_limits
from playground.ui.common import message_text


def decoding_from_ui(
    temperature: float,
    top_p: float,
    top_k: int,
    max_new: int,
    rep_penalty: float,
    seed: float | None,
    min_p: float = 0.0,
    typical_p: float = 1.0,
    stop: tuple[str, ...] = (),
) -> DecodingSettings:
    # Values from the API may be anything (NaN, 1e30, a string): bound them before any arithmetic.
    temperature = bounded(temperature, "temperature", 0, 10)
    top_p, top_k = bounded(top_p, "top-p", 0, 1), bounded_int(top_k, "top-k", 0, 100_000)
    max_new = bounded_int(max_new, "max new tokens", 1, 1_000_000)
    current_limits().check_new_tokens(max_new)
    rep_penalty = bounded(rep_penalty, "repetition penalty", 0.01, 100)
    seed = None if seed is None else bounded(seed, "seed", -1, 2**63 - 1)
    min_p = bounded(min_p or 0.0, "min-p", 0, 1)
    typical_p = bounded(1.0 if typical_p is None else typical_p, "typical-p", 0, 1)
    return DecodingSettings(
        do_sample=temperature > 0,
        temperature=float(temperature) if temperature > 0 else 1.0,
        top_p=float(top_p),
        top_k=int(top_k),
        max_new_tokens=int(max_new),
        repetition_penalty=float(rep_penalty),
        seed=None if seed is None or seed < 0 else int(seed),
        min_p=float(min_p or 0.0),
        typical_p=float(typical_p if typical_p is not None else 1.0),
        stop=tuple(stop),
    ).validate()


def with_drawn_seed(settings: DecodingSettings) -> DecodingSettings:
    """A random seed is drawn here, so the page can show it and the answer can be repeated."""
    return settings if settings.seed is not None else settings.with_(seed=random.randrange(2**31))


def plain_history(history: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    return [
        {"role": m["role"], "content": message_text(m["content"])}
        for m in history or []
        if m.get("role") in ("user", "assistant")
    ]
