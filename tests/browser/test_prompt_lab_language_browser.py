"""The Prompt lab tab in Traditional Chinese (a zh-TW browser) and in English, with screenshots."""

from __future__ import annotations

from playground.ui.i18n import WORDS
from tests.browser.language import labels_in, open_tab, save_screenshot

# Labels that stand on the tab whatever its data; each must show in the page's language only.
LABELS = (
    "prompt_lab.data",
    "prompt_lab.test_set.example",
    "prompt_lab.references",
    "prompt_lab.train_set.note",
    "prompt_lab.template",
    "prompt_lab.system",
    "prompt_lab.suffix",
    "prompt_lab.k",
    "prompt_lab.seed",
    "prompt_lab.selection",
    "prompt_lab.selection.similar",
    "prompt_lab.selection.manual",
    "prompt_lab.format_preset",
    "prompt_lab.separator",
    "prompt_lab.query",
    "prompt_lab.preview",
    "prompt_lab.max_new",
    "prompt_lab.try",
    "prompt_lab.stop",
    "prompt_lab.answer",
    "prompt_lab.recipes",
    "prompt_lab.evaluate_section",
    "prompt_lab.metrics",
    "prompt_lab.limit",
    "prompt_lab.evaluate",
    "prompt_lab.cancel",
    "prompt_lab.chart_metric",
)


def _open_tab(browser, url: str, locale: str):
    return open_tab(
        browser,
        url,
        locale,
        "Prompt lab|提示詞實驗室",
        lambda page: page.locator("#lab-model").get_by_text("smollm2-135m-instruct").wait_for(),
    )


def _labels_in(page, shown: str, hidden: str) -> str:
    return labels_in(page, "#lab-try", "prompt_lab.try", LABELS, shown, hidden)


def test_the_tab_speaks_traditional_chinese_in_a_zh_tw_browser(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "zh-TW")
    _labels_in(page, "zh-TW", "en")
    # Lines the server writes come in the page's language too.
    page.locator("#lab-preview-info").get_by_text("個 token").first.wait_for()
    assert "個範例" in page.locator("#lab-preview-info").inner_text()
    assert "題目編號" in page.locator("#lab-query-info").inner_text()
    assert "上下文長度" in page.locator("#lab-model").inner_text()
    # Template syntax in a label shows as typed, braces and all.
    label = page.locator("#lab-example-format").inner_text()
    assert "範例格式：{index} {instruction} {input} {output}" in label, label

    # An error in Chinese: no metric ticked.
    page.get_by_label(WORDS["zh-TW"]["prompt_lab.limit"]).fill("2")
    page.locator("#lab-metrics").get_by_text("perplexity").click()
    page.locator("#lab-eval").click()
    page.get_by_text(WORDS["zh-TW"]["prompt_lab.eval.no_metric"]).first.wait_for()

    # The flow works in Chinese: zero-shot and k=1 on two questions, a Chinese status line.
    page.locator("#lab-metrics").get_by_text("perplexity").click()
    page.locator("#lab-ks textarea, #lab-ks input").first.fill("1")
    page.locator("#lab-eval").click()
    page.locator("#lab-eval-status").get_by_text("完成").wait_for(timeout=120_000)
    assert "結果已存到排行榜" in page.locator("#lab-eval-status").inner_text()
    page.locator("#lab-chart .js-plotly-plot").first.wait_for()
    assert "越低越好" in page.locator("#lab-chart").inner_text()
    save_screenshot(page, "prompt-lab-zh-TW.png")
    context.close()


def test_the_tab_in_english_keeps_its_english_labels(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "en-US")
    _labels_in(page, "en", "zh-TW")
    page.locator("#lab-preview-info").get_by_text("tokens").first.wait_for()
    page.locator("#lab-chart .js-plotly-plot").first.wait_for()
    assert "Run an evaluation" in page.locator("#lab-chart").inner_text()
    label = page.locator("#lab-example-format").inner_text()
    assert "Example format: {index} {instruction} {input} {output}" in label, label
    save_screenshot(page, "prompt-lab-en.png")
    context.close()
