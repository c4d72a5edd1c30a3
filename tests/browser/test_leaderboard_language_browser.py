"""The Leaderboard tab in Traditional Chinese (a zh-TW browser) and in English, with screenshots."""

from __future__ import annotations

from playground.ui.i18n import WORDS
from tests.browser.language import labels_in, open_tab, save_screenshot

# Labels that stand on the tab whatever its data; each must show in the page's language only.
LABELS = (
    "leaderboard.start",
    "leaderboard.limit",
    "leaderboard.metrics",
    "leaderboard.table",
    "leaderboard.runs",
    "leaderboard.test_set.example",
    "leaderboard.examples",
    "leaderboard.delete",
)


def _open_tab(browser, url: str, locale: str):
    return open_tab(
        browser,
        url,
        locale,
        "Leaderboard|排行榜",
        lambda page: page.locator("#eval-data-info").get_by_text("rows").wait_for(),
    )


def _labels_in(page, shown: str, hidden: str) -> str:
    return labels_in(page, "#eval-start", "leaderboard.start", LABELS, shown, hidden)


def test_the_tab_speaks_traditional_chinese_in_a_zh_tw_browser(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "zh-TW")
    panel = _labels_in(page, "zh-TW", "en")
    assert "排行榜" in panel and "困惑度" in panel

    # The flow works in Chinese: an evaluation ends with a Chinese status line and a new run.
    page.get_by_label(WORDS["zh-TW"]["leaderboard.limit"]).fill("3")
    page.locator("#eval-start").click()
    page.locator("#eval-status").get_by_text("完成").wait_for(timeout=120_000)
    assert "筆範例" in page.locator("#eval-status").inner_text()
    finished = page.locator("#lb-runs").get_by_text("finished").filter(visible=True).first
    finished.wait_for()
    finished.click()
    page.locator("#lb-run-title").get_by_text("執行 #").wait_for()
    page.locator("#nll-heatmap").wait_for()
    assert "顏色越深" in page.locator("#lb-heatmap").inner_text()
    save_screenshot(page, "leaderboard-zh-TW.png")
    context.close()


def test_the_tab_in_english_keeps_its_english_labels(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "en-US")
    _labels_in(page, "en", "zh-TW")
    page.locator("#lb-runs").wait_for()
    save_screenshot(page, "leaderboard-en.png")
    context.close()
