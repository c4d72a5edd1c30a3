"""An adapter against the model it was trained on: the same data, template and settings for both.

Both runs use the template the adapter was trained with, so the two numbers measure the same
thing, and each is stored on the leaderboard like any other run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playground.data_types import Dataset
from playground.evaluation.runner import EvalConfig, EvalOutcome, Progress, evaluate
from playground.leaderboard import Leaderboard
from playground.models.adapters import AdapterInfo, attach_adapter
from playground.models.loader import LoadedModel
from playground.prompts.templates import PromptTemplate, adapter_template


@dataclass(frozen=True)
class BaseVsAdapter:
    """One run of the base model and one of the adapter (the first seed's, when several)."""

    adapter_name: str
    dataset_name: str
    n_examples: int
    template: PromptTemplate
    base: EvalOutcome
    adapted: EvalOutcome


def compare_with_base(
    loaded: LoadedModel,
    dataset: Dataset,
    adapter: AdapterInfo,
    config: EvalConfig,
    *,
    leaderboard: Leaderboard | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    labels: tuple[str, str] | None = None,
) -> BaseVsAdapter:
    """Score `loaded` without and with `adapter` (attached here if it is not yet).

    `labels` name the two runs in progress messages (the caller's language).
    """
    attached = attach_adapter(loaded, adapter.path)
    template = adapter_template(adapter.settings, loaded.default_template)

    def run(which: str | None, label: str) -> EvalOutcome:
        step = None if progress is None else (lambda f, d: progress(f, f"{label}: {d}"))
        outcomes = evaluate(
            loaded,
            dataset,
            template,
            config,
            leaderboard=leaderboard,
            adapter=which,
            progress=step,
            should_stop=should_stop,
        )
        return outcomes[0]

    base_label, adapter_label = labels or ("base model", f"adapter {adapter.name}")
    base = run(None, base_label)
    adapted = run(attached, adapter_label)
    n_examples = len(dataset.examples[: config.limit] if config.limit else dataset.examples)
    return BaseVsAdapter(adapter.name, dataset.name, n_examples, template, base, adapted)
