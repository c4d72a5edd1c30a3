"""The Arena tab in Traditional Chinese (a zh-TW browser) and in English, with screenshots."""

from __future__ import annotations

from playwright.sync_api import expect

from playground.ui.i18n import WORDS
from tests.browser.language import labels_in, open_tab, save_screenshot

# Labels that stand on the tab whatever its data; each must show in the page's language only.
LABELS = (
    "arena.contestants",
    "arena.refresh",
    "arena.draw",
    "arena.prompt",
    "arena.ask",
    "arena.answer_a",
    "arena.answer_b",
    "arena.vote_a",
    "arena.vote_b",
    "arena.vote_both_bad",
    "arena.auto.metric",
    "arena.auto.limit",
    "arena.auto.start",
    "arena.auto.col.score",  # a table header: gradio leaves those to the app to translate
)
# Two contestants on the embedded model, so the battle needs no other model in memory.
GREEDY = "smollm2-135m-instruct | base | greedy"
FOCUSED = "smollm2-135m-instruct | base | focused (T 0.1, top-p 0.3, no-repeat 3)"


def _open_tab(browser, url: str, locale: str):
    return open_tab(
        browser,
        url,
        locale,
        "Arena|競技場",
        lambda page: page.locator("#arena-contestants").get_by_label(GREEDY, exact=True).wait_for(),
    )


def _labels_in(page, shown: str, hidden: str) -> str:
    panel = labels_in(page, "#arena-ask", "arena.ask", LABELS, shown, hidden)
    assert "__i18n__" not in panel, "a label was left as gradio's translation placeholder"
    return panel


def test_the_tab_speaks_traditional_chinese_in_a_zh_tw_browser(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "zh-TW")
    panel = _labels_in(page, "zh-TW", "en")
    assert "參賽者" in panel and "自動評分" in panel

    # The flow works in Chinese: a battle, a vote, and who was who told in Chinese.
    contestants = page.locator("#arena-contestants")
    contestants.get_by_label(GREEDY, exact=True).check()
    contestants.get_by_label(FOCUSED, exact=True).check()
    page.locator("#arena-prompt textarea").fill("請說出一種顏色。")
    max_new = page.locator("#arena-max-new input[type='number']")
    max_new.fill("12")
    max_new.press("Tab")
    page.locator("#arena-ask").click()
    vote_a = page.locator("#arena-vote-a")
    expect(vote_a).to_be_enabled(timeout=90_000)
    status = page.locator("#arena-status")
    expect(status).to_contain_text(WORDS["zh-TW"]["arena.vote_now"])
    vote_a.click()
    expect(status).to_contain_text("你的投票")
    expect(status).to_contain_text(GREEDY)
    save_screenshot(page, "arena-zh-TW.png")
    context.close()


def test_the_tab_in_english_keeps_its_english_labels(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "en-US")
    _labels_in(page, "en", "zh-TW")
    save_screenshot(page, "arena-en.png")
    context.close()
