"""Automatic pairwise on resident tiny models: metric votes, stored once, and their refusals."""

from __future__ import annotations

import json
import math

import pytest

from playground.arena.battles import in_template
from playground.arena.contestants import Contestant
from playground.arena.pairwise import PairwiseConfig, run_pairwise
from playground.arena.ratings import ratings
from playground.arena.test_sets import example_prompt
from playground.arena.votes import VoteFilter, VoteStore
from playground.data import load_dataset
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.perplexity import perplexity
from playground.generation.batch import generate_many
from playground.generation.settings import PRESETS
from playground.identity import Owner
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions
from tests.test_arena import resident_pair
from tests.tiny_models import build_causal_lm

ALICE, BOB = Owner("user:alice"), Owner("user:bob")
FP32 = LoadOptions(precision="fp32")
METRIC = VoteFilter(kind="metric")
QUESTIONS = ["Say hello.", "Name a colour.", "Count to three.", "What is tea?"]


@pytest.fixture(scope="module")
def other_llama(tmp_path_factory):
    # Another seed, not tiny_mistral: built with the same seed and shapes as tiny_llama, the tiny
    # mistral gives the same answers, and the metric votes must tell the two contestants apart.
    return build_causal_lm(tmp_path_factory.mktemp("pairwise-other"), "llama", seed=5)


@pytest.fixture
def manager(tiny_llama, other_llama):
    return resident_pair(tiny_llama, other_llama)


@pytest.fixture
def store(tmp_path):
    return VoteStore(Leaderboard(f"sqlite:///{tmp_path / 'board.sqlite3'}"))


def _pair(manager) -> tuple[Contestant, Contestant]:
    keys = [i.key for i in manager.resident()]
    return Contestant(keys[0], None, "greedy"), Contestant(keys[1], None, "greedy")


def _test_set(tmp_path, manager, contestant: Contestant, name="qa.json"):
    """A test set whose references are `contestant`'s own greedy answers (made another way than
    the pairwise run makes them), so that it must win every vote on ROUGE-L and accuracy."""
    with manager.use_model(contestant.model, may_load=False) as loaded:
        prompts = [in_template(loaded, q) for q in QUESTIONS]
        outputs = generate_many(loaded, prompts, PRESETS["greedy"].with_(max_new_tokens=8, seed=0))
    rows = [
        {"id": str(i), "instruction": q, "output": o.text} for i, (q, o) in enumerate(zip(QUESTIONS, outputs))
    ]
    assert all(r["output"].strip() for r in rows)
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return load_dataset(path)


@pytest.mark.parametrize("metric", ["rougeL", "accuracy"])
def test_metric_votes_favour_the_contestant_that_matches_the_references(manager, store, tmp_path, metric):
    first, second = _pair(manager)
    dataset = _test_set(tmp_path, manager, first)
    config = PairwiseConfig(metric=metric, max_new_tokens=8)
    seen = []
    result = run_pairwise(
        manager, [second, first], dataset, ALICE.id, config, store, lambda f, d: seen.append(f)
    )
    assert (result.examples, result.pairs, result.stored, result.skipped) == (4, 1, 4, 0)
    assert result.scores[first.label] == 1.0 > result.scores[second.label]
    assert seen and seen[-1] == 1.0
    votes = store.votes(ALICE, METRIC)
    assert [v.prompt for v in votes] == QUESTIONS and {v.test_set for v in votes} == {"qa.json"}
    assert store.votes(ALICE) == [], "metric votes stay out of the human ranking"
    for vote, row in zip(votes, json.loads((tmp_path / "qa.json").read_text())):
        first_side = "a" if vote.contestant_a == first.label else "b"
        assert getattr(vote, f"answer_{first_side}") == row["output"], "the same answer as generated alone"
        assert vote.outcome in (first_side, "tie"), "a tie only where the other said the same"
        assert vote.settings_a["metric"] == metric and vote.settings_a["decoding"]["seed"] == 0
    table = ratings([v.as_vote() for v in votes], bootstrap=0)
    assert table[0].contestant == first.label
    assert all(i.users == 0 for i in manager.resident()), "both models were let go"


