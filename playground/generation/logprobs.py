"""Per-token log-probabilities and top alternatives of a generation (OpenAI-style `logprobs`).

Made from the steps an engine row kept (`Request.keep_top`): each generated token's raw model
log-probability and the `top` most likely tokens at that step, as plain data for JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from playground.generation.kept import KeptStep

MAX_TOP = 20


@dataclass(frozen=True)
class Alternative:
    token: str
    token_id: int
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token: str  # what the token decodes to alone
    token_id: int
    logprob: float  # the model's own (before temperature and the filters)
    top: tuple[Alternative, ...]  # most likely first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_logprobs(tokenizer: Any, steps: Sequence[KeptStep], top: int) -> list[TokenLogprob]:
    """One entry per step: the chosen token's log-probability and its step's `top` alternatives."""
    out = []
    for step in steps:
        n = max(0, min(int(top), len(step.ids)))
        alternatives = tuple(
            Alternative(tokenizer.decode([t], skip_special_tokens=False), int(t), lp)
            for t, lp in zip(step.ids[:n], step.raw_logprobs[:n], strict=True)
        )
        out.append(
            TokenLogprob(
                tokenizer.decode([step.chosen], skip_special_tokens=False),
                step.chosen,
                step.chosen_logprob,
                alternatives,
            )
        )
    return out
