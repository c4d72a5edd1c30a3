from __future__ import annotations


def test_evaluate_then_see_row_chart_and_heatmap(page, app_server):
    ctx, _ = app_server
    page.get_by_role("tab", name="Leaderboard").click()
    page.locator("#eval-data-info").get_by_text("rows").wait_for()
    limit = page.get_by_label("Limit (first N examples, 0 = all)")
    limit.fill("3")
    page.locator("#eval-start").click()
    page.locator("#eval-status").get_by_text("Done").wait_for(timeout=120_000)

    runs = page.locator("#lb-runs")
    # The page opened on another data set's runs: wait for the new run's row.
    runs.get_by_text("smollm2-135m-instruct").filter(visible=True).first.wait_for()
    finished = runs.get_by_text("finished").filter(visible=True).first
    finished.wait_for()
    assert "smollm2-135m-instruct" in runs.inner_text()
    # The chart drew one bar for the new configuration.
    page.locator("#lb-chart .plot-container, #lb-chart .js-plotly-plot").first.wait_for()
    assert page.locator("#lb-chart g.point, #lb-chart .bars path").count() >= 1
    assert "mean_perplexity" in page.locator("#lb-table").inner_text()

    # Clicking the run shows its examples and the per-token NLL heatmap.
    finished.click()
    page.locator("#lb-run-title").get_by_text("Run #").wait_for()
    page.locator("#nll-heatmap").wait_for()
    assert page.locator("#nll-heatmap .nll-token").count() > 3
    assert len(ctx.leaderboard.runs(status="finished")) >= 1
