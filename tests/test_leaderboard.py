from __future__ import annotations

import csv
import io
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from playground.errors import PlaygroundError
from playground.leaderboard import (
    ExampleResult,
    Leaderboard,
    RunSpec,
    examples_table,
    lower_is_better,
    runs_table,
)
from tests._leaderboard_writer import N_EXAMPLES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def board():
    lb = Leaderboard()
    yield lb
    lb.close()


def spec(**changes) -> RunSpec:
    base = RunSpec(
        model="tiny-llama",
        task="generation",
        dataset_name="tang",
        strategy="k-shot",
        shots=2,
        selection="random",
        seed=1,
        template_sha="abc123",
        template_text="{instruction}\n{input}",
        decoding={"temperature": 0.7, "max_new_tokens": 32},
        dataset_sha="d5",
        n_examples=3,
    )
    return replace(base, **changes)


def finished(board: Leaderboard, metrics: dict[str, float], **changes) -> int:
    run_id = board.start_run(spec(**changes))
    board.finish_run(run_id, metrics, [])
    return run_id


def writer(url: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests._leaderboard_writer", url, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_default_database_lives_in_data_dir_in_wal_mode(board, tmp_path):
    path = tmp_path / "data" / "leaderboard.sqlite3"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_start_and_finish_round_trip(board):
    before = time.time()
    run_id = board.start_run(spec(notes={"meaning": "BLEU of the decoder output"}))
    running = board.run(run_id)
    assert running.status == "running"
    assert running.pid == os.getpid()
    assert running.host
    assert before - 1 <= running.started_at.timestamp() <= time.time() + 1
    assert running.finished_at is None and running.metrics == {}

    examples = [
        ExampleResult(
            idx=i,
            prompt=f"写一首诗 {i}",
            reference="床前明月光\t疑是地上霜",
            prediction=f"out {i}",
            metrics={"bleu": i * 10.0},
            nll=[0.25, float("inf"), 1.5],
            tokens=["床", "前", "<eos>"],
        )
        for i in range(4)
    ]
    board.finish_run(run_id, {"bleu": 12.5, "perplexity": float("inf")}, examples)

    done = board.run(run_id)
    assert done.status == "finished" and done.message == ""
    assert done.metrics == {"bleu": 12.5, "perplexity": None}  # JSON has no inf
    assert done.n_examples == 4  # corrected to the rows actually written
    assert done.duration_s is not None and 0 <= done.duration_s < 60
    assert done.finished_at >= done.started_at
    assert done.notes == {"meaning": "BLEU of the decoder output"}
    assert done.decoding == {"temperature": 0.7, "max_new_tokens": 32}
    assert done.spec() == spec(notes={"meaning": "BLEU of the decoder output"}, n_examples=4)

    stored = board.examples(run_id)
    assert [e.idx for e in stored] == [0, 1, 2, 3]
    assert stored[2].prompt == "写一首诗 2" and stored[2].reference == "床前明月光\t疑是地上霜"
    assert stored[2].metrics == {"bleu": 20.0}
    assert stored[2].nll == [0.25, None, 1.5]
    assert stored[2].tokens == ["床", "前", "<eos>"]

    with pytest.raises(PlaygroundError, match="already finished"):
        board.finish_run(run_id, {"bleu": 1.0}, [])


def test_fail_and_cancel(board):
    failed = board.start_run(spec())
    board.fail_run(failed, "CUDA out of memory")
    record = board.run(failed)
    assert (record.status, record.message) == ("failed", "CUDA out of memory")
    assert record.finished_at is not None and record.duration_s is not None

    cancelled = board.start_run(spec())
    board.fail_run(cancelled, "Stopped by the user.", status="cancelled")
    assert board.run(cancelled).status == "cancelled"
    with pytest.raises(PlaygroundError, match="already cancelled"):
        board.finish_run(cancelled, {"bleu": 1.0}, [])
    assert board.run(cancelled).metrics == {}

    done = finished(board, {"bleu": 3.0})
    board.fail_run(done, "late error")  # a finished run keeps its result
    assert board.run(done).status == "finished"

    with pytest.raises(ValueError):
        board.fail_run(failed, "x", status="finished")


def test_missing_runs_and_bad_input(board):
    for call in (
        lambda: board.run(42),
        lambda: board.delete_run(42),
        lambda: board.finish_run(42, {}, []),
        lambda: board.fail_run(42, "x"),
    ):
        with pytest.raises(PlaygroundError, match="no run #42"):
            call()
    with pytest.raises(ValueError, match="strategy"):
        board.start_run(spec(strategy="two-shot"))
    run_id = board.start_run(spec())
    with pytest.raises(ValueError, match="unique"):
        board.finish_run(run_id, {}, [ExampleResult(0, "a"), ExampleResult(0, "b")])
    with pytest.raises(ValueError, match="bleu"):
        board.finish_run(run_id, {"bleu": "high"}, [])
    assert board.run(run_id).status == "running"


def test_filters_and_datasets(board):
    a = finished(board, {"bleu": 1.0}, model="m1", dataset_name="tang")
    b = finished(board, {"bleu": 2.0}, model="m2", dataset_name="tang", strategy="zero-shot", shots=0)
    c = board.start_run(spec(model="m1", dataset_name="bigbench"))
    assert [r.id for r in board.runs()] == [c, b, a]
    assert [r.id for r in board.runs(dataset_name="tang")] == [b, a]
    assert [r.id for r in board.runs(model="m1")] == [c, a]
    assert [r.id for r in board.runs(status="running")] == [c]
    assert [r.id for r in board.runs(strategy="zero-shot")] == [b]
    assert board.datasets() == ["bigbench", "tang"]


def test_config_key_ignores_only_seed_and_notes():
    base = spec()
    assert spec(seed=7, notes={"x": 1}).config_key() == base.config_key()
    for change in (
        {"shots": 3},
        {"decoding": {"temperature": 0.2}},
        {"template_sha": "zzz"},
        {"adapter": "a"},
    ):
        assert spec(**change).config_key() != base.config_key(), change


def test_groups_three_seeds_mean_and_sample_std(board):
    accuracies = [0.5, 0.6, 0.9]
    ids = [
        finished(board, {"accuracy": acc, "bleu": 10.0 * acc}, seed=s)
        for s, acc in zip((1, 2, 3), accuracies)
    ]
    single = finished(board, {"accuracy": 0.4}, shots=5, seed=9)
    unfinished = board.start_run(spec(seed=4))
    board.fail_run(board.start_run(spec(seed=5)), "boom")
    finished(board, {"accuracy": 1.0}, dataset_name="other")

    groups = board.groups("tang", "accuracy")
    assert len(groups) == 2
    three, one = groups
    mean = sum(accuracies) / 3
    std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / 2)
    assert three.n_runs == 3 and three.run_ids == ids and three.seeds == [1, 2, 3]
    assert three.mean["accuracy"] == pytest.approx(mean)
    assert three.std["accuracy"] == pytest.approx(std)
    assert three.mean["bleu"] == pytest.approx(10 * mean)
    assert three.spec.seed is None and three.spec.shots == 2
    assert unfinished not in three.run_ids
    assert (one.run_ids, one.std["accuracy"]) == ([single], 0.0)
    # Only groups that measured the metric take part.
    assert [g.run_ids for g in board.groups("tang", "bleu")] == [ids]


