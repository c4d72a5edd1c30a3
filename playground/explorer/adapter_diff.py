"""What an adapter changed, per reference token: adapter NLL - base NLL, from the perplexity service.

Both NLLs come from `evaluation.perplexity.perplexity` (the same scoring as the leaderboard),
once with the adapter switched off and once on. A character split over byte tokens is one
entry: perplexity gives its text to the token that completes it (the others have none), so the
tokens up to that one are summed (the NLL of the whole character).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playground.errors import PlaygroundError
from playground.evaluation.perplexity import ScoredExample, perplexity
from playground.models.access import exclusive_model
from playground.models.loader import LoadedModel

# Rows of (prompt, reference) x adapter scored for one comparison's chart: each is a row of cells,
# and past a couple of dozen the chart is no longer readable (nor worth two more scoring passes).
MAX_DIFF_ROWS = 24


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


@dataclass(frozen=True)
class AdapterDiffRow:
    """One reference scored by the base model and by one adapter, on that adapter's own prompt."""

    row: int  # index of the prompt among those compared
    adapter: str
    characters: list[CharacterDiff]


def adapter_diff_rows(
    loaded: LoadedModel,
    prompts_by_adapter: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[str | None],
    most: int = MAX_DIFF_ROWS,
) -> list[AdapterDiffRow]:
    """Per adapter (with its prompts, one per row), per row that has a reference: the diff.

    Base and adapter score the same text (the adapter's prompt, e.g. in its training template), so
    a difference is the adapter's weights alone. At most `most` rows, adapters in the given order."""
    out: list[AdapterDiffRow] = []
    for adapter, prompts in prompts_by_adapter:
        if len(prompts) != len(references):
            raise PlaygroundError(f"There are {len(references)} references but {len(prompts)} prompts.")
        rows = [i for i, ref in enumerate(references) if ref][: most - len(out)]
        if not rows:
            break
        pairs = [(prompts[i], str(references[i])) for i in rows]
        diffs = adapter_vs_base(loaded, pairs, adapter)
        out += [AdapterDiffRow(i, adapter, d) for i, d in zip(rows, diffs, strict=True)]
    return out


def per_character(base: ScoredExample, adapted: ScoredExample) -> list[CharacterDiff]:
    out: list[CharacterDiff] = []
    base_sum = adapted_sum = 0.0
    for text, b, a in zip(base.tokens, base.nll, adapted.nll, strict=True):
        base_sum, adapted_sum = base_sum + b, adapted_sum + a
        if text:
            out.append(CharacterDiff(text, base_sum, adapted_sum))
            base_sum = adapted_sum = 0.0
    return out
