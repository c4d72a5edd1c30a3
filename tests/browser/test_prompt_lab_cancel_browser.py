"""Cancel and a closed browser tab stop the session's evaluation (its flag lives in a gr.State)."""

from __future__ import annotations

from tests.helpers import wait_for


def _start_long_sweep(page, ctx) -> int:
    """Starts zero-shot + k=1,2,3 with a generation metric over every question; waits for its first
    run to be running. Returns the id the runs of this sweep start after."""
    before = max((r.id for r in ctx.leaderboard.runs()), default=0)
    page.get_by_role("tab", name="Prompt lab").click()
    page.locator("#lab-preview-info").get_by_text("tokens").wait_for()
    page.locator("#lab-metrics").get_by_text("rouge").click()
    page.get_by_label("Limit (first N questions, 0 = all)").fill("0")
    page.locator("#lab-eval").click()
    wait_for(lambda: any(r.id > before and r.status == "running" for r in ctx.leaderboard.runs()), 60)
    return before


def _sweep_runs(ctx, before: int) -> list:
    return [r for r in ctx.leaderboard.runs() if r.id > before]


def _stopped(ctx, before: int) -> list:
    runs = _sweep_runs(ctx, before)
    return runs if runs and all(r.status != "running" for r in runs) else []


def test_cancel_stops_the_sweep_and_keeps_what_finished(page, app_server):
    ctx, _ = app_server
    before = _start_long_sweep(page, ctx)
    page.locator("#lab-cancel").click()
    page.locator("#lab-eval-status").get_by_text("Cancelled").wait_for(timeout=120_000)
    runs = wait_for(lambda: _stopped(ctx, before), 60)
    assert len(runs) < 4 and "cancelled" in {r.status for r in runs}


def test_closing_the_browser_tab_stops_its_sweep(browser, app_server):
    ctx, url = app_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#model-status")
    before = _start_long_sweep(page, ctx)
    page.close()
    runs = wait_for(lambda: _stopped(ctx, before), 120)
    assert len(runs) < 4 and "cancelled" in {r.status for r in runs}
    context.close()
