"""Pieces every API response shares: ids, timestamps, usage and why an answer ended."""

from __future__ import annotations

import time
import uuid
from typing import Any

from playground.generation.stream import GenerationUpdate


def completion_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def finish_reason(update: GenerationUpdate) -> str:
    """OpenAI's words: "length" when the token limit ended it, else "stop" (eos or a stop string)."""
    return "length" if update.reason == "length" else "stop"


def model_list(ids: list[str], owner: str) -> dict[str, Any]:
    created = now()
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": created, "owned_by": owner} for i in ids],
    }
