"""Stop, and closing the browser tab, end the Side by side tab's running work, and only its own."""

from __future__ import annotations

import threading

from playwright.sync_api import expect

import playground.generation.column_models as column_models
from playground.errors import Cancelled
from tests.helpers import wait_for


def _record_runs(monkeypatch) -> list[dict]:
    """Every compare_columns call the tab makes: its stop event, and how it ended."""
    calls: list[dict] = []
    real = column_models.compare_columns

    def recorded(loaded, prompt, columns, samples, seed, stop, **kwargs):
        call = {"stop": stop, "ended": threading.Event(), "error": None}
        calls.append(call)
        try:
            return real(loaded, prompt, columns, samples, seed, stop, **kwargs)
        except Exception as exc:
            call["error"] = exc
            raise
        finally:
            call["ended"].set()

    monkeypatch.setattr(column_models, "compare_columns", recorded)
    return calls


def _start_long_run(page) -> None:
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Write a very long story about a dragon.")
    max_new = page.locator("#compare-max-new input")
    max_new.fill("1024")
    max_new.press("Tab")
    expect(page.locator("#compare-summary-0")).to_contain_text("max 1024 new tokens")
    page.locator("#compare-samples input[type='number']").fill("8")
    page.locator("#compare-samples input[type='number']").press("Tab")
    page.locator("#compare-run").click()


def test_stop_ends_the_run_and_closing_the_tab_ends_the_next(page, browser, app_server, monkeypatch):
    calls = _record_runs(monkeypatch)
    _, url = app_server
    # Another browser session runs at the same time; neither Stop nor the close may touch its run.
    other_context = browser.new_context()
    other = other_context.new_page()
    other.goto(url)
    _start_long_run(other)
    _start_long_run(page)
    wait_for(lambda: len(calls) == 2, 60)
    theirs, mine = calls

    page.locator("#compare-stop").click()
    assert mine["ended"].wait(90), "the stopped run ended"
    assert isinstance(mine["error"], Cancelled)
    expect(page.get_by_text(str(mine["error"])).first).to_be_visible()
    assert not theirs["stop"].is_set() and not theirs["ended"].is_set()

    page.locator("#compare-run").click()
    wait_for(lambda: len(calls) == 3, 60)
    page.close()
    # gradio notices a closed tab at its next heartbeat, then runs the unload handlers.
    assert calls[2]["ended"].wait(120), "closing the tab ended its run"
    assert calls[2]["stop"].is_set() and isinstance(calls[2]["error"], Cancelled)
    assert not theirs["stop"].is_set()
    other.locator("#compare-stop").click()
    assert theirs["ended"].wait(90)
    other_context.close()
