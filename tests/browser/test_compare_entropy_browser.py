"""The decoding columns' entropy trace in a real browser: only when ticked, one line per column."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def _traces(page) -> list[dict]:
    return page.evaluate(
        """() => Array.from(document.querySelector('#compare-entropy .js-plotly-plot').data)
             .map(t => ({name: t.name, y: Array.from(t.y)}))"""
    )


def _new_tokens(page, column: int) -> int:
    stats = page.locator(f"#compare-stats-{column}").inner_text()
    return int(re.search(r"new tokens (\d+)", stats).group(1))


def test_entropy_lines_per_column_only_when_ticked(page):
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").first.wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Name three colors.")
    page.locator("#compare-input textarea").fill("")
    columns = page.locator("#compare-n-columns input[type='number']")
    columns.fill("4")  # the fourth is beam search, which decodes outside the engine
    columns.press("Enter")
    max_new = page.locator("#compare-max-new input")
    max_new.fill("10")
    max_new.press("Tab")
    expect(page.locator("#compare-summary-3")).to_contain_text("max 10 new tokens")

    page.locator("#compare-run").click()
    expect(page.locator("#compare-out-3 textarea")).not_to_have_value("", timeout=90_000)
    assert page.locator("#compare-entropy").is_hidden(), "no trace unless asked for"

    page.locator("#compare-show-entropy input").check()
    page.locator("#compare-run").click()
    page.locator("#compare-entropy .js-plotly-plot").wait_for(timeout=90_000)
    traces = _traces(page)
    assert [t["name"].split(":")[0] for t in traces] == ["column 1", "column 2", "column 3"]
    for column, trace in enumerate(traces):
        assert len(trace["y"]) == _new_tokens(page, column), "one point per generated token"
        assert all(v >= 0 for v in trace["y"])
    assert traces[0]["y"] != traces[2]["y"], "the columns' answers differ, and so do their traces"
    expect(page.locator("#compare-entropy")).to_contain_text("no line for column 4")
