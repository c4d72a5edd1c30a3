from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.data import load_dataset
from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.perplexity import looped_perplexity
from playground.evaluation.runner import EvalConfig, evaluate, summarize
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, load_model
from playground.prompts.fewshot import FewShotBuilder, FewShotConfig
from playground.prompts.templates import get_template

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


@pytest.fixture
def board(tmp_path):
    return Leaderboard(f"sqlite:///{tmp_path / 'lb.sqlite3'}")


def test_perplexity_run_matches_homework_loop_and_is_stored(tiny, board):
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    template = get_template("taiwan-llama")
    [outcome] = evaluate(
        tiny, data, template, EvalConfig(metrics=("perplexity",), limit=5), leaderboard=board
    )
    pairs = [(template.render(e.instruction, e.input), e.output) for e in data.examples[:5]]
    reference = looped_perplexity(tiny.model, tiny.tokenizer, pairs, max_length=tiny.context_length)
    assert outcome.metrics["mean_perplexity"] == pytest.approx(reference.mean_perplexity, rel=1e-4)
    record = board.run(outcome.run_id)
    assert record.status == "finished" and record.strategy == "zero-shot" and record.n_examples == 5
    rows = board.examples(outcome.run_id)
    assert len(rows) == 5 and rows[0].nll and len(rows[0].nll) == len(rows[0].tokens)
    assert rows[0].prompt.startswith("你是人工智慧助理")


def test_random_k_shot_runs_once_per_seed_and_groups(tiny, board):
    test = load_dataset(EXAMPLES / "sports_plausibility_test.json")
    train = load_dataset(EXAMPLES / "sports_plausibility_train.json")
    config = EvalConfig(
        metrics=("perplexity", "accuracy"),
        fewshot=FewShotConfig(k=2, selection="random", example_template="Q: {instruction}\nA: {output}\n"),
        seeds=(1, 2, 3),
        limit=4,
    )
    config.decoding = config.decoding.with_(max_new_tokens=4)
    outcomes = evaluate(
        tiny, test, get_template("Q: {instruction}\nA:"), config, pool=train.examples, leaderboard=board
    )
    assert [o.seed for o in outcomes] == [1, 2, 3]
    assert all(0.0 <= o.metrics["accuracy"] <= 1.0 for o in outcomes)
    [group] = board.groups(test.name, "mean_perplexity")
    assert group.n_runs == 3 and sorted(group.seeds) == [1, 2, 3]
    summary = summarize(outcomes)
    assert summary["std"]["mean_perplexity"] >= 0 and len(summary["per_seed"]) == 3
    # Prompts really hold 2 examples drawn from the training file, never the query.
    prompt = board.examples(outcomes[0].run_id)[0].prompt
    assert prompt.count("Q: ") == 3 and prompt.count("\nA: ") >= 2


def test_first_k_ignores_extra_seeds(tiny):
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    config = EvalConfig(fewshot=FewShotConfig(k=1, selection="first"), seeds=(1, 2), limit=3)
    assert len(evaluate(tiny, data, get_template("plain"), config)) == 1


def test_cancel_marks_run_cancelled(tiny, board):
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    with pytest.raises(Cancelled):
        evaluate(
            tiny,
            data,
            get_template("plain"),
            EvalConfig(batch_size=1),
            leaderboard=board,
            should_stop=lambda: True,
        )
    [record] = board.runs()
    assert record.status == "cancelled"


def test_missing_references_is_a_clear_error(tiny, tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"instruction": "a", "input": "b"}, {"instruction": "c", "input": "d"}]))
    with pytest.raises(PlaygroundError, match="no reference output"):
        evaluate(tiny, load_dataset(path), get_template("plain"), EvalConfig())


def test_builder_prompt_is_what_gets_scored(tiny):
    data = load_dataset(EXAMPLES / "poem_continuation_test.json")
    template = get_template("alpaca")
    [outcome] = evaluate(tiny, data, template, EvalConfig(limit=2))
    builder = FewShotBuilder(template, FewShotConfig(), data.examples)
    assert outcome.examples[1].prompt == builder.build(data.examples[1], tiny.tokenizer)


def test_cli_json_last_line(tiny_llama, tmp_path):
    env_data = tmp_path / "cli-data"
    cmd = [
        sys.executable,
        "-m",
        "playground",
        "eval",
        "--model",
        str(tiny_llama),
        "--data",
        str(EXAMPLES / "classical_chinese_test.json"),
        "--template",
        "USER: {instruction} ASSISTANT:",
        "--metrics",
        "perplexity,rouge",
        "--limit",
        "3",
        "--max-new-tokens",
        "4",
        "--precision",
        "fp32",
        "--json",
    ]
    import os

    env = dict(os.environ, PLAYGROUND_DATA_DIR=str(env_data))
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).parents[1]
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["mean_perplexity"] > 1 and 0 <= summary["rouge1"] <= 1
    assert summary["per_seed"][0]["run_id"] == 1 and summary["n_examples"] == 3
    assert (env_data / "leaderboard.sqlite3").exists()

    bad = subprocess.run(
        cmd[:8] + ["--data", str(tmp_path / "nope.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert bad.returncode == 1 and "nope.json" in bad.stderr and "Traceback" not in bad.stderr


def test_base_run_ignores_an_adapter_left_active_and_adapter_run_uses_it(tiny_llama, tmp_path):
    from playground.models.adapters import attach_adapter
    from tests.helpers import save_random_lora

    save_random_lora(tiny_llama, tmp_path / "ad")
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    config = EvalConfig(limit=3)
    [plain] = evaluate(loaded, data, get_template("plain"), config)
    name = attach_adapter(loaded, tmp_path / "ad")  # now active, as after picking it for chat
    [base] = evaluate(loaded, data, get_template("plain"), config)
    [tuned] = evaluate(loaded, data, get_template("plain"), config, adapter=name)
    assert base.metrics["mean_perplexity"] == pytest.approx(plain.metrics["mean_perplexity"], rel=1e-6)
    assert tuned.metrics["mean_perplexity"] != pytest.approx(plain.metrics["mean_perplexity"], rel=1e-3)
