"""One step's candidates: the model's raw probability and the probability after the processors.

The "after" numbers for the settings the answer was generated with are the ones the engine
recorded over the whole vocabulary. For other settings (a slider moved) they are recomputed
from the kept logits by the one sampler (`sampler.process_logits`), without running the model:
the tokens outside the kept top K count as removed, so those numbers are renormalised over the
kept candidates (they differ from a full-vocabulary run only by the tail's mass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from playground.errors import PlaygroundError
from playground.explorer.explore import Exploration
from playground.generation.kept import KeptStep
from playground.generation.sampler import RowSampling, process_logits
from playground.generation.settings import DecodingSettings

# The settings that change a step's distribution (the rest: length, seed, stops, beams).
PROCESSOR_FIELDS = (
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
)
DEFAULT_SHOWN = 20


@dataclass(frozen=True)
class Candidate:
    token_id: int
    token: str  # as the tokenizer spells it
    text: str  # what it decodes to alone
    raw: float  # the model's probability
    after: float  # after the processors; 0 when removed
    removed: bool  # a filter (top-k, top-p, min-p, ...) took it out
    chosen: bool


def same_processors(a: DecodingSettings, b: DecodingSettings) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in PROCESSOR_FIELDS)


def after_logprobs(exploration: Exploration, step: int, settings: DecodingSettings) -> list[float]:
    """Log-probabilities after `settings`' processors at the step's kept ids (-inf: removed)."""
    kept = _step(exploration, step)
    if same_processors(settings, exploration.settings):
        return list(kept.after)
    settings = settings.validate()
    history = [*exploration.prompt_ids, *exploration.ids[:step]]
    size = max([*kept.ids, *history]) + 1
    # The kept logits in their vocabulary places; everything else is -inf (never a candidate).
    logits = torch.full((1, size), -math.inf)
    logits[0, list(kept.ids)] = torch.tensor(kept.logits)
    row = RowSampling.start(settings, history)
    scores = process_logits(logits, [row])
    return scores.log_softmax(dim=-1)[0, list(kept.ids)].tolist()


def step_candidates(
    tokenizer: Any,
    exploration: Exploration,
    step: int,
    settings: DecodingSettings | None = None,
    shown: int = DEFAULT_SHOWN,
) -> list[Candidate]:
    """The step's `shown` most likely candidates (raw), with their after-processor probabilities."""
    kept = _step(exploration, step)
    after = after_logprobs(exploration, step, settings or exploration.settings)
    n = max(1, min(int(shown), len(kept.ids)))
    ids = list(kept.ids[:n])
    names = tokenizer.convert_ids_to_tokens(ids)
    return [
        Candidate(
            token_id=t,
            token=str(name),
            text=tokenizer.decode([t], skip_special_tokens=False),
            raw=math.exp(logprob),
            after=math.exp(a) if a > -math.inf else 0.0,
            removed=a == -math.inf,
            chosen=t == kept.chosen,
        )
        for t, name, logprob, a in zip(ids, names, kept.raw_logprobs[:n], after[:n], strict=True)
    ]


def _step(exploration: Exploration, step: int) -> KeptStep:
    if not 0 <= step < len(exploration.steps):
        raise PlaygroundError(f"Step {step} is not in this answer (it has {len(exploration.steps)} tokens).")
    return exploration.steps[step]
