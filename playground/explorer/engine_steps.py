"""Explorer steps from an external engine's logprobs (PLAYGROUND_ENGINE_URL), no local weights.

The engine answers with OpenAI completions `logprobs: N`: per new token its text, its
log-probability and the top N candidates by text. They become the same KeptStep records the
local engine keeps, with three differences the page states: the candidates are the engine's
top N (N = RemoteEngine.top_logprobs, often 20, not 64); "after processors" equals the raw
probability for the settings the answer was made with (engines return raw logprobs only; a
slider moved afterwards is still recomputed from the kept log-probabilities by the one sampler,
which is exact up to the tail's mass, as locally); and the entropy is that of the kept
candidates only (a lower bound). A branch continues from prompt + prefix + candidate on the
engine, with the same seed; engines do not skip the draws the prefix used, so branching at the
token that was taken need not give back the same answer.
"""

from __future__ import annotations

import math
from typing import Any

from playground.generation.kept import KeptStep
from playground.generation.remote import RemoteEngine, complete_with_logprobs
from playground.generation.settings import DecodingSettings


def engine_continuation(
    loaded: Any,
    engine: RemoteEngine,
    ids_so_far: list[int],
    settings: DecodingSettings,
    keep_top: int,
) -> tuple[list[int], list[KeptStep], str]:
    """(new token ids, their steps, why it ended) from the engine, continuing `ids_so_far`."""
    tok = loaded.tokenizer
    prompt = tok.decode(ids_so_far, skip_special_tokens=False)
    top_n = max(1, min(int(keep_top), engine.top_logprobs))
    answer = complete_with_logprobs(engine, loaded, prompt, settings, top_n)
    chosen = _chosen_ids(tok, answer.text, answer.tokens)
    steps = [
        _step(tok, token_id, logprob, top)
        for token_id, logprob, top in zip(chosen, answer.token_logprobs, answer.top_logprobs, strict=False)
    ]
    if len(chosen) < len(answer.tokens):
        reason = "a token the engine named by text only"  # the rest cannot be placed here
    elif answer.finish_reason == "length" or len(chosen) >= settings.max_new_tokens:
        reason = "length"
    elif settings.stop and (not chosen or chosen[-1] not in _eos(loaded)):
        reason = "stop string"  # the engine stopped before a stop string it was sent
    else:
        reason = "eos"
    return chosen, steps, reason


def _eos(loaded: Any) -> set[int]:
    from playground.generation.engine import eos_ids

    return eos_ids(loaded.model, loaded.tokenizer)


def _chosen_ids(tok: Any, text: str, tokens: list[str]) -> list[int]:
    """The ids of the engine's tokens: the answer re-tokenized here when that gives the same
    tokens (the usual case, byte pieces of a character included), else each token's text on its
    own, up to the first that no single token spells (a byte piece of a broken character)."""
    whole = tok.encode(text, add_special_tokens=False) if text else []
    if len(whole) == len(tokens) and all(
        tok.decode([i], skip_special_tokens=False) == piece for i, piece in zip(whole, tokens, strict=True)
    ):
        return [int(i) for i in whole]
    ids: list[int] = []
    for piece in tokens:
        token_id = _token_id(tok, piece)
        if token_id is None:
            break
        ids.append(token_id)
    return ids


def _token_id(tok: Any, piece: str) -> int | None:
    """The id whose text is `piece`; None where no single token spells it."""
    encoded = tok.encode(piece, add_special_tokens=False) if piece else []
    if len(encoded) == 1:
        return int(encoded[0])
    token_id = tok.convert_tokens_to_ids(piece)
    if isinstance(token_id, int) and token_id != tok.unk_token_id:
        return token_id
    return None


def _step(tok: Any, chosen: int, chosen_logprob: float, top: dict[str, float]) -> KeptStep:
    candidates: dict[int, float] = {}
    for piece, logprob in top.items():
        token_id = _token_id(tok, piece)
        if token_id is not None and token_id not in candidates:
            candidates[token_id] = logprob
    candidates.setdefault(chosen, chosen_logprob)
    ranked = sorted(candidates.items(), key=lambda kv: -kv[1])
    ids = tuple(i for i, _ in ranked)
    logprobs = tuple(v for _, v in ranked)
    # Log-probabilities stand for logits with a logsumexp of 0, so raw probabilities are exact.
    entropy = -math.fsum(math.exp(v) * v for v in logprobs if v > -math.inf)
    return KeptStep(ids, logprobs, 0.0, entropy, chosen, chosen_logprob, logprobs, chosen_logprob)
