"""The arena's services: battles on resident tiny models, vote storage and its refusals, exports."""

from __future__ import annotations

import csv
import json
import random

import pytest

from playground.arena.battles import Battle, start_battle, stream_battle
from playground.arena.contestants import Contestant, check_contestants, contestants
from playground.arena.exports import export_votes, preference_pairs
from playground.arena.ratings import ratings
from playground.arena.votes import VoteFilter, VoteStore
from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, ModelManager
from playground.models.memory import GIB, MemoryBudget

ALICE, BOB, ADMIN = Owner("user:alice"), Owner("user:bob"), Owner("user:root", is_admin=True)
FP32 = LoadOptions(precision="fp32")


def resident_pair(bar_model, other_model) -> ModelManager:
    """A manager with `bar_model` on the bar and `other_model` resident beside it (fp32)."""
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    manager.load(str(bar_model), FP32)
    with manager.use_model(str(other_model), FP32):
        pass
    return manager


@pytest.fixture
def manager(tiny_llama, tiny_mistral):
    return resident_pair(tiny_llama, tiny_mistral)


@pytest.fixture
def store(tmp_path):
    return VoteStore(Leaderboard(f"sqlite:///{tmp_path / 'board.sqlite3'}"))


def _battle(manager, owner=ALICE, prompt="Say hello.", test_set=None) -> Battle:
    keys = [i.key for i in manager.resident()]
    picked = [Contestant(keys[0], None, "greedy"), Contestant(keys[1], None, "greedy")]
    battle = start_battle(picked, prompt, owner.id, max_new_tokens=6, test_set=test_set, rng=random.Random(1))
    list(stream_battle(manager, battle))
    return battle


def test_battle_streams_two_models_and_hides_their_settings(manager):
    offered = {c.label for c in contestants(manager, ALICE)}
    keys = [i.key for i in manager.resident()]
    assert f"{keys[0]} | base | greedy" in offered and f"{keys[1]} | base | greedy" in offered
    assert not any("beams" in label for label in offered), "the arena streams, beams do not"
    picked = check_contestants(manager, ALICE, [f"{keys[0]} | base | greedy", f"{keys[1]} | base | greedy"])
    battle = start_battle(picked, "Say hello.", ALICE.id, max_new_tokens=6, rng=random.Random(0))
    updates = list(stream_battle(manager, battle))
    assert battle.finished and updates[-1] == (battle.answer_a, battle.answer_b)
    assert battle.answer_a and battle.answer_b
    assert {battle.settings_a["model"], battle.settings_b["model"]} == set(keys)
    assert battle.settings_a["decoding"]["seed"] == battle.seed == battle.settings_b["decoding"]["seed"]
    assert all(i.users == 0 for i in manager.resident()), "both models were let go"
    with pytest.raises(PlaygroundError, match="has its answers already"):
        list(stream_battle(manager, battle))


def test_contestant_choices_refuse_bad_input(manager):
    key = manager.resident()[0].key
    for bad in ([f"{key} | base | greedy"], [], [f"{key} | base | beams 5", f"{key} | base | greedy"]):
        with pytest.raises(PlaygroundError):
            check_contestants(manager, ALICE, bad)
    with pytest.raises(PlaygroundError, match="not available now"):
        check_contestants(manager, ALICE, ["../etc | base | greedy", f"{key} | base | greedy"])
    with pytest.raises(PlaygroundError, match="at most|up to"):
        start_battle(
            [Contestant(key, None, "greedy")] * 2 + [Contestant("x", None, "greedy")], "x" * 5000, "u"
        )


