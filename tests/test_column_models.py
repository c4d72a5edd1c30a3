"""Side by side columns that each pick a model, an adapter and a precision (issue 20), on tiny
models with random LoRA adapters saved as a training job of a given user leaves them."""

from __future__ import annotations

import json

import pytest

from playground.errors import PlaygroundError
from playground.generation.column_models import ColumnPick, compare_on_models
from playground.generation.compare import Column
from playground.generation.settings import PRESETS
from playground.identity import Owner
from playground.models import LoadOptions, ModelManager
from playground.models.adapter_access import ChoiceRefused, usable_adapters
from playground.models.memory import GIB, MemoryBudget
from tests.helpers import save_random_lora

FP32 = LoadOptions(precision="fp32")
ALICE, BOB, ADMIN = Owner("user:alice"), Owner("user:bob"), Owner("user:root", is_admin=True)
GREEDY = PRESETS["greedy"].with_(max_new_tokens=12)
PROMPT = "The quick brown fox"


def _adapter_of(owner: str, name: str, model_path) -> None:
    """An adapter of `model_path` saved by a training job that `owner` started."""
    from playground.paths import adapters_dir
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob, jobs_root

    folder = adapters_dir() / name
    save_random_lora(model_path, folder)
    meta = {"job": f"job-{name}", "base_model": str(model_path)}
    (folder / "playground.json").write_text(json.dumps(meta))
    config = TrainingConfig(model=str(model_path), data="d.json", output=name)
    TrainingJob.create(config, folder=jobs_root() / f"job-{name}", status="finished", owner=owner)


@pytest.fixture
def two_models(tiny_llama, tiny_mistral):
    """The tiny llama on the bar and the tiny mistral resident beside it; alice's adapter of each."""
    manager = ModelManager(MemoryBudget(fixed_bytes=GIB))
    llama = manager.load(str(tiny_llama), FP32)
    with manager.use_model(str(tiny_mistral), FP32) as mistral:
        pass
    _adapter_of("user:alice", "alice-llama", tiny_llama)
    _adapter_of("user:alice", "alice-mistral", tiny_mistral)
    # Put in place by the operator (no training job): everyone's.
    from playground.paths import adapters_dir

    save_random_lora(tiny_mistral, adapters_dir() / "shared-mistral")
    (adapters_dir() / "shared-mistral" / "playground.json").write_text(
        json.dumps({"base_model": str(tiny_mistral)})
    )
    return manager, manager.key_of(llama), manager.key_of(mistral)


def _run(manager, owner, picks, seed=7):
    return compare_on_models(manager, owner, picks, lambda loaded: PROMPT, 1, seed, shared=False)


def _col(n: int) -> Column:
    return Column(f"column {n}", GREEDY)


def test_each_column_runs_its_model_and_adapter_on_one_seed(two_models):
    manager, llama, mistral = two_models
    picks = [
        ColumnPick(_col(1)),  # the bar's model
        ColumnPick(_col(2), llama),  # the same model by its key
        ColumnPick(_col(3), llama, "alice-llama"),
        ColumnPick(_col(4), mistral),
        ColumnPick(_col(5), mistral, "alice-mistral"),
    ]
    out = _run(manager, ALICE, picks)
    assert [o.error for o in out] == [None] * 5
    texts = [o.result.texts[0] for o in out]
    assert texts[0] == texts[1], "same model, settings and seed: the same text"
    assert texts[2] != texts[0], "the adapter changes this model's answer"
    assert texts[4] != texts[3], "and that one the other model's"
    assert [(o.model, o.adapter) for o in out] == [
        (llama, None),
        (llama, None),
        (llama, "alice-llama"),
        (mistral, None),
        (mistral, "alice-mistral"),
    ]
    assert all(o.precision == "float32" for o in out), [o.precision for o in out]
    # The adapter column's text is its own: the same as when it runs alone, and the base column's
    # text is the same without an adapter column beside it.
    alone = _run(manager, ALICE, [ColumnPick(_col(3), llama, "alice-llama")])
    assert alone[0].result.texts[0] == texts[2]
    base_alone = _run(manager, ALICE, [ColumnPick(_col(1))])
    assert base_alone[0].result.texts[0] == texts[0]