def test_running_the_same_pairing_again_stores_nothing_twice(manager, store, tmp_path):
    first, second = _pair(manager)
    dataset = _test_set(tmp_path, manager, first)
    config = PairwiseConfig(metric="rougeL", max_new_tokens=8, limit=3)
    run_pairwise(manager, [first, second], dataset, ALICE.id, config, store)
    again = run_pairwise(manager, [second, first], dataset, ALICE.id, config, store)
    assert (again.stored, again.skipped) == (0, 3)
    more = run_pairwise(manager, [first, second], dataset, ALICE.id, PairwiseConfig("rougeL", None, 8), store)
    assert (more.stored, more.skipped) == (1, 3), "only the fourth example is new"
    other_metric = run_pairwise(
        manager, [first, second], dataset, ALICE.id, PairwiseConfig("accuracy"), store
    )
    assert other_metric.stored == 4
    assert len(store.votes(ALICE, METRIC)) == 8
    # Bob's run is his own: his votes are stored beside Alice's, and neither sees the other's.
    assert run_pairwise(manager, [first, second], dataset, BOB.id, config, store).stored == 3
    assert len(store.votes(BOB, METRIC)) == 3 and len(store.votes(ALICE, METRIC)) == 8


def test_perplexity_votes_go_to_the_lower_perplexity_of_the_reference(manager, store, tmp_path):
    first, second = _pair(manager)
    same_model = Contestant(first.model, None, "focused (T 0.1, top-p 0.3, no-repeat 3)")
    dataset = _test_set(tmp_path, manager, first)
    config = PairwiseConfig(metric="perplexity", limit=2)
    result = run_pairwise(manager, [first, second, same_model], dataset, ALICE.id, config, store)
    assert (result.pairs, result.stored) == (3, 6)
    with manager.use_model(second.model, may_load=False) as loaded:
        pairs = [(in_template(loaded, example_prompt(e)), e.output) for e in dataset.examples[:2]]
        expected = [s.perplexity for s in perplexity(loaded.model, loaded.tokenizer, pairs).examples]
    assert result.scores[second.label] == pytest.approx(sum(expected) / 2)
    for vote in store.votes(ALICE, METRIC):
        a, b = vote.settings_a["score"], vote.settings_b["score"]
        assert vote.answer_a == vote.answer_b == "", "perplexity scores the reference, no answers"
        if {vote.contestant_a, vote.contestant_b} == {first.label, same_model.label}:
            assert vote.outcome == "tie" and math.isclose(a, b)
        else:
            assert vote.outcome == ("a" if a < b else "b")


def test_cancel_and_bad_input_store_nothing(manager, store, tmp_path):
    first, second = _pair(manager)
    dataset = _test_set(tmp_path, manager, first)
    with pytest.raises(Cancelled):
        run_pairwise(
            manager, [first, second], dataset, ALICE.id, PairwiseConfig(), store, should_stop=lambda: True
        )
    for bad in (
        PairwiseConfig(metric="x'; DROP TABLE votes"),
        PairwiseConfig(limit=0),
        PairwiseConfig(limit=10**9),
    ):
        with pytest.raises(PlaygroundError):
            run_pairwise(manager, [first, second], dataset, ALICE.id, bad, store)
    with pytest.raises(PlaygroundError, match="Max new tokens"):
        run_pairwise(manager, [first, second], dataset, ALICE.id, PairwiseConfig(max_new_tokens=10**6), store)
    with pytest.raises(PlaygroundError, match="at least two"):
        run_pairwise(manager, [first, first], dataset, ALICE.id, PairwiseConfig(), store)
    unanswered = tmp_path / "no-answers.json"
    unanswered.write_text(json.dumps([{"id": "1", "instruction": "Hi"}]), encoding="utf-8")
    with pytest.raises(PlaygroundError, match="no reference answer"):
        run_pairwise(manager, [first, second], load_dataset(unanswered), ALICE.id, PairwiseConfig(), store)
    gone = Contestant("../../etc/passwd", None, "greedy")
    with pytest.raises(PlaygroundError, match="not loaded"):
        run_pairwise(manager, [first, gone], dataset, ALICE.id, PairwiseConfig(), store)
    assert store.votes(ALICE, METRIC) == []
    assert all(i.users == 0 for i in manager.resident())
