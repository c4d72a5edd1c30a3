"""Token log-probabilities in OpenAI's completions shape, from one scoring pass over the tokens.

Generation and scoring are separate: the engine decodes (with whatever sampling the request
asked for) and returns its token ids; this module then runs the model once over prompt and
answer under `exclusive_model` and reads each token's log-probability under the model itself
(before temperature or top-p), as vLLM and OpenAI report them. `echo` with `max_tokens` 0 or 1
is how lm-evaluation-harness scores a continuation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from playground.api.errors import bad_request
from playground.models.access import exclusive_model

# Rows of logits turned into log-probabilities at a time: a long prompt never needs a whole
# [tokens x vocabulary] float32 copy at once.
SCORE_CHUNK = 256


@dataclass
class TokenLogprobs:
    """OpenAI's `logprobs` object: one entry per token; the first prompt token has no logprob."""

    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float | None] = field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = field(default_factory=list)
    text_offset: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        }


def score_tokens(
    loaded: Any, ids: list[int], adapter: str | None, top_n: int
) -> list[tuple[float, dict[int, float]]]:
    """For each token after the first: its log-probability given the ones before, and the `top_n`
    most likely tokens there with theirs (ids)."""
    if loaded.is_seq2seq:
        raise bad_request("logprobs and echo are not available for encoder-decoder models.")
    if len(ids) > loaded.context_length:
        raise bad_request(f"{len(ids)} tokens do not fit the model's context of {loaded.context_length}.")
    if len(ids) < 2:
        return []
    with exclusive_model(loaded, adapter) as held, torch.inference_mode():
        model = held.model
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, :-1]
        targets = torch.tensor(ids[1:], device=logits.device)
        scored: list[tuple[float, dict[int, float]]] = []
        for start in range(0, logits.shape[0], SCORE_CHUNK):
            logp = logits[start : start + SCORE_CHUNK].float().log_softmax(-1)
            chosen = logp.gather(1, targets[start : start + SCORE_CHUNK, None])[:, 0].tolist()
            top = logp.topk(top_n, dim=-1) if top_n > 0 else None
            for i, value in enumerate(chosen):
                alternatives = (
                    dict(zip(top.indices[i].tolist(), top.values[i].tolist(), strict=True))
                    if top is not None
                    else {}
                )
                scored.append((value, alternatives))
    return scored


def token_pieces(tokenizer: Any, ids: list[int]) -> list[str]:
    """Each token's own text (special tokens written out, as they were in the prompt)."""
    return [tokenizer.decode([i]) for i in ids]


def completion_logprobs(
    loaded: Any,
    prompt_ids: list[int],
    new_ids: list[int],
    adapter: str | None,
    top_n: int,
    echo: bool,
    shown: str | None = None,
) -> TokenLogprobs:
    """The logprobs of the new tokens (after the prompt's, with `echo`).

    Every new token is reported, an end-of-turn one included (as vLLM does: lm-evaluation-harness
    drops the last token of an echoed answer); when a stop string cut the answer, `shown` is the
    text kept and only the tokens that make it are reported.
    """
    scored = score_tokens(loaded, prompt_ids + new_ids, adapter, top_n)
    tok = loaded.tokenizer
    out = TokenLogprobs()
    offset = 0
    if echo:
        for n, piece in enumerate(token_pieces(tok, prompt_ids)):
            _add(out, tok, piece, offset, scored[n - 1] if n > 0 else None)
            offset += len(piece)
    pieces = token_pieces(tok, new_ids)
    if shown is not None:
        pieces = _covering(pieces, len(shown))
    for n, piece in enumerate(pieces):
        _add(out, tok, piece, offset, scored[len(prompt_ids) + n - 1])
        offset += len(piece)
    return out


def _covering(pieces: list[str], length: int) -> list[str]:
    """The first pieces whose text reaches `length` characters."""
    total = 0
    for n, piece in enumerate(pieces):
        if total >= length:
            return pieces[:n]
        total += len(piece)
    return pieces


def _add(
    out: TokenLogprobs, tok: Any, piece: str, offset: int, score: tuple[float, dict[int, float]] | None
) -> None:
    out.tokens.append(piece)
    out.text_offset.append(offset)
    if score is None:
        out.token_logprobs.append(None)
        out.top_logprobs.append(None)
        return
    value, alternatives = score
    out.token_logprobs.append(value)
    top: dict[str, float] = {}
    for token_id, logp in alternatives.items():
        top.setdefault(tok.decode([token_id]), logp)
    out.top_logprobs.append(top)