def test_sort_order_perplexity_ascending_accuracy_descending(board):
    finished(board, {"perplexity": 3.0, "accuracy": 0.4}, model="a")
    finished(board, {"perplexity": 5.0, "accuracy": 0.7}, model="b")
    finished(board, {"perplexity": 4.0, "accuracy": 0.9}, model="c")

    by_ppl = board.leaderboard_table("tang", "perplexity")
    assert [r["model"] for r in by_ppl] == ["a", "c", "b"]
    assert [r["rank"] for r in by_ppl] == [1, 2, 3]
    assert by_ppl[0]["perplexity"] == 3.0 and by_ppl[0]["perplexity std"] == 0.0
    assert by_ppl[0]["accuracy"] == 0.4  # other metrics shown too
    assert [r["model"] for r in board.leaderboard_table("tang", "accuracy")] == ["c", "b", "a"]
    assert board.leaderboard_table("tang", "rouge") == []

    assert all(map(lower_is_better, ["perplexity", "mean_perplexity", "corpus_perplexity", "eval_loss"]))
    assert not any(map(lower_is_better, ["accuracy", "bleu", "exact_match"]))


def test_delete_cascades_to_examples(board):
    keep = board.start_run(spec())
    board.finish_run(keep, {"bleu": 1.0}, [ExampleResult(i, f"p{i}") for i in range(3)])
    gone = board.start_run(spec())
    board.finish_run(gone, {"bleu": 2.0}, [ExampleResult(i, f"q{i}") for i in range(5)])

    board.delete_run(gone)

    with pytest.raises(PlaygroundError, match=f"no run #{gone}"):
        board.run(gone)
    with board.engine.connect() as conn:
        count = select(func.count()).select_from(examples_table).where(examples_table.c.run_id == gone)
        assert conn.execute(count).scalar() == 0
    assert [e.prompt for e in board.examples(keep)] == ["p0", "p1", "p2"]


