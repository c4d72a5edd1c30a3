"""Adapter vs base per reference character, in a real browser: Base vs adapters and the Leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _heatmaps(page, elem_id: str) -> list[dict]:
    """Per heatmap row that plotly drew: its z values and its x labels."""
    return page.evaluate(
        """(id) => {
          const plot = document.querySelector(`#${id} .js-plotly-plot`);
          return plot.data.map((trace, i) => {
            const axis = plot.layout[i === 0 ? 'xaxis' : `xaxis${i + 1}`];
            return {z: Array.from(trace.z[0]), labels: Array.from(axis.ticktext)};
          });
        }""",
        elem_id,
    )


def _colour_ends(page, elem_id: str) -> list[str]:
    return page.evaluate(
        "(id) => document.querySelector(`#${id} .js-plotly-plot`).layout.coloraxis.colorscale.map(c => c[1])",
        elem_id,
    )


def _references(rows: int) -> list[str]:
    data = json.loads((EXAMPLES / "classical_chinese_test.json").read_text(encoding="utf-8"))
    return [row["output"] for row in data[:rows]]


def test_base_vs_adapters_shows_a_heatmap_row_per_reference(page, app_server, make_adapter):
    ctx, _ = app_server
    make_adapter("diff-lora", template="alpaca")
    page.get_by_role("tab", name="Side by side").click()
    page.get_by_role("tab", name="Base model vs adapters").click()
    page.locator("#adapter-choices").get_by_text("diff-lora").click()
    page.locator("#adapter-source").get_by_text("data set").click()
    page.locator("#adapter-example input").click()
    page.get_by_role("option", name="classical_chinese_test.json").click()
    page.locator("#adapter-rows input, #adapter-rows textarea").first.fill("1-2")
    page.locator("#adapter-max-new input").fill("4")
    page.locator("#adapter-run").click()

    expect(page.locator("#adapter-status")).to_contain_text("2 prompts", timeout=120_000)
    expect(page.locator("#adapter-status")).to_contain_text("Per-character heatmap")
    expect(page.locator("#adapter-diff .js-plotly-plot")).to_be_visible()
    rows = _heatmaps(page, "adapter-diff")
    assert len(rows) == 2, "one row of cells per reference (one adapter, two rows with a reference)"
    for row, reference in zip(rows, _references(2), strict=True):
        # The reference's characters as x labels, then the end-of-text token; one cell each.
        assert "".join(row["labels"]).startswith(reference), (row["labels"], reference)
        assert len(row["z"]) == len(row["labels"])
        assert any(abs(v) > 1e-4 for v in row["z"]), "the adapter changed the scores"
    assert page.locator("#adapter-diff").inner_text().count("diff-lora") >= 2
    ends = _colour_ends(page, "adapter-diff")
    assert ends[0] == "#1d4ed8" and ends[-1] == "#b91c1c", "blue = the adapter made it more likely"
    assert ctx.models.current.adapters == {}, "the comparison left no adapter attached"


def test_leaderboard_example_of_an_adapter_run_shows_its_diff(page, app_server, make_adapter):
    from playground.models.adapters import detach_adapters

    try:
        make_adapter("lb-diff-lora", template="chat")
        page.get_by_role("tab", name="Leaderboard").click()
        page.locator("#eval-data-info").get_by_text("rows").wait_for()
        page.locator("#eval-adapter-refresh").click()
        page.locator("#eval-adapter input").click()
        page.get_by_role("option", name="lb-diff-lora", exact=True).click()
        page.get_by_label("Limit (first N examples, 0 = all)").fill("2")
        page.locator("#eval-start").click()
        page.locator("#eval-status").get_by_text("Done").wait_for(timeout=120_000)

        runs = page.locator("#lb-runs")
        runs.get_by_text("lb-diff-lora").filter(visible=True).first.click()
        page.locator("#lb-run-title").get_by_text("Run #").wait_for()
        note = page.locator("#lb-adapter-note")
        expect(note).to_contain_text("lb-diff-lora", timeout=60_000)
        expect(page.locator("#lb-adapter-diff .js-plotly-plot")).to_be_visible()
        first = _heatmaps(page, "lb-adapter-diff")
        assert "".join(first[0]["labels"]).startswith(_references(1)[0])

        # Another example: its own reference.
        page.locator("#lb-examples").get_by_text(_references(2)[1]).filter(visible=True).first.click()
        second = _references(2)[1]
        page.wait_for_function(
            "(ref) => document.querySelector('#lb-adapter-diff .js-plotly-plot')"
            ".layout.xaxis.ticktext.join('').startsWith(ref)",
            arg=second,
        )
        assert "more likely" in note.inner_text()
    finally:
        # The evaluation leaves its adapter attached to the shared model (as the app does);
        # the tests after this one start from the base model.
        detach_adapters(app_server[0].models.current)
