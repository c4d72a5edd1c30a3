"""Automatic pairwise: the ticked contestants answer every example of a test set with references,
and a metric, not a person, votes on each pair.

Every contestant answers each example once (the rows of one model decode together in its engine,
on one fixed seed, so a re-run gives the same answers); each pair of contestants then gets one
vote per example: the higher ROUGE-L F1, the correct answer (accuracy), or the lower perplexity
of the reference under the contestant's model and adapter (perplexity needs no answers, so none
are generated). Equal scores are a tie, both at zero (no overlap, both wrong) "both bad".

The votes go into the votes table as kind "metric", all of a run in one transaction (a cancelled
or failed run stores none). A vote's battle id is a hash of (owner, pairing, test set content,
example, metric), so running the same pairing on the same test set again stores nothing twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from playground.arena.battles import Prepared, in_template, prepare_contestant
from playground.arena.contestants import Contestant
from playground.arena.test_sets import example_prompt
from playground.arena.votes import VoteStore
from playground.data_types import Dataset, Example
from playground.errors import PlaygroundError
from playground.evaluation import metrics as M
from playground.evaluation.perplexity import perplexity
from playground.generation.batch import generate_many
from playground.generation.engine import BACKGROUND, Request, engine_reason, run_all
from playground.generation.stream import encode_prompt
from playground.models import LoadedModel, ModelManager
from playground.models.access import exclusive_model

# metric -> whether it judges generated answers (perplexity scores the reference instead)
PAIRWISE_METRICS: dict[str, bool] = {"rougeL": True, "accuracy": True, "perplexity": False}
# One seed for every answer: sampling presets give the same answers when a run is repeated.
PAIRWISE_SEED = 0
MAX_EXAMPLES = 500
MAX_NEW_TOKENS = 512
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class PairwiseConfig:
    """metric: how a pair is judged (PAIRWISE_METRICS); limit: only the first `limit` examples
    (None: all, up to MAX_EXAMPLES); max_new_tokens: each answer's length limit."""

    metric: str = "rougeL"
    limit: int | None = None
    max_new_tokens: int = 64

    def validate(self) -> PairwiseConfig:
        if self.metric not in PAIRWISE_METRICS:
            raise PlaygroundError(
                f"Score pairs by {', '.join(PAIRWISE_METRICS)}, not {str(self.metric)[:40]!r}."
            )
        if self.limit is not None and not 1 <= self.limit <= MAX_EXAMPLES:
            raise PlaygroundError(f"The example limit must be between 1 and {MAX_EXAMPLES}.")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise PlaygroundError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS}.")
        return self


@dataclass(frozen=True)
class PairwiseResult:
    """stored: new votes; skipped: votes an earlier run of the same pairing stored already;
    scores: each contestant's mean score (ROUGE-L F1, share correct, or mean perplexity)."""

    test_set: str
    metric: str
    examples: int
    pairs: int
    stored: int
    skipped: int
    scores: dict[str, float]


