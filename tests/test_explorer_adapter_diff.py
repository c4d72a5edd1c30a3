"""Adapter vs base per reference character: the same numbers as two separate perplexity runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from playground.errors import PlaygroundError
from playground.evaluation.perplexity import perplexity
from playground.explorer.adapter_diff import adapter_diff_rows, adapter_vs_base
from playground.models import LoadOptions, load_model
from playground.models.access import exclusive_model
from playground.models.adapters import attach_adapter
from tests.helpers import save_random_lora

PAIRS = [
    ("USER: 續寫 ASSISTANT:", "床前明月光，疑是地上霜。"),
    ("Question: Is the", " quick brown fox plausible?"),
]


def test_differences_match_two_separate_perplexity_runs(tiny_llama, tmp_path):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    folder = tmp_path / "tuned"
    save_random_lora(tiny_llama, folder)
    name = attach_adapter(loaded, folder)
    diffs = adapter_vs_base(loaded, PAIRS, name)
    with exclusive_model(loaded, None):
        base = perplexity(loaded.model, loaded.tokenizer, PAIRS).examples
    with exclusive_model(loaded, name):
        tuned = perplexity(loaded.model, loaded.tokenizer, PAIRS).examples
    for chars, b, a in zip(diffs, base, tuned, strict=True):
        # One entry per character of the reference (plus eos), the split ones merged.
        assert "".join(c.text for c in chars).startswith(PAIRS[base.index(b)][1])
        assert math.fsum(c.base_nll for c in chars) == pytest.approx(math.fsum(b.nll), abs=1e-5)
        assert math.fsum(c.adapter_nll for c in chars) == pytest.approx(math.fsum(a.nll), abs=1e-5)
        assert math.fsum(c.difference for c in chars) == pytest.approx(
            math.fsum(a.nll) - math.fsum(b.nll), abs=1e-5
        )
    chinese = diffs[0]
    assert all(c.text and "\ufffd" not in c.text for c in chinese), "whole characters, not byte tokens"
    assert len(chinese) < len(base[0].tokens), "byte tokens of one character were merged"
    assert any(abs(c.difference) > 1e-4 for c in chinese), "the adapter changed something"


def _tiny_with_adapters(tiny_llama, folder, names):
    loaded = load_model(str(tiny_llama), LoadOptions(precision="fp32"))
    for n, name in enumerate(names):
        save_random_lora(tiny_llama, folder / name, scale=2.0 + n)
        attach_adapter(loaded, folder / name)
    return loaded


def test_comparison_rows_score_each_adapter_on_its_own_prompts_and_skip_rows_without_reference(
    tiny_llama, tmp_path
):
    loaded = _tiny_with_adapters(tiny_llama, tmp_path, ["one", "two"])
    references = ["床前明月光。", None, " quick brown fox"]
    own = {
        "one": ["USER: 續寫 ASSISTANT:", "USER: x ASSISTANT:", "Question: Is the"],
        "two": ["### Instruction:\n續寫\n### Response:\n", "x", "### Instruction:\nIs the\n### Response:\n"],
    }
    rows = adapter_diff_rows(loaded, list(own.items()), references)
    assert [(r.adapter, r.row) for r in rows] == [("one", 0), ("one", 2), ("two", 0), ("two", 2)]
    for adapter, prompts in own.items():
        expected = adapter_vs_base(
            loaded, [(prompts[0], references[0]), (prompts[2], references[2])], adapter
        )
        assert [r.characters for r in rows if r.adapter == adapter] == expected
    # Each adapter's own prompt, not a shared one: the same reference scores differently.
    assert rows[0].characters != rows[2].characters

    assert [(r.adapter, r.row) for r in adapter_diff_rows(loaded, list(own.items()), references, most=3)] == [
        ("one", 0),
        ("one", 2),
        ("two", 0),
    ]
    assert adapter_diff_rows(loaded, list(own.items()), [None, None, None]) == []
    with pytest.raises(PlaygroundError, match="3 references but 2 prompts"):
        adapter_diff_rows(loaded, [("one", own["one"][:2])], references)


def test_leaderboard_example_of_an_adapter_run_against_the_base(tiny_llama, monkeypatch, tmp_path):
    """The Leaderboard's handler: the clicked example's stored prompt and reference, scored twice;
    nothing for runs without an adapter, a message without reference, and the viewer check kept."""
    from playground.context import AppContext
    from playground.identity import Deployment
    from playground.leaderboard import ExampleResult, RunSpec
    from playground.paths import adapters_dir
    from playground.ui.leaderboard.adapter_diff import example_adapter_diff
    from playground.ui.session import owner_of

    ctx = AppContext(deployment=Deployment(login=True, shared=True))
    ctx.models.load(str(tiny_llama), LoadOptions(precision="fp32"))
    save_random_lora(tiny_llama, adapters_dir() / "tang")
    me, other = (SimpleNamespace(username=n, session_hash=n) for n in ("ann", "bob"))
    board = ctx.leaderboard.as_owner(owner_of(ctx, me))
    with ctx.models.use() as loaded:
        model = loaded.name
    examples = [ExampleResult(0, PAIRS[0][0], PAIRS[0][1]), ExampleResult(1, "USER: hi ASSISTANT:", None)]
    runs = {}
    for adapter in ("tang", None, "gone"):
        runs[adapter] = board.start_run(
            RunSpec(model=model, task="perplexity", dataset_name="d", adapter=adapter)
        )
        board.finish_run(runs[adapter], {}, examples)

    note, plot = example_adapter_diff(ctx, runs["tang"], 0, me)
    with ctx.models.use() as loaded:
        assert loaded.adapters == {}, "the model ends without the run's adapter"
        attach_adapter(loaded, adapters_dir() / "tang")
        expected = adapter_vs_base(loaded, [PAIRS[0]], "tang")[0]
    assert plot["visible"] is True
    heat = plot["value"].data[0]
    assert list(heat.z[0]) == [c.difference for c in expected]
    assert "tang" in note and f"{sum(c.difference for c in expected):+.2f}" in note

    assert example_adapter_diff(ctx, runs[None], 0, me)[1]["visible"] is False
    note, plot = example_adapter_diff(ctx, runs["tang"], 1, me)
    assert "no reference" in note and plot["visible"] is False
    note, plot = example_adapter_diff(ctx, runs["gone"], 0, me)
    assert "gone" in note and "not available" in note and plot["visible"] is False
    with pytest.raises(PlaygroundError, match="private"):
        example_adapter_diff(ctx, runs["tang"], 0, other)
