"""A k sweep: zero-shot, then each chosen k (x seeds where seeds matter), one leaderboard run each.

The prompt lab's "evaluate" button. Runs go one seed at a time through `evaluate`, so a
cancel keeps every finished run and the summary can still show them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from playground.data_types import Dataset, Example
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.runner import EvalConfig, EvalOutcome, Progress, evaluate
from playground.leaderboard import Leaderboard
from playground.models.loader import LoadedModel
from playground.prompts.fewshot import FewShotConfig, strategy_name
from playground.prompts.templates import PromptTemplate

# The metric a chart shows first, when the runs measured it.
PRIMARY_METRICS = ("mean_perplexity", "accuracy", "rougeL", "rouge1", "bleu", "chrf", "corpus_perplexity")


@dataclass
class SweepPoint:
    """All runs of one k: mean and sample std over seeds, computed like the leaderboard's groups."""

    k: int
    strategy: str
    selection: str | None
    seeds: list[int] = field(default_factory=list)
    run_ids: list[int | None] = field(default_factory=list)
    runs: list[dict[str, float]] = field(default_factory=list)  # each run's metrics

    @property
    def mean(self) -> dict[str, float]:
        return {name: statistics.fmean(v) for name, v in self._values().items()}

    @property
    def std(self) -> dict[str, float]:
        return {name: statistics.stdev(v) if len(v) > 1 else 0.0 for name, v in self._values().items()}

    def _values(self) -> dict[str, list[float]]:
        # The leaderboard stores a non-finite number (an infinite perplexity) as null and skips it.
        out: dict[str, list[float]] = {}
        for metrics in self.runs:
            for name, value in metrics.items():
                if value is not None and math.isfinite(value):
                    out.setdefault(name, []).append(value)
        return out


@dataclass
class SweepResult:
    points: list[SweepPoint]
    dataset_name: str
    n_examples: int
    cancelled: bool = False

    @property
    def metrics(self) -> list[str]:
        names = {name for p in self.points for name in p.mean}
        return [m for m in PRIMARY_METRICS if m in names] + sorted(names - set(PRIMARY_METRICS))

    @property
    def primary_metric(self) -> str | None:
        return self.metrics[0] if self.metrics else None

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per k: settings, then mean and std of every metric, then run ids."""
        rows = []
        for p in self.points:
            row: dict[str, Any] = {
                "k": p.k,
                "strategy": p.strategy,
                "selection": p.selection or "",
                "runs": len(p.runs),
                "seeds": ", ".join(str(s) for s in p.seeds),
            }
            mean, std = p.mean, p.std
            for name in self.metrics:
                row[name] = mean.get(name)
                row[f"{name} std"] = std.get(name)
            row["run ids"] = ", ".join(str(i) for i in p.run_ids if i is not None)
            rows.append(row)
        return rows

    def series(self, metric: str) -> tuple[list[int], list[float], list[float]]:
        """(k values, means, stds) for a line chart of `metric` against k; ks without it are left out."""
        points = [p for p in self.points if metric in p.mean]
        return [p.k for p in points], [p.mean[metric] for p in points], [p.std[metric] for p in points]


def sweep_ks(fewshot: FewShotConfig, ks: Sequence[int]) -> list[int]:
    """0 first, then the chosen k values once each, ascending; hand-picked examples give one k."""
    if fewshot.selection == "manual":
        chosen = [len(fewshot.manual_ids)]
    else:
        chosen = list(ks)
    bad = [k for k in chosen if isinstance(k, bool) or not isinstance(k, int) or k < 0]
    if bad:
        raise PlaygroundError(f"k values must be whole numbers ≥ 0, not {', '.join(map(repr, bad))}.")
    return sorted({0, *chosen})


def _config_for(base: EvalConfig, k: int) -> EvalConfig:
    if k == 0:
        # A manual config would put k back to len(manual_ids); zero-shot has no examples at all.
        fewshot = replace(base.fewshot, k=0, selection="first", manual_ids=())
    else:
        fewshot = replace(base.fewshot, k=k)
    return replace(base, fewshot=fewshot)


def _check_pool(ks: list[int], pool: Sequence[Example] | None, dataset: Dataset, limit: int | None) -> None:
    rows = list(pool) if pool is not None else list(dataset.examples[:limit] if limit else dataset.examples)
    usable = sum(e.output is not None for e in rows)
    # The query is never its own example, so a pool drawn from the test set loses one row per query.
    usable -= 1 if pool is None else 0
    top = max(ks)
    if top > usable:
        where = "the training set" if pool is not None else "the test set (no training set picked)"
        raise PlaygroundError(
            f"k={top} needs {top} examples with an output, but {where} has only {max(usable, 0)}. "
            "Lower k or pick a larger training set."
        )


def run_sweep(
    loaded: LoadedModel,
    dataset: Dataset,
    template: PromptTemplate,
    base: EvalConfig,
    ks: Sequence[int],
    *,
    pool: Sequence[Example] | None = None,
    leaderboard: Leaderboard | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepResult:
    """Evaluate k=0 then each k in `ks` with `base`'s metrics, selection and seeds.

    A cancel ends the sweep: the interrupted run is marked cancelled on the leaderboard and the
    result (with `cancelled=True`) holds the runs that finished.
    """
    base.validate()
    order = sweep_ks(base.fewshot, ks)
    if order[-1] > 0 and base.fewshot.selection != "manual":
        _check_pool(order, pool, dataset, base.limit)
    plan = [(k, seed) for k in order for seed in _config_for(base, k).effective_seeds()]
    points: dict[int, SweepPoint] = {}
    result = SweepResult([], dataset.name, 0)
    for done, (k, seed) in enumerate(plan):
        if should_stop and should_stop():
            result.cancelled = True
            break
        config = replace(_config_for(base, k), seeds=(seed,))

        def run_progress(fraction: float, desc: str, done: int = done, k: int = k) -> None:
            if progress:
                progress((done + fraction) / len(plan), f"run {done + 1}/{len(plan)}, k={k}: {desc}")

        try:
            [outcome] = evaluate(
                loaded,
                dataset,
                template,
                config,
                pool=pool,
                leaderboard=leaderboard,
                progress=run_progress,
                should_stop=should_stop,
            )
        except Cancelled:
            result.cancelled = True
            break
        _add(points, k, config.fewshot, outcome)
        result.n_examples = len(outcome.examples)
    result.points = [points[k] for k in order if k in points]
    if progress and not result.cancelled:
        progress(1.0, "done")
    return result


def _add(points: dict[int, SweepPoint], k: int, fewshot: FewShotConfig, outcome: EvalOutcome) -> None:
    point = points.setdefault(
        k, SweepPoint(k, strategy_name(fewshot), fewshot.selection if fewshot.k > 0 else None)
    )
    point.seeds.append(outcome.seed)
    point.run_ids.append(outcome.run_id)
    point.runs.append(dict(outcome.metrics))