def test_votes_are_stored_once_and_only_by_who_asked(manager, store):
    battle = _battle(manager, test_set="demo.json")
    with pytest.raises(PlaygroundError, match="belongs to someone else"):
        store.record(battle, BOB, "a")
    with pytest.raises(PlaygroundError, match="one of"):
        store.record(battle, ALICE, "a'; DROP TABLE votes; --")
    record = store.record(battle, ALICE, "a")
    assert record.contestant_a == battle.a.label and record.settings_b == battle.settings_b
    with pytest.raises(PlaygroundError, match="voted on this battle already"):
        store.record(battle, ALICE, "b")
    # A replayed vote on a copy of the battle (a second tab, a replayed request) hits the database's rule.
    copy = Battle(**{**vars(battle), "outcome": None})
    with pytest.raises(PlaygroundError, match="stored once"):
        store.record(copy, ALICE, "b")
    assert [v.outcome for v in store.votes(ALICE)] == ["a"]
    assert store.votes(BOB) == [], "others' votes stay private"
    assert len(store.votes(ADMIN)) == 1 and store.votes(ADMIN, VoteFilter(user="user:bob")) == []
    assert store.votes(ALICE, VoteFilter(test_set="other.json")) == []
    assert len(store.votes(ALICE, VoteFilter(test_set="demo.json"))) == 1


def test_expired_and_unfinished_battles_are_refused(manager, store):
    battle = _battle(manager)
    battle.created -= 2 * 3600
    with pytest.raises(PlaygroundError, match="expired"):
        store.record(battle, ALICE, "tie")
    key = manager.resident()[0].key
    fresh = start_battle(
        [Contestant(key, None, "greedy"), Contestant(key, None, "focused (T 0.1, top-p 0.3, no-repeat 3)")],
        "Hi",
        ALICE.id,
    )
    with pytest.raises(PlaygroundError, match="Wait until both answers"):
        store.record(fresh, ALICE, "a")
    with pytest.raises(PlaygroundError, match="no battle"):
        store.record(None, ALICE, "a")
    assert store.votes(ADMIN) == []


def test_ratings_and_exports_from_stored_votes(manager, store, tmp_path):
    outcomes = ["a", "a", "b", "tie", "both_bad"]
    battles = [_battle(manager, prompt=f"Question {i}") for i in range(len(outcomes))]
    for battle, outcome in zip(battles, outcomes):
        store.record(battle, ALICE, outcome)
    records = store.votes(ALICE)
    table = ratings([r.as_vote() for r in records], bootstrap=20)
    assert sum(r.votes for r in table) == 2 * len(outcomes)
    csv_path = export_votes(records, "csv")
    with csv_path.open(encoding="utf-8", newline="") as f:  # answers may hold any line break
        rows = list(csv.DictReader(f))
    assert [r["outcome"] for r in rows] == outcomes and rows[0]["answer_a"] == battles[0].answer_a
    jsonl = export_votes(records, "jsonl")
    pairs = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert pairs == preference_pairs(records) and len(pairs) == 3, "ties and both-bad give no pair"
    first = battles[0]
    assert pairs[0] == {"prompt": first.prompt, "chosen": first.answer_a, "rejected": first.answer_b}
    assert pairs[2]["chosen"] == battles[2].answer_b
    assert csv_path.parent.parent.name == "exports" and csv_path.parent != jsonl.parent
    with pytest.raises(PlaygroundError, match="nothing to export"):
        export_votes([], "csv")


def test_stop_ends_both_answers_and_the_battle_takes_no_vote(manager, store):
    import threading

    keys = [i.key for i in manager.resident()]
    picked = [Contestant(keys[0], None, "greedy"), Contestant(keys[1], None, "greedy")]
    battle = start_battle(picked, "Tell a story.", ALICE.id, max_new_tokens=200, rng=random.Random(2))
    stop = threading.Event()
    updates = []
    for update in stream_battle(manager, battle, stop):
        updates.append(update)
        stop.set()  # Stop pressed as soon as the answers start
    assert battle.stopped and battle.finished
    full = start_battle(picked, "Tell a story.", ALICE.id, max_new_tokens=200, rng=random.Random(2))
    list(stream_battle(manager, full))
    assert not full.stopped and (full.a, full.seed) == (battle.a, battle.seed)
    for cut, whole in ((battle.answer_a, full.answer_a), (battle.answer_b, full.answer_b)):
        assert whole.startswith(cut) and len(cut) < len(whole), "stopped part-way through the same answer"
    with pytest.raises(PlaygroundError, match="stopped before both answers ended"):
        store.record(battle, ALICE, "a")
    assert store.votes(ALICE) == []
    assert all(i.users == 0 for i in manager.resident())
