"""Token explorer in a real browser: click a token, see its candidates, move temperature, branch."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.language import save_screenshot
from tests.helpers import wait_for


def _bar_heights(page, series: int) -> list[float]:
    """The y values plotly drew for one bar series of the candidates chart."""
    return page.evaluate(
        "(i) => Array.from(document.querySelector('#explorer-chart .js-plotly-plot').data[i].y)", series
    )


def _set_slider(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type='number']")
    box.fill(value)
    box.press("Enter")


def test_click_a_token_move_temperature_and_branch(page):
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").first.wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.get_by_role("tab", name="Token explorer").click()
    page.locator("#explorer-instruction textarea").fill("Name three colors.")
    page.locator("#explorer-input textarea").fill("")
    _set_slider(page, "explorer-max-new", "12")
    page.locator("#explorer-run").click()

    tokens = page.locator("#explorer-answers #xp-answer-0 .xp-tok")
    expect(tokens.first).to_be_visible(timeout=120_000)
    assert tokens.count() >= 3
    # Coloured by probability, the raw tokens and probability on hover.
    assert "p=" in tokens.nth(1).get_attribute("title")
    expect(page.locator("#explorer-entropy .js-plotly-plot")).to_be_visible()

    tokens.nth(1).click()
    expect(page.locator("#explorer-info")).to_contain_text("token 2")
    expect(page.locator("#explorer-chart .js-plotly-plot")).to_be_visible()
    raw_before, after_before = _bar_heights(page, 0), _bar_heights(page, 1)
    assert len(raw_before) == 20 and abs(sum(after_before) - 1) < 0.2

    # A hotter temperature flattens the "after" bars; the raw ones stay, and the model does not run.
    _set_slider(page, "explorer-temperature", "1.9")
    wait_for(lambda: _bar_heights(page, 1) != after_before, timeout=30)
    assert _bar_heights(page, 0) == raw_before
    assert max(_bar_heights(page, 1)) < max(after_before)

    # Top-k 2 removes all but the two most likely candidates.
    _set_slider(page, "explorer-top-k", "2")
    wait_for(lambda: sum(h > 0 for h in _bar_heights(page, 1)) == 2, timeout=30)
    expect(page.locator("#explorer-chart")).to_contain_text("removed")

    # Branch with another candidate: a second answer appears beside the first, its prefix marked.
    expect(page.locator("#explorer-branch-token input")).not_to_have_value("")
    page.locator("#explorer-branch").click()
    second = page.locator("#explorer-answers #xp-answer-1")
    expect(second).to_be_visible(timeout=120_000)
    expect(second).to_contain_text("Branch of answer 1 at token 2")
    assert second.locator(".xp-fork").count() == 1
    assert second.locator(".xp-shared").count() >= 1
    assert page.locator("#explorer-answers .xp-answer").count() == 2
    save_screenshot(page, "token-explorer-en.png")
