"""What an adapter changed, per reference token: adapter NLL - base NLL, from the perplexity service.

Both NLLs come from `evaluation.perplexity.perplexity` (the same scoring as the leaderboard),
once with the adapter switched off and once on. A character split over byte tokens is one
entry: perplexity gives its text to the token that completes it (the others have none), so the
tokens up to that one are summed (the NLL of the whole character).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playground.evaluation.perplexity import ScoredExample, perplexity
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel


@dataclass(frozen=True)
class CharacterDiff:
    text: str
    base_nll: float
    adapter_nll: float

    @property
    def difference(self) -> float:
        """Negative: the adapter made this reference text more likely."""
        return self.adapter_nll - self.base_nll


def adapter_vs_base(
    loaded: LoadedModel, pairs: Sequence[tuple[str, str]], adapter: str, batch_size: int = 8
) -> list[list[CharacterDiff]]:
    """Per (prompt, reference) pair, per reference character (and eos): both NLLs."""
    runs = []
    for which in (None, adapter):
        with exclusive_model(loaded, which):
            runs.append(
                perplexity(
                    loaded.model,
                    loaded.tokenizer,
                    pairs,
                    batch_size=batch_size,
                    max_length=loaded.context_length,
                )
            )
    return [per_character(b, a) for b, a in zip(runs[0].examples, runs[1].examples, strict=True)]


def per_character(base: ScoredExample, adapted: ScoredExample) -> list[CharacterDiff]:
    out: list[CharacterDiff] = []
    base_sum = adapted_sum = 0.0
    for text, b, a in zip(base.tokens, base.nll, adapted.nll, strict=True):
        base_sum, adapted_sum = base_sum + b, adapted_sum + a
        if text:
            out.append(CharacterDiff(text, base_sum, adapted_sum))
            base_sum = adapted_sum = 0.0
    return out
