from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers import wait_for


def test_three_columns_show_three_outputs(page):
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Name three colors.")
    page.locator("#compare-input textarea").fill("")
    # The shared max-new-tokens box sets every column's own slider.
    max_new = page.locator("#compare-max-new input")
    max_new.fill("16")
    max_new.press("Tab")
    for i in range(3):
        expect(page.locator(f"#compare-summary-{i}")).to_contain_text("max 16 new tokens")
    assert page.locator("#compare-out-3").is_hidden(), "only the first three columns are shown"

    page.locator("#compare-run").click()
    outputs = [page.locator(f"#compare-out-{i} textarea") for i in range(3)]
    for i, out in enumerate(outputs):
        expect(out).not_to_have_value("", timeout=60_000)
        stats = page.locator(f"#compare-stats-{i}")
        expect(stats).to_contain_text("tokens/s")
        tokens = [int(n) for n in re.search(r"new tokens ([\d, ]+)", stats.inner_text()).group(1).split(",")]
        assert all(1 <= n <= 16 for n in tokens)
    texts = [out.input_value() for out in outputs]
    assert all(t.strip() for t in texts)
    # Greedy and both sampling presets ran in one batched call.
    expect(page.locator("#compare-stats-0")).to_contain_text("shared by 3 columns")
    assert "greedy" in page.locator("#compare-stats-0").inner_text()
    assert "T 1.2" in page.locator("#compare-stats-2").inner_text()


def test_sweep_chart_and_base_model_table_with_export(page, app_server):
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Name a color.")
    max_new = page.locator("#compare-max-new input")
    max_new.fill("8")
    max_new.press("Tab")
    expect(page.locator("#compare-summary-0")).to_contain_text("max 8 new tokens")
    page.locator("#compare-samples input[type='number']").fill("2")
    page.locator("#compare-samples input[type='number']").press("Tab")

    page.get_by_text("Sweep one setting").click()
    values = page.locator("#sweep-values textarea")
    # The accordion mounts its contents on opening, and a late mount can overwrite what was typed
    # with the default again (seen once in CI): type until the value holds.
    expect(values).to_have_value("0.1:1.5:0.2")

    def typed() -> bool:
        if values.input_value() != "0.2, 1.4":
            values.fill("0.2, 1.4")
            values.blur()
            return False
        page.wait_for_timeout(300)
        return values.input_value() == "0.2, 1.4"

    wait_for(typed, timeout=20)
    page.locator("#sweep-run").click()
    page.locator("#sweep-plot .js-plotly-plot").wait_for(timeout=60_000)
    table = page.locator("#sweep-table")
    expect(table).to_contain_text("1.4")
    assert page.locator("#sweep-plot g.trace").count() >= 4, "distinct-1, distinct-2, length, perplexity"

    ctx, _ = app_server
    attached_before = dict(ctx.models.current.adapters)
    page.get_by_role("tab", name="Base model vs adapters").click()
    page.locator("#adapter-prompts textarea").fill("What is 2 + 2?\nName a fruit.")
    page.locator("#adapter-max-new input").fill("8")
    page.locator("#adapter-run").click()
    expect(page.locator("#adapter-status")).to_contain_text("2 prompts", timeout=60_000)
    expect(page.locator("#adapter-table")).to_contain_text("Name a fruit.")
    expect(page.locator("#adapter-table")).to_contain_text("base model")
    page.locator("#adapter-export-csv").click()
    expect(page.locator("#adapter-export")).to_contain_text(".csv")
    assert ctx.models.current.adapters == attached_before, "the comparison left no adapter attached"