def test_refused_adapters_get_a_message_in_their_column_and_the_others_run(two_models):
    manager, llama, mistral = two_models
    picks = [
        ColumnPick(_col(1), llama),
        ColumnPick(_col(2), llama, "alice-llama"),  # bob may not use alice's
        ColumnPick(_col(3), llama, "shared-mistral"),  # trained on another base
        ColumnPick(_col(4), llama, "../alice-llama"),
        ColumnPick(_col(5), llama, "no-such-adapter"),
        ColumnPick(_col(6), mistral),
    ]
    out = _run(manager, BOB, picks)
    reasons = [o.error.reason if isinstance(o.error, ChoiceRefused) else o.error for o in out]
    assert reasons == [None, "adapter_owner", "adapter_base", "adapter_name", "adapter_missing", None]
    assert "belongs to another user" in str(out[1].error)
    assert (
        "trained on" in str(out[2].error) and out[2].error.refusal_values["model"] == manager.find(llama).name
    )
    assert out[0].result.texts[0].strip() and out[5].result.texts[0].strip()
    assert all(o.result is None for o in out[1:5])
    # Nothing of alice's was attached for bob; the admin may use it.
    assert "alice-llama" not in manager.find(llama).adapters
    admin = _run(manager, ADMIN, [ColumnPick(_col(2), llama, "alice-llama")])
    assert admin[0].error is None


def test_usable_adapters_are_the_users_own_of_that_base(two_models, tiny_llama):
    manager, llama, mistral = two_models
    loaded = manager.find(llama)
    assert usable_adapters(ALICE, loaded.name, loaded.source) == ["alice-llama"]
    assert usable_adapters(BOB, loaded.name, loaded.source) == []
    assert usable_adapters(BOB, manager.find(mistral).name) == ["shared-mistral"]
    assert usable_adapters(ADMIN, manager.find(mistral).name) == ["alice-mistral", "shared-mistral"]


def test_a_precision_loads_another_copy_for_admins_only(two_models):
    manager, llama, _ = two_models
    refused = _run(manager, ALICE, [ColumnPick(_col(1), llama, precision="bf16"), ColumnPick(_col(2))])
    assert isinstance(refused[0].error, ChoiceRefused) and refused[0].error.reason == "precision"
    assert refused[1].error is None and len(manager.resident()) == 2, "nothing loaded for alice"

    out = _run(manager, ADMIN, [ColumnPick(_col(1)), ColumnPick(_col(2), None, "alice-llama", "bf16")])
    assert out[0].precision == "float32" and out[1].precision == "bfloat16"
    assert out[1].model != llama and out[1].model.startswith(manager.find(llama).name)
    assert len(manager.resident()) == 3 and manager.find(llama).options.precision == "fp32"
    assert out[1].result.texts[0].strip()
    # The copy now resident is reused, not loaded again.
    again = _run(manager, ADMIN, [ColumnPick(_col(2), out[1].model, precision="bf16")])
    assert again[0].model == out[1].model and len(manager.resident()) == 3


def test_a_model_a_user_may_not_load_is_refused_in_its_column_only(two_models):
    manager, llama, _ = two_models
    out = _run(manager, ALICE, [ColumnPick(_col(1), "smollm2-360m-instruct"), ColumnPick(_col(2), llama)])
    assert isinstance(out[0].error, PlaygroundError) and "for admins" in str(out[0].error)
    assert out[1].error is None and out[1].result.texts[0].strip()
    unknown = _run(manager, ADMIN, [ColumnPick(_col(1), llama, precision="../fp32")])
    assert "Unknown precision" in str(unknown[0].error)


def test_the_column_says_why_in_the_page_language(two_models):
    from playground.ui.compare.column_models import outcome_values

    manager, llama, _ = two_models
    out = _run(manager, BOB, [ColumnPick(_col(1), llama, "alice-llama"), ColumnPick(_col(2), llama)])
    text_en, stats_en = outcome_values(out[0], 1, "en")
    _, stats_zh = outcome_values(out[0], 1, "zh-TW")
    assert text_en == "" and "Not run" in stats_en and "belongs to another user" in stats_en
    assert "未執行" in stats_zh and "屬於其他使用者" in stats_zh
    _, ran = outcome_values(out[1], 1, "en")
    assert f"`{llama}`" in ran and "none (base model)" in ran and "float32" in ran
    assert "tokens/s" in ran
