"""Issue 22 (2): evaluation runs leave the leaderboard as a parquet data set of their examples."""

from __future__ import annotations

import json

import datasets
import pytest

from playground.errors import PlaygroundError
from playground.evaluation.run_export import export_parquet
from playground.identity import Owner
from playground.leaderboard import ExampleResult, Leaderboard, RunSpec

ALICE, BOB = Owner("user:alice"), Owner("user:bob")


@pytest.fixture
def board(tmp_path):
    board = Leaderboard(f"sqlite:///{tmp_path / 'runs.db'}")
    yield board
    board.close()


def _run(board: Leaderboard, seed: int, owner: str, examples: list[ExampleResult]) -> int:
    spec = RunSpec(
        model="smollm2", task="qa", dataset_name="poems.json", seed=seed, decoding={"temperature": 0.7}
    )
    run_id = board.start_run(spec, owner=owner)
    board.finish_run(run_id, {"rouge1": 0.25 * seed}, examples)
    return run_id


def test_runs_export_as_parquet_that_datasets_reads_back(board, tmp_path):
    first = _run(
        board,
        1,
        "user:alice",
        [
            ExampleResult(0, "床前明月光", "疑是地上霜", "低頭思故鄉", {"rouge1": 0.5}),
            ExampleResult(1, "白日依山盡", "黃河入海流", None, {"rouge1": 0.0}),
        ],
    )
    second = _run(board, 2, "user:alice", [ExampleResult(0, "p", "r", "x", {"perplexity": 3.5})])
    out = export_parquet(board, [first, second], tmp_path / "runs.parquet", viewer=ALICE)
    back = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert len(back) == 3 and back["run_id"] == [first, first, second]
    assert back["prompt"][:2] == ["床前明月光", "白日依山盡"] and back["prediction"][1] is None
    assert json.loads(back["metrics"][0]) == {"rouge1": 0.5} and json.loads(back["metrics"][2]) == {
        "perplexity": 3.5
    }
    assert json.loads(back["run_metrics"][2]) == {"rouge1": 0.5} and back["seed"] == [1, 1, 2]
    assert json.loads(back["decoding"][0]) == {"temperature": 0.7}


def test_a_private_run_is_not_exported_for_someone_else(board, tmp_path):
    run_id = _run(board, 1, "user:alice", [ExampleResult(0, "secret prompt", "r", "x")])
    with pytest.raises(PlaygroundError, match="private"):
        export_parquet(board, [run_id], tmp_path / "x.parquet", viewer=BOB)
    assert not list(tmp_path.glob("*.parquet*"))  # nothing half-written left behind
    board.publish_run(run_id, by=ALICE)
    assert export_parquet(board, [run_id], tmp_path / "x.parquet", viewer=BOB).is_file()