def test_csv_export_parses_back(board):
    a = finished(board, {"bleu": 12.5, "perplexity": 3.25}, notes={"k": "v"})
    b = finished(board, {"accuracy": 0.75}, dataset_name="other")
    c = finished(board, {"seed": 1.0})  # a metric named like a column does not overwrite it

    rows = list(csv.DictReader(io.StringIO(board.to_csv())))
    assert [int(r["id"]) for r in rows] == [a, b, c]
    assert {"bleu", "perplexity", "accuracy", "metric.seed", "model", "seed"} <= set(rows[0])
    assert float(rows[0]["bleu"]) == 12.5 and float(rows[0]["perplexity"]) == 3.25
    assert rows[0]["accuracy"] == "" and float(rows[1]["accuracy"]) == 0.75
    assert rows[0]["notes"] == '{"k": "v"}' and rows[0]["status"] == "finished"
    assert rows[2]["seed"] == "1" and float(rows[2]["metric.seed"]) == 1.0

    only_other = list(csv.DictReader(io.StringIO(board.to_csv("other"))))
    assert [int(r["id"]) for r in only_other] == [b]
    assert "bleu" not in only_other[0]


def test_mark_interrupted_dead_pid_but_not_live_one(board):
    proc = writer(board.url, "start")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    dead = int(out.strip())
    live = board.start_run(spec())
    elsewhere = board.start_run(spec())
    with board.engine.begin() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == elsewhere).values(host="other-machine"))

    assert board.run(dead).pid == proc.pid
    assert board.mark_interrupted() == 1
    assert board.run(dead).status == "interrupted"
    assert str(proc.pid) in board.run(dead).message
    assert board.run(live).status == "running"
    assert board.run(elsewhere).status == "running"

    assert board.mark_interrupted(all_running=True) == 2
    assert {board.run(i).status for i in (live, elsewhere)} == {"interrupted"}
    # A false alarm may still finish.
    board.finish_run(live, {"bleu": 1.0}, [])
    assert board.run(live).status == "finished"


def test_survives_being_killed_mid_write(tmp_path):
    path = tmp_path / "killed" / "board.sqlite3"
    url = f"sqlite:///{path}"
    board = Leaderboard(url)
    proc = writer(url, "loop")
    try:
        assert proc.stdout.readline().strip().isdigit()  # it is up and has finished a run
        # Meanwhile this process writes too: both must get their turn.
        deadline = time.monotonic() + 1.0
        mine = []
        while time.monotonic() < deadline:
            mine.append(finished(board, {"bleu": 1.0}, dataset_name="mine"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    board.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    board = Leaderboard(url)
    runs = board.runs(dataset_name="kill-test")
    done = [r for r in runs if r.status == "finished"]
    running = [r for r in runs if r.status == "running"]
    assert done and len(running) <= 1
    assert len(done) + len(running) == len(runs)
    for record in done:
        assert record.n_examples == N_EXAMPLES
        assert len(board.examples(record.id)) == N_EXAMPLES
    assert len(board.runs(dataset_name="mine", status="finished")) == len(mine) > 0

    assert board.mark_interrupted() == len(running)
    assert board.runs(status="running") == []
    for record in running:
        assert board.run(record.id).status == "interrupted"
        assert board.examples(record.id) == []  # nothing half-written
    board.close()


def test_explicit_sqlite_url_and_env_setting(tmp_path, monkeypatch):
    path = tmp_path / "nested" / "dir" / "runs.db"
    first = Leaderboard("sqlite:///" + str(path))
    run_id = finished(first, {"bleu": 4.0})
    first.close()
    assert path.is_file()

    monkeypatch.setenv("PLAYGROUND_DB_URL", "sqlite:///" + str(path))
    again = Leaderboard()
    assert again.run(run_id).metrics == {"bleu": 4.0}
    assert not (tmp_path / "data" / "leaderboard.sqlite3").exists()
    again.close()


def test_threads_write_at_the_same_time(board):
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                run_id = board.start_run(spec(seed=n * 10 + i))
                board.finish_run(run_id, {"bleu": float(i)}, [ExampleResult(j, "p") for j in range(20)])
        except BaseException as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(board.runs(status="finished")) == 20
    assert board.groups("tang", "bleu")[0].n_runs == 20


def test_in_memory_url_works_across_threads():
    board = Leaderboard("sqlite://")
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("id", finished(board, {"bleu": 2.0})))
    thread.start()
    thread.join()
    assert board.run(result["id"]).metrics == {"bleu": 2.0}
