"""The evaluation recipe: data set + prompt strategy + model -> metrics -> leaderboard rows.

One run per seed (seeds only change anything for random example selection or sampling, so
other strategies run once). Each run is a leaderboard row that starts as "running" and ends
"finished" with its per-example results, or "failed" / "cancelled" with the reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from playground.data_types import Dataset, Example
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation import metrics as M
from playground.evaluation.perplexity import perplexity
from playground.generation.batch import generate_many
from playground.generation.logprobs import TokenLogprob
from playground.generation.settings import GREEDY, DecodingSettings
from playground.leaderboard import ExampleResult, Leaderboard, RunSpec
from playground.models.loader import LoadedModel
from playground.prompts.fewshot import FewShotBuilder, FewShotConfig, strategy_name
from playground.prompts.templates import PromptTemplate

METRIC_GROUPS = ("perplexity", "rouge", "bleu", "chrf", "accuracy")
GENERATION_METRICS = ("rouge", "bleu", "chrf", "accuracy")
Progress = Callable[[float, str], None]


@dataclass
class EvalConfig:
    metrics: tuple[str, ...] = ("perplexity",)
    fewshot: FewShotConfig = field(default_factory=FewShotConfig)
    seeds: tuple[int, ...] = (0,)
    limit: int | None = None
    batch_size: int = 8
    decoding: DecodingSettings = GREEDY.with_(max_new_tokens=128)
    labels: tuple[str, ...] | None = None  # accuracy: the answer words; None = taken from references
    # Per generated token: its log-probability and this many alternatives (None: not kept).
    logprobs: int | None = None

    def validate(self) -> EvalConfig:
        unknown = [m for m in self.metrics if m not in METRIC_GROUPS]
        if unknown or not self.metrics:
            raise PlaygroundError(
                f"Unknown metric {', '.join(unknown)}; choose from {', '.join(METRIC_GROUPS)}."
            )
        if self.limit is not None and self.limit < 1:
            raise PlaygroundError("The example limit must be 1 or more.")
        if self.batch_size < 1:
            raise PlaygroundError("The batch size must be 1 or more.")
        if not self.seeds:
            raise PlaygroundError("Give at least one seed.")
        if self.logprobs is not None and not self.generates:
            raise PlaygroundError(
                "Log-probabilities come with generation: add rouge, bleu, chrf or accuracy."
            )
        self.decoding.validate()
        return self

    @property
    def generates(self) -> bool:
        return any(m in GENERATION_METRICS for m in self.metrics)

    def effective_seeds(self) -> tuple[int, ...]:
        random_picks = self.fewshot.k > 0 and self.fewshot.selection == "random"
        sampling = self.generates and self.decoding.do_sample
        return tuple(dict.fromkeys(self.seeds)) if (random_picks or sampling) else self.seeds[:1]


@dataclass
class EvalOutcome:
    run_id: int | None
    seed: int
    metrics: dict[str, float]
    examples: list[ExampleResult]
    seconds: float
    # Per example, per generated token (when EvalConfig.logprobs asks); not stored on the leaderboard.
    logprobs: list[list[TokenLogprob]] | None = None


def metric_notes(loaded: LoadedModel) -> dict[str, str]:
    if loaded.is_seq2seq:
        return {"perplexity": "decoder NLL of the reference given the encoder input"}
    return {"perplexity": "mean over examples of exp(mean NLL of output tokens + eos given the prompt)"}


def evaluate(
    loaded: LoadedModel,
    dataset: Dataset,
    template: PromptTemplate,
    config: EvalConfig,
    *,
    pool: Sequence[Example] | None = None,
    leaderboard: Leaderboard | None = None,
    adapter: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[EvalOutcome]:
    """Run the configured evaluation once per effective seed; store each run when a leaderboard is given."""
    config.validate()
    examples = list(dataset.examples[: config.limit] if config.limit else dataset.examples)
    if not examples:
        raise PlaygroundError(f"{dataset.name} has no examples to evaluate.")
    if "perplexity" in config.metrics or config.generates:
        missing = [e.id for e in examples if not e.answers]
        if missing:
            raise PlaygroundError(
                f"{dataset.name}: {len(missing)} of {len(examples)} examples have no reference output "
                f"(first: id {missing[0]}); the metrics need one. Add its ground-truth file (one answer per line) or pick another data set."
            )
    pool = list(pool) if pool is not None else examples
    seeds = config.effective_seeds()
    outcomes = []
    for i, seed in enumerate(seeds):

        def seed_progress(fraction: float, desc: str, i: int = i, seed: int = seed) -> None:
            if progress:
                progress((i + fraction) / len(seeds), f"seed {seed} ({i + 1}/{len(seeds)}): {desc}")

        outcomes.append(
            _run_one(
                loaded,
                dataset,
                examples,
                template,
                config,
                pool,
                seed,
                leaderboard,
                adapter,
                seed_progress,
                should_stop,
            )
        )
    return outcomes


def _run_one(
    loaded: LoadedModel,
    dataset: Dataset,
    examples: list[Example],
    template: PromptTemplate,
    config: EvalConfig,
    pool: list[Example],
    seed: int,
    leaderboard: Leaderboard | None,
    adapter: str | None,
    progress: Progress,
    should_stop: Callable[[], bool] | None,
) -> EvalOutcome:
    fewshot = replace(config.fewshot, seed=seed)
    builder = FewShotBuilder(template, fewshot, pool)
    spec = RunSpec(
        model=loaded.name,
        adapter=adapter,
        task="+".join(config.metrics),
        strategy=strategy_name(fewshot),
        shots=fewshot.k,
        selection=fewshot.selection if fewshot.k > 0 else None,
        seed=seed,
        template_sha=template.sha,
        template_text=template.text if template.text is not None else "<chat template>",
        decoding=config.decoding.to_dict() if config.generates else {},
        dataset_name=dataset.name,
        dataset_sha=dataset.sha256,
        n_examples=len(examples),
        notes={"metrics": metric_notes(loaded), "fewshot": fewshot.to_dict(), "system": template.system},
    )
    run_id = leaderboard.start_run(spec) if leaderboard else None
    start = time.perf_counter()
    try:
        result = _score(loaded, builder, examples, config, adapter, progress, should_stop)
    except Cancelled:
        if leaderboard and run_id is not None:
            leaderboard.fail_run(run_id, "Cancelled by the user.", status="cancelled")
        raise
    except BaseException as exc:
        if leaderboard and run_id is not None:
            leaderboard.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    metrics_, rows, logprobs = result
    if leaderboard and run_id is not None:
        leaderboard.finish_run(run_id, metrics_, rows)
    return EvalOutcome(run_id, seed, metrics_, rows, time.perf_counter() - start, logprobs)


def _score(
    loaded: LoadedModel,
    builder: FewShotBuilder,
    examples: list[Example],
    config: EvalConfig,
    adapter: str | None,
    progress: Progress,
    should_stop: Callable[[], bool] | None,
) -> tuple[dict[str, float], list[ExampleResult], list[list[TokenLogprob]] | None]:
    from playground.models.access import exclusive_model

    tok = loaded.tokenizer
    prompts = [builder.build(e, tok) for e in examples]
    references = [e.answers for e in examples]
    rows = [
        ExampleResult(idx=i, prompt=p, reference=(e.answers[0] if e.answers else None))
        for i, (p, e) in enumerate(zip(prompts, examples, strict=True))
    ]
    out: dict[str, float] = {}
    logprobs = None
    phases = int("perplexity" in config.metrics) + int(config.generates)
    phase = 0
    if "perplexity" in config.metrics:
        # exclusive_model(None) runs the base model even if an adapter is switched on (for chat, say).
        with exclusive_model(loaded, adapter):
            result = perplexity(
                loaded.model,
                tok,
                [(p, e.answers[0]) for p, e in zip(prompts, examples, strict=True)],
                batch_size=config.batch_size,
                max_length=loaded.context_length,
                progress=lambda d, n: progress((phase + d / n) / phases, f"perplexity {d}/{n}"),
                should_stop=should_stop,
            )
        out["mean_perplexity"] = result.mean_perplexity
        out["corpus_perplexity"] = result.corpus_perplexity
        for row, scored in zip(rows, result.examples, strict=True):
            row.metrics["perplexity"] = scored.perplexity
            row.nll = scored.nll
            row.tokens = scored.tokens
        phase += 1
    if config.generates:
        # Generation joins the engine's batch as background rows, each naming the adapter.
        outputs = generate_many(
            loaded,
            prompts,
            config.decoding,
            batch_size=config.batch_size,
            progress=lambda d, n: progress((phase + d / n) / phases, f"generating {d}/{n}"),
            should_stop=should_stop,
            adapter=adapter,
            logprobs=config.logprobs,
        )
        predictions = [o.text for o in outputs]
        if config.logprobs is not None:
            logprobs = [o.logprobs or [] for o in outputs]
        for row, pred in zip(rows, predictions, strict=True):
            row.prediction = pred
        out.update(_generation_metrics(predictions, references, config, rows))
    return {k: v for k, v in out.items() if v is not None and not math.isnan(v)}, rows, logprobs


def _generation_metrics(
    predictions: list[str], references: list[tuple[str, ...]], config: EvalConfig, rows: list[ExampleResult]
) -> dict[str, float]:
    out: dict[str, float] = {}
    if "rouge" in config.metrics:
        out.update(M.rouge(predictions, references))
        for row, scores in zip(rows, M.rouge_per_example(predictions, references), strict=True):
            row.metrics.update(scores)
    if "bleu" in config.metrics:
        out["bleu"] = M.bleu(predictions, references)
    if "chrf" in config.metrics:
        out["chrf"] = M.chrf(predictions, references)
    if "accuracy" in config.metrics:
        # Without explicit labels the metric takes the distinct reference answers as labels.
        out["accuracy"] = M.accuracy(predictions, references, config.labels)
        per = M.accuracy_per_example(predictions, references, config.labels)
        for row, ok in zip(rows, per, strict=True):
            row.metrics["correct"] = float(ok)
    return out


def summarize(outcomes: Sequence[EvalOutcome]) -> dict[str, Any]:
    """Metric means and sample std over seeds, plus each seed's numbers (what the CLI prints)."""
    import statistics

    names = sorted({k for o in outcomes for k in o.metrics})
    summary: dict[str, Any] = {}
    std: dict[str, float] = {}
    for name in names:
        values = [o.metrics[name] for o in outcomes if name in o.metrics]
        summary[name] = statistics.fmean(values)
        std[name] = statistics.stdev(values) if len(values) > 1 else 0.0
    summary["std"] = std
    summary["per_seed"] = [{"seed": o.seed, "run_id": o.run_id, **o.metrics} for o in outcomes]
    summary["n_examples"] = len(outcomes[0].examples) if outcomes else 0
    return summary
