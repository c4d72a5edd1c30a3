"""Tokens grouped into whole characters, for showing probabilities per character.

Byte-level tokenizers split a Chinese character into two or three tokens, none of which decodes
to anything readable alone. A piece is the shortest run of consecutive tokens that decodes to
whole characters; its probability is the product of its tokens' (the chance of the model writing
that character there), and it keeps its raw tokens for a closer look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Piece:
    text: str
    start: int  # index of its first token
    token_ids: tuple[int, ...]
    tokens: tuple[str, ...]  # the raw tokens, as the tokenizer spells them
    logprob: float  # sum over its tokens

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)


def merge_pieces(tokenizer: Any, ids: Sequence[int], logprobs: Sequence[float]) -> list[Piece]:
    """Group `ids` (with each token's log-probability) into pieces of whole characters.

    A run that never completes (the answer stopped mid-character) is kept as a last piece whose
    text is what decodes of it, without the replacement character."""
    if len(ids) != len(logprobs):
        raise ValueError("one log-probability per token")
    pieces: list[Piece] = []
    start = 0
    for end in range(1, len(ids) + 1):
        run = list(ids[start:end])
        text = tokenizer.decode(run, skip_special_tokens=False)
        if REPLACEMENT in text and end < len(ids):
            continue
        pieces.append(
            Piece(
                text=text.replace(REPLACEMENT, ""),
                start=start,
                token_ids=tuple(run),
                tokens=tuple(tokenizer.convert_ids_to_tokens(run)),
                logprob=float(sum(logprobs[start:end])),
            )
        )
        start = end
    return pieces
