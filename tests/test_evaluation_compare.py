"""Base model vs adapter, as a service: same data and template for both, both runs stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.data import load_dataset
from playground.errors import Cancelled
from playground.evaluation.compare import compare_with_base
from playground.evaluation.runner import EvalConfig, evaluate
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, load_model
from playground.models.adapters import read_adapter
from playground.prompts.templates import TEMPLATES
from tests.helpers import save_random_lora

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def adapter_folder(tiny_llama, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("adapters") / "tuned"
    save_random_lora(tiny_llama, folder)
    meta = {"base_model": str(tiny_llama), "name": "tuned", "settings": {"template": "alpaca", "system": "S"}}
    (folder / "playground.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_both_runs_use_the_adapters_template_and_are_stored(tiny_llama, adapter_folder, tmp_path):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    board = Leaderboard(f"sqlite:///{tmp_path / 'lb.sqlite3'}")
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    config = EvalConfig(limit=3)
    seen: list[str] = []
    result = compare_with_base(
        loaded,
        data,
        read_adapter(adapter_folder),
        config,
        leaderboard=board,
        progress=lambda f, d: seen.append(d),
    )
    assert (result.template.text, result.template.system) == (TEMPLATES["alpaca"].text, "S")
    assert (result.adapter_name, result.dataset_name, result.n_examples) == ("tuned", data.name, 3)
    # The base run is the model without the adapter, scored in the adapter's template.
    [alone] = evaluate(
        load_model(str(tiny_llama), LoadOptions(precision="fp32")), data, result.template, config
    )
    base, tuned = result.base.metrics["mean_perplexity"], result.adapted.metrics["mean_perplexity"]
    assert base == pytest.approx(alone.metrics["mean_perplexity"], rel=1e-6)
    assert tuned != pytest.approx(base, rel=1e-3)
    runs = {r.id: r for r in board.runs()}
    assert runs[result.base.run_id].adapter in (None, "")
    assert runs[result.adapted.run_id].adapter == "tuned"
    assert {r.template_sha for r in runs.values()} == {result.template.sha}
    assert any(d.startswith("base model: ") for d in seen) and any(
        d.startswith("adapter tuned: ") for d in seen
    )


def test_a_stop_request_ends_the_comparison(tiny_llama, adapter_folder, tmp_path):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    board = Leaderboard(f"sqlite:///{tmp_path / 'lb.sqlite3'}")
    data = load_dataset(EXAMPLES / "classical_chinese_test.json")
    with pytest.raises(Cancelled):
        compare_with_base(
            loaded,
            data,
            read_adapter(adapter_folder),
            EvalConfig(limit=3),
            leaderboard=board,
            should_stop=lambda: True,
        )
    assert [r.status for r in board.runs()] == ["cancelled"]