def run_pairwise(
    manager: ModelManager,
    picked: Sequence[Contestant],
    dataset: Dataset,
    owner: str,
    config: PairwiseConfig,
    store: VoteStore,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PairwiseResult:
    """Score every pair of `picked` on `dataset` and store the votes (raises Cancelled when stopped)."""
    config.validate()
    contestants = list(dict.fromkeys(picked))
    if len(contestants) < 2:
        raise PlaygroundError("Tick at least two contestants: a pairing needs two.")
    examples = _scorable(dataset, config)
    report = progress or (lambda fraction, desc: None)
    with ExitStack() as stack:
        models = {
            key: stack.enter_context(manager.use_model(key, may_load=False))
            for key in dict.fromkeys(c.model for c in contestants)
        }
        prepared = {
            c: prepare_contestant(models[c.model], c, PAIRWISE_SEED, config.max_new_tokens)
            for c in contestants
        }
        prompts = [example_prompt(e) for e in examples]
        if PAIRWISE_METRICS[config.metric]:
            answers = _all_answers(models, prepared, prompts, owner, report, should_stop)
            scores = {c: _answer_scores(config.metric, answers[c], examples) for c in contestants}
        else:
            answers = {c: [""] * len(examples) for c in contestants}
            scores = _perplexities(models, prepared, prompts, examples, report, should_stop)
    rows = []
    for a, b in combinations(sorted(contestants, key=lambda c: c.label), 2):
        for i, example in enumerate(examples):
            outcome = _outcome(config.metric, scores[a][i], scores[b][i])
            if outcome is None:
                continue
            sides = (
                (a, answers[a][i], prepared[a], scores[a][i]),
                (b, answers[b][i], prepared[b], scores[b][i]),
            )
            rows.append(_vote_row(owner, dataset, i, example, config.metric, prompts[i], outcome, *sides))
    report(1.0, "storing votes")
    stored = store.record_metric_votes(rows)
    n_pairs = len(contestants) * (len(contestants) - 1) // 2
    return PairwiseResult(
        test_set=dataset.name,
        metric=config.metric,
        examples=len(examples),
        pairs=n_pairs,
        stored=stored,
        skipped=len(rows) - stored,
        scores={c.label: _mean(scores[c]) for c in contestants},
    )


def battle_id(owner: str, a: str, b: str, dataset_sha: str, index: int, example_id: str, metric: str) -> str:
    """The same pairing (in either order) on the same example and metric, by the same owner:
    the same id, which the votes table takes once."""
    first, second = sorted((a, b))
    key = "\x1f".join((owner, first, second, dataset_sha, str(index), example_id, metric))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _scorable(dataset: Dataset, config: PairwiseConfig) -> list[Example]:
    examples = dataset.examples[: config.limit or MAX_EXAMPLES]
    if not examples:
        raise PlaygroundError(f"{dataset.name} has no examples.")
    missing = [e.id for e in examples if not e.answers]
    if missing:
        raise PlaygroundError(
            f"{dataset.name}: {len(missing)} of {len(examples)} examples have no reference answer "
            f"(first: id {missing[0]}); a metric needs one to judge. Pick a test set with answers."
        )
    return examples


def _all_answers(
    models: dict[str, LoadedModel],
    prepared: dict[Contestant, Prepared],
    prompts: list[str],
    owner: str,
    report: Progress,
    should_stop: Callable[[], bool] | None,
) -> dict[Contestant, list[str]]:
    """Every contestant's answer to every prompt; one model's rows decode together."""
    out: dict[Contestant, list[str]] = {}
    total = len(prepared) * len(prompts)
    for key, loaded in models.items():
        group = [c for c in prepared if c.model == key]
        texts = [in_template(loaded, p) for p in prompts]
        done = len(out) * len(prompts)

        def step(d: int, n: int, done: int = done) -> None:
            report((done + d) / total, f"answering {done + d}/{total}")

        if all(engine_reason(loaded, prepared[c].settings) is None for c in group):
            out.update(_engine_answers(loaded, group, prepared, texts, owner, step, should_stop))
        else:  # encoder-decoder models run generate() calls, one contestant at a time
            for c in group:
                outputs = generate_many(
                    loaded, texts, prepared[c].settings, should_stop=should_stop, adapter=prepared[c].adapter
                )
                out[c] = [o.text for o in outputs]
    return out


def _engine_answers(
    loaded: LoadedModel,
    group: list[Contestant],
    prepared: dict[Contestant, Prepared],
    texts: list[str],
    owner: str,
    progress: Callable[[int, int], None],
    should_stop: Callable[[], bool] | None,
) -> dict[Contestant, list[str]]:
    ids = [encode_prompt(loaded, text)["input_ids"][0].tolist() for text in texts]
    longest = max(len(i) for i in ids)
    limit = max(prepared[c].settings.max_new_tokens for c in group)
    if longest + limit > loaded.context_length:
        raise PlaygroundError(
            f"The longest prompt has {longest} tokens; with {limit} new tokens it exceeds "
            f"{loaded.name}'s context of {loaded.context_length}. Lower max new tokens or the limit."
        )
    requests = [
        Request(row, prepared[c].settings, adapter=prepared[c].adapter, kind=BACKGROUND, owner=owner)
        for c in group
        for row in ids
    ]
    updates = run_all(loaded, requests, should_stop, progress)
    n = len(texts)
    return {c: [u.text for u in updates[k * n : (k + 1) * n]] for k, c in enumerate(group)}


def _answer_scores(metric: str, answers: list[str], examples: list[Example]) -> list[float]:
    references = [e.answers for e in examples]
    if metric == "rougeL":
        return [s["rougeL"] for s in M.rouge_per_example(answers, references)]
    return [float(ok) for ok in M.accuracy_per_example(answers, references)]


def _perplexities(
    models: dict[str, LoadedModel],
    prepared: dict[Contestant, Prepared],
    prompts: list[str],
    examples: list[Example],
    report: Progress,
    should_stop: Callable[[], bool] | None,
) -> dict[Contestant, list[float]]:
    """Each contestant's perplexity of every reference; the decoding preset plays no part, so
    contestants on the same model and adapter share one computation."""
    computed: dict[tuple[str, str | None], list[float]] = {}
    wanted = list(dict.fromkeys((c.model, prepared[c].adapter) for c in prepared))
    for k, (key, adapter) in enumerate(wanted):
        loaded = models[key]
        pairs = [(in_template(loaded, p), e.answers[0]) for p, e in zip(prompts, examples, strict=True)]

        def step(d: int, n: int, k: int = k) -> None:
            report((k + d / n) / len(wanted), f"perplexity {k + 1}/{len(wanted)}: {d}/{n}")

        with exclusive_model(loaded, adapter):
            result = perplexity(
                loaded.model,
                loaded.tokenizer,
                pairs,
                max_length=loaded.context_length,
                progress=step,
                should_stop=should_stop,
            )
        computed[(key, adapter)] = [s.perplexity for s in result.examples]
    return {c: computed[(c.model, prepared[c].adapter)] for c in prepared}


def _outcome(metric: str, a: float, b: float) -> str | None:
    """Who a metric says answered better; None where a score is missing (a reference cut away)."""
    if math.isnan(a) or math.isnan(b):
        return None
    if metric == "perplexity":
        if math.isclose(a, b, rel_tol=1e-9):
            return "tie"
        return "a" if a < b else "b"
    if a == b:
        return "both_bad" if a == 0 else "tie"
    return "a" if a > b else "b"


def _vote_row(
    owner: str,
    dataset: Dataset,
    index: int,
    example: Example,
    metric: str,
    prompt: str,
    outcome: str,
    a: tuple[Contestant, str, Prepared, float],
    b: tuple[Contestant, str, Prepared, float],
) -> dict[str, Any]:
    (ca, answer_a, pa, score_a), (cb, answer_b, pb, score_b) = a, b
    return {
        "battle_id": battle_id(
            owner, ca.label, cb.label, dataset.sha256 or dataset.name, index, example.id, metric
        ),
        "kind": "metric",
        "owner": owner,
        "created_at": datetime.now(UTC),
        "test_set": dataset.name,
        "prompt": prompt,
        "answer_a": answer_a,
        "answer_b": answer_b,
        "contestant_a": ca.label,
        "contestant_b": cb.label,
        "settings_a": {**pa.hidden, "metric": metric, "score": score_a},
        "settings_b": {**pb.hidden, "metric": metric, "score": score_b},
        "outcome": outcome,
    }


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan
