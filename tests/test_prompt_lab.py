from __future__ import annotations

from pathlib import Path

import pytest

from playground.data import load_dataset
from playground.errors import PlaygroundError
from playground.evaluation.runner import EvalConfig
from playground.evaluation.sweep import SweepPoint, run_sweep, sweep_ks
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, load_model
from playground.prompts.fewshot import FewShotBuilder, FewShotConfig, list_recipes
from playground.prompts.templates import get_template
from playground.ui.prompt_lab import (
    LabControls,
    build_preview,
    load_lab_recipe,
    matching_train,
    save_lab_recipe,
    sweep_chart,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QA = "Q: {instruction}\nA:"


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


@pytest.fixture
def board(tmp_path):
    return Leaderboard(f"sqlite:///{tmp_path / 'lb.db'}")


@pytest.fixture(scope="module")
def sports():
    return (
        load_dataset(EXAMPLES / "sports_plausibility_test.json"),
        load_dataset(EXAMPLES / "sports_plausibility_train.json"),
    )


def _random_config(**kw) -> EvalConfig:
    fewshot = FewShotConfig(selection="random", example_template="Q: {instruction}\nA: {output}")
    return EvalConfig(fewshot=fewshot, seeds=(0, 1, 2), limit=3, batch_size=4, **kw)


def test_sweep_runs_zero_shot_then_each_k_times_seeds(tiny, board, sports):
    test, train = sports
    seen: list[tuple[float, str]] = []
    result = run_sweep(
        tiny,
        test,
        get_template(QA),
        _random_config(),
        [2, 1, 2],
        pool=train.examples,
        leaderboard=board,
        progress=lambda f, d: seen.append((f, d)),
    )
    assert not result.cancelled and result.n_examples == 3
    assert [p.k for p in result.points] == [0, 1, 2]
    assert [len(p.runs) for p in result.points] == [1, 3, 3]
    assert [p.strategy for p in result.points] == ["zero-shot", "k-shot", "k-shot"]
    assert result.points[0].selection is None and result.points[2].selection == "random"
    assert result.points[2].seeds == [0, 1, 2]

    # Stored in that order: zero-shot first, every run finished.
    records = list(reversed(board.runs()))
    assert [r.shots for r in records] == [0, 1, 1, 1, 2, 2, 2]
    assert {r.status for r in records} == {"finished"}
    assert [r.id for r in records] == [i for p in result.points for i in p.run_ids]

    # Mean and std per k are the leaderboard's own group numbers.
    groups = {tuple(g.run_ids): g for g in board.groups(test.name, "mean_perplexity")}
    rows = result.rows()
    assert len(groups) == 3 and len(rows) == 3
    for point, row in zip(result.points, rows, strict=True):
        group = groups[tuple(point.run_ids)]
        assert row["k"] == point.k and row["runs"] == group.n_runs
        assert row["mean_perplexity"] == pytest.approx(group.mean["mean_perplexity"])
        assert row["mean_perplexity std"] == pytest.approx(group.std["mean_perplexity"])
        assert row["run ids"] == ", ".join(map(str, group.run_ids))
    # Different random picks per seed give different perplexities, so the std is real.
    assert rows[2]["mean_perplexity std"] > 0 and rows[0]["mean_perplexity std"] == 0

    # Progress covers the whole sweep, never goes back, and names each of the 7 runs.
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("run 7/7, k=2" in d for _, d in seen)

    ks, means, stds = result.series("mean_perplexity")
    fig = sweep_chart(result, "mean_perplexity")
    assert list(fig.data[0].x) == ks == [0, 1, 2]
    assert list(fig.data[0].y) == pytest.approx(means)
    assert list(fig.data[0].error_y.array) == pytest.approx(stds)


def test_cancel_stops_the_sweep_and_marks_the_run_cancelled(tiny, board, sports):
    test, train = sports
    stop = {"now": False}

    def progress(fraction: float, desc: str) -> None:
        if desc.startswith("run 2/"):
            stop["now"] = True  # mid-way through the second run (k=1, seed 0)

    config = _random_config()
    config.batch_size = 1
    result = run_sweep(
        tiny,
        test,
        get_template(QA),
        config,
        [1, 2],
        pool=train.examples,
        leaderboard=board,
        progress=progress,
        should_stop=lambda: stop["now"],
    )
    assert result.cancelled
    assert [p.k for p in result.points] == [0] and len(result.points[0].runs) == 1
    statuses = [r.status for r in reversed(board.runs())]
    assert statuses == ["finished", "cancelled"]


def test_sweep_refuses_k_larger_than_the_pool_before_running(tiny, board, sports):
    test, train = sports
    with pytest.raises(PlaygroundError, match="k=5 needs 5 examples"):
        run_sweep(
            tiny, test, get_template(QA), _random_config(), [5], pool=train.examples[:4], leaderboard=board
        )
    assert board.runs() == []


def test_sweep_ks_order_and_manual():
    assert sweep_ks(FewShotConfig(), [3, 1, 3, 10]) == [0, 1, 3, 10]
    assert sweep_ks(FewShotConfig(selection="manual", manual_ids=("a", "b")), [1, 5]) == [0, 2]
    with pytest.raises(PlaygroundError, match="whole numbers"):
        sweep_ks(FewShotConfig(), [-1])


def test_manual_sweep_runs_zero_shot_and_the_picked_examples(tiny, board, sports):
    test, train = sports
    # Not ids 1 or 2: the test questions have those ids too, and a question is never its own example.
    ids = (train.examples[5].id, train.examples[3].id)
    config = EvalConfig(
        fewshot=FewShotConfig(
            selection="manual", manual_ids=ids, example_template="Q: {instruction}\nA: {output}"
        ),
        seeds=(0, 1),
        limit=2,
    )
    result = run_sweep(tiny, test, get_template(QA), config, [7], pool=train.examples, leaderboard=board)
    assert [(p.k, len(p.runs)) for p in result.points] == [(0, 1), (2, 1)]
    prompt = board.examples(result.points[1].run_ids[0])[0].prompt
    assert prompt.index(train.examples[5].instruction) < prompt.index(train.examples[3].instruction)
    zero = board.examples(result.points[0].run_ids[0])[0].prompt
    assert train.examples[5].instruction not in zero and zero.count("Q: ") == 1


def test_point_stats_skip_non_finite_like_the_leaderboard():
    point = SweepPoint(1, "k-shot", "random", runs=[{"p": 2.0}, {"p": float("inf")}, {"p": 4.0}])
    assert point.mean == {"p": 3.0} and point.std["p"] == pytest.approx(2**0.5)


def test_preview_shows_the_exact_prompt_and_its_tokens(tiny, sports):
    test, train = sports
    controls = LabControls(
        template="custom", custom=QA, example_template="Q: {instruction}\nA: {output}", k=2
    )
    text, info = build_preview(controls, test, train, 1, tiny, max_new_tokens=16)
    query = test.examples[1]
    assert text.startswith(f"Q: {train.examples[0].instruction}\nA: {train.examples[0].output}\n")
    assert text.endswith(f"Q: {query.instruction}\nA:") and text.count("Q: ") == 3
    n = len(tiny.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert f"**{n} tokens** (+ 16 new) of {tiny.context_length}" in info
    assert train.examples[0].id in info and "⚠️" not in info

    # Without a model: the same text, no token count.
    text_no_model, info_no_model = build_preview(controls, test, train, 1, None)
    assert text_no_model == text and "no model loaded" in info_no_model

    # A prompt too long for the context is flagged before anything runs.
    _, info_long = build_preview(controls, test, train, 1, tiny, max_new_tokens=tiny.context_length)
    assert "⚠️" in info_long and "exceeds" in info_long


def test_preview_without_training_set_never_uses_the_question(tiny, sports):
    test, _ = sports
    controls = LabControls(template="plain", k=2, selection="first")
    text, info = build_preview(controls, test, None, 0, tiny)
    assert test.examples[1].id in info and test.examples[2].id in info
    assert test.examples[0].id not in info.split("example(s):")[1]
    assert text.count(test.examples[0].instruction) == 1


def test_recipe_round_trip_through_the_lab_controls():
    custom = LabControls(
        template="custom",
        custom="{system}{examples}USER: {instruction}{input} ASSISTANT:",
        system="你是助理。",
        system_suffix="This is very important to my career.",
        example_template="{index}. {instruction}{input}\nAnswer: {output}",
        separator="\n\n",
        k=3,
        selection="random",
        seed=7,
        cot=True,
        cot_trigger="讓我們一步一步思考。",
        cot_example="Q: 1+1?\n讓我們一步一步思考。 1+1=2.",
    )
    manual = LabControls(template="taiwan-llama", selection="manual", manual_ids=("b", "a"))
    chat = LabControls(template="chat", system="Be brief.", k=1, selection="similar")
    for name, controls in (("homework 3-shot", custom), ("唐詩 manual", manual), ("chat", chat)):
        assert save_lab_recipe(name, controls) == name
        loaded = load_lab_recipe(name)
        expected = LabControls.from_values(*controls.values())
        if controls.selection == "manual":
            expected.k = len(controls.manual_ids)
        assert loaded == expected
    assert list_recipes() == ["chat", "homework 3-shot", "唐詩 manual"]
    # What the UI sends back to its components loads the same controls again.
    assert LabControls.from_values(*load_lab_recipe("唐詩 manual").values()) == load_lab_recipe("唐詩 manual")
    with pytest.raises(PlaygroundError, match="No recipe named"):
        load_lab_recipe("missing")
    with pytest.raises(PlaygroundError, match="cannot be a recipe name"):
        save_lab_recipe("../escape", chat)


def test_matching_training_file_for_demo_sets():
    assert matching_train("sports_plausibility_test.json") == "sports_plausibility_train.json"
    assert matching_train("dialogue_summary_test.jsonl") == "dialogue_summary_train.jsonl"
    assert matching_train("sports_plausibility_train.json") is None


def test_similar_preview_matches_the_evaluation_prompt(tiny, sports):
    test, train = sports
    controls = LabControls(template="plain", k=3, selection="similar")
    for index in (0, 4):
        text, _ = build_preview(controls, test, train, index, tiny)
        builder = FewShotBuilder(controls.resolve(tiny), controls.fewshot(), train.examples)
        assert text == builder.build(test.examples[index], tiny.tokenizer)
