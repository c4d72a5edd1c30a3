"""An adapter is used in the template it was trained with; each comparison column may have its own."""

from __future__ import annotations

import pytest

from playground.errors import PlaygroundError
from playground.generation import DecodingSettings
from playground.generation.adapter_compare import ColumnPrompts, compare_adapters
from playground.generation.compare import RowRequest, generate_rows
from playground.generation.stops import cut_at_stop
from playground.models import LoadOptions, load_model
from playground.prompts.templates import (
    TEMPLATES,
    PromptTemplate,
    adapter_template,
    resolve_template,
    training_template,
)
from playground.ui.compare.adapters_table import column_widths


def test_training_template_rule():
    default = PromptTemplate("model", "M: {instruction}", system="own")
    assert training_template("", None, default) is default
    assert training_template("", "mine", default) == PromptTemplate("model", "M: {instruction}", "mine")
    assert training_template("alpaca", None, default) == TEMPLATES["alpaca"]
    assert adapter_template({"template": "taiwan-llama", "system": "S"}, default).system == "S"
    assert adapter_template({}, default) is default
    assert adapter_template({"template": "Q: {instruction}\nA:"}, default).stop_strings == ("Q:",)
    # A saved setting may ask for no system text; a blank box (below) keeps the template's own.
    assert training_template("taiwan-llama", "", default).system == ""


def test_resolve_template_rule():
    default = PromptTemplate("model", "M: {instruction}", system="own")
    assert resolve_template("chat", "", default) is default
    assert resolve_template(None, "", default) is default
    assert resolve_template("chat", "ignored", None) == TEMPLATES["chat"]  # no model: the chat template
    assert resolve_template("chat", "", default, "  ").system == "own"
    assert resolve_template("chat", "", default, "mine") == PromptTemplate(
        "model", "M: {instruction}", "mine"
    )
    assert resolve_template("alpaca", "", default) == TEMPLATES["alpaca"]
    assert resolve_template("taiwan-llama", "", default, "").system == TEMPLATES["taiwan-llama"].system
    custom = resolve_template("custom", "Q: {instruction}\nA:", default, "S")
    assert (custom.name, custom.text, custom.system) == ("custom", "Q: {instruction}\nA:", "S")
    with pytest.raises(PlaygroundError, match="custom template"):
        resolve_template("custom", "   ", default)


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def test_each_column_gets_its_own_prompts_and_stops(tiny):
    settings = DecodingSettings(do_sample=False, max_new_tokens=6, seed=0)
    plain = ["The quick brown fox", "Hello"]
    other = ["Once upon a time", "Dear"]
    free_plain = [r.text for r in generate_rows(tiny, [RowRequest(p, settings) for p in plain])]
    free_other = [r.text for r in generate_rows(tiny, [RowRequest(p, settings) for p in other])]
    stop = free_other[0][len(free_other[0]) // 2 :][:2]
    assert stop
    table = compare_adapters(
        tiny, plain, [None], settings, column_prompts=[ColumnPrompts(other, (stop,), "other")]
    )
    assert table.templates == ["other"]
    assert [r.outputs[0] for r in table.rows] == [cut_at_stop(t, (stop,))[0] for t in free_other]
    assert table.rows[0].outputs[0] != free_other[0]  # the stop really cut it
    same = compare_adapters(tiny, plain, [None], settings)
    assert [r.outputs[0] for r in same.rows] == free_plain and same.templates == []


def test_column_prompts_must_match(tiny):
    settings = DecodingSettings(do_sample=False, max_new_tokens=2)
    with pytest.raises(PlaygroundError, match="its own version"):
        compare_adapters(tiny, ["a", "b"], [None], settings, column_prompts=[ColumnPrompts(["a"])])
    with pytest.raises(PlaygroundError, match="its own version"):
        compare_adapters(tiny, ["a"], [None], settings, column_prompts=[])


def test_column_widths_fill_the_page():
    from playground.generation.adapter_compare import ComparisonTable, TableRow

    table = ComparisonTable(
        ["base model", "a", "b"], [TableRow("p", "r", ["x", "y", "z"])], DecodingSettings()
    )
    widths = column_widths(table)
    assert len(widths) == len(table.header())
    assert 99 <= sum(float(w[:-1]) for w in widths) <= 101
