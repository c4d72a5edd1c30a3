"""Explorer generation through the engine: an answer with every step's candidates, and branches.

`explore` submits one engine row that keeps its top candidates per step (`Request.keep_top`),
so the explorer decodes with the same loop and sampler as chat. `branch` continues an answer
from step i with another candidate forced: the prompt becomes prompt + answer[:i] + candidate,
with the same settings, and the seeded generator passes over the draws the first i + 1 tokens
used, so branching at the token that was taken gives back the same answer. With an external
engine (PLAYGROUND_ENGINE_URL) the steps come from its logprobs instead (engine_steps.py).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

from playground.errors import Cancelled, PlaygroundError
from playground.explorer.engine_steps import engine_continuation
from playground.explorer.pieces import Piece, merge_pieces
from playground.generation.engine import INTERACTIVE, Request, engine_for, engine_reason, eos_ids
from playground.generation.kept import KeptStep
from playground.generation.remote import remote_engine
from playground.generation.settings import DecodingSettings
from playground.generation.stops import cut_at_stop
from playground.generation.stream import encode_prompt
from playground.models.loader import LoadedModel

# Candidates kept per step: enough for a top-20 chart after any filter, small next to a vocab row.
KEEP_TOP = 64
MAX_KEEP_TOP = 256


@dataclass(frozen=True)
class Exploration:
    """One explored answer: its tokens and, per token, the step that chose it."""

    prompt_ids: tuple[int, ...]
    settings: DecodingSettings  # with the seed that was used
    ids: tuple[int, ...]
    steps: tuple[KeptStep, ...]
    text: str
    reason: str  # eos, length, stop string
    adapter: str | None = None
    # The first step where this answer differs from the one it branched from (None: not a branch).
    branched_at: int | None = None
    # The external engine whose logprobs these steps are (engine_steps.py), None: this process.
    engine: str | None = None

    @property
    def entropies(self) -> list[float]:
        return [s.entropy for s in self.steps]

    @property
    def chosen_probabilities(self) -> list[float]:
        return [math.exp(s.chosen_logprob) for s in self.steps]


def explore(
    loaded: LoadedModel,
    prompt: str,
    settings: DecodingSettings,
    *,
    keep_top: int = KEEP_TOP,
    adapter: str | None = None,
    owner: str = "",
    stop: threading.Event | None = None,
) -> Exploration:
    """Generate an answer to `prompt` keeping each step's top `keep_top` candidates."""
    settings = _explorable(loaded, settings)
    prompt_ids = tuple(encode_prompt(loaded, prompt)["input_ids"][0].tolist())
    return _continue(loaded, prompt_ids, (), (), settings, keep_top, adapter, owner, stop, None)


def branch(
    loaded: LoadedModel,
    parent: Exploration,
    step: int,
    token: int,
    *,
    owner: str = "",
    stop: threading.Event | None = None,
) -> Exploration:
    """`parent` up to `step`, then `token` (one of that step's candidates), then generated on."""
    if not 0 <= step < len(parent.steps):
        raise PlaygroundError(f"Step {step} is not in this answer (it has {len(parent.steps)} tokens).")
    if token not in parent.steps[step].ids:
        raise PlaygroundError(f"Token {token} is not one of step {step}'s candidates.")
    keep_top = len(parent.steps[step].ids)
    prefix_steps = (*parent.steps[:step], parent.steps[step].forcing(token))
    prefix = (*parent.ids[:step], int(token))
    return _continue(
        loaded,
        parent.prompt_ids,
        prefix,
        prefix_steps,
        parent.settings,
        keep_top,
        parent.adapter,
        owner,
        stop,
        step,
    )


def answer_pieces(tokenizer, exploration: Exploration) -> list[Piece]:
    """The answer merged into whole characters, each with the probability the model gave it."""
    return merge_pieces(tokenizer, exploration.ids, [s.chosen_logprob for s in exploration.steps])


def _explorable(loaded: LoadedModel, settings: DecodingSettings) -> DecodingSettings:
    settings = settings.validate()
    reason = engine_reason(loaded, settings)
    if reason is not None:
        raise PlaygroundError(f"The token explorer cannot follow this generation: {reason}.")
    if settings.seed is None:
        # A branch continues the same random stream, so the seed is fixed here and kept.
        settings = settings.with_(seed=random.randrange(2**31))
    return settings


def _continue(
    loaded: LoadedModel,
    prompt_ids: tuple[int, ...],
    prefix: tuple[int, ...],
    prefix_steps: tuple[KeptStep, ...],
    settings: DecodingSettings,
    keep_top: int,
    adapter: str | None,
    owner: str,
    stop: threading.Event | None,
    branched_at: int | None,
) -> Exploration:
    if not 1 <= keep_top <= MAX_KEEP_TOP:
        raise PlaygroundError(
            f"Candidates kept per step must be between 1 and {MAX_KEEP_TOP} (got {keep_top})."
        )
    tok = loaded.tokenizer
    remaining = settings.max_new_tokens - len(prefix)
    ended = bool(prefix) and prefix[-1] in eos_ids(loaded.model, tok)
    new_ids: list[int] = []
    new_steps: list[KeptStep] = []
    reason = "eos" if ended else "length"
    remote = remote_engine(loaded)
    if remote is not None and adapter is not None:
        raise PlaygroundError(f"Adapters are not available with the external engine at {remote.url}.")
    if remaining > 0 and not ended and remote is not None:
        new_ids, new_steps, reason = engine_continuation(
            loaded, remote, [*prompt_ids, *prefix], settings.with_(max_new_tokens=remaining), keep_top
        )
    elif remaining > 0 and not ended:
        request = Request(
            list(prompt_ids) + list(prefix),
            settings.with_(max_new_tokens=remaining),
            stop or threading.Event(),
            adapter,
            INTERACTIVE,
            owner,
            keep_top=keep_top,
            skip_draws=len(prefix),
        )
        update = engine_for(loaded).submit(request).result()
        if update.stopped:
            raise Cancelled("Stopped.")
        new_ids, new_steps, reason = list(update.ids or []), list(update.kept or []), update.reason
    ids = (*prefix, *new_ids)
    text = cut_at_stop(tok.decode(list(ids), skip_special_tokens=True).rstrip("\ufffd"), settings.stop)[0]
    steps = (*prefix_steps, *new_steps)
    engine = remote.url if remote is not None else None
    return Exploration(prompt_ids, settings, ids, steps, text, reason, adapter, branched_at, engine)
