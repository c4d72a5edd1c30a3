"""The Side by side tab in Traditional Chinese (a zh-TW browser) and in English, with screenshots."""

from __future__ import annotations

from playwright.sync_api import expect

from playground.ui.i18n import WORDS
from tests.browser.language import open_tab, save_screenshot

# Words that stand on each sub-tab whatever its data; each must show in the page's language only.
DECODING_LABELS = (
    "compare.template",
    "compare.system",
    "compare.tab.decoding",
    "compare.tab.adapters",
    "compare.instruction",
    "compare.input",
    "compare.columns",
    "compare.samples",
    "compare.max_new_all",
    "compare.seed_shared",
    "compare.run",
    "compare.stop",
    "compare.column.1",
    "compare.column.3",
    "compare.preset",
    "compare.settings",
    "compare.output",
    "compare.prompt_sent",
    "compare.sweep",
)
ADAPTER_LABELS = (
    "compare.adapters.choices",
    "compare.adapters.choices_info",
    "compare.adapters.include_base",
    "compare.adapters.refresh",
    "compare.adapters.own_template",
    "compare.adapters.source",
    "compare.adapters.source.paste",
    "compare.adapters.prompts",
    "compare.adapters.decoding",
    "compare.adapters.max_new",
    "compare.adapters.seed",
    "compare.adapters.run",
    "compare.adapters.export_csv",
    "compare.adapters.exported",
)


def _open_tab(browser, url: str, locale: str):
    return open_tab(
        browser,
        url,
        locale,
        "Side by side|並排",
        lambda page: page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for(),
    )


def _check_words(page, anchor: str, keys: tuple[str, ...], shown: str, hidden: str) -> str:
    """Waits for the sub-tab's words in `shown`, checks none is left in `hidden`; the sub-tab's text."""
    run = WORDS[shown][keys[-1]]
    expect(
        page.locator("#compare-template").locator("xpath=ancestor::*[@role='tabpanel'][1]")
    ).to_contain_text(run)
    panel = page.locator(anchor).evaluate(
        "e => e.closest('[role=tabpanel]').parentElement.closest('[role=tabpanel]').innerText"
    )
    for key in keys:
        words, other = (WORDS[lang][key].lstrip("# ") for lang in (shown, hidden))
        assert words in panel, key
        if other != words:
            assert other not in panel, key
    return panel


def _run_three_columns(page, instruction: str | None = None) -> None:
    if instruction is not None:
        page.locator("#compare-instruction textarea").fill(instruction)
    max_new = page.locator("#compare-max-new input")
    max_new.fill("8")
    max_new.press("Tab")
    page.locator("#compare-run").click()
    for i in range(3):
        expect(page.locator(f"#compare-out-{i} textarea")).not_to_have_value("", timeout=60_000)


def test_the_tab_speaks_traditional_chinese_in_a_zh_tw_browser(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "zh-TW")
    _check_words(page, "#compare-run", DECODING_LABELS, "zh-TW", "en")
    # A dropdown shows its pick in its input box, outside the page's text.
    expect(page.locator("#compare-template input")).to_have_value(
        WORDS["zh-TW"]["compare.template.model_default"]
    )
    expect(page.locator("#compare-preset-1 input")).to_have_value(WORDS["zh-TW"]["compare.preset.focused"])
    # The lines the server writes come in Chinese too: the columns' summaries, then their stats.
    expect(page.locator("#compare-summary-1")).to_contain_text("溫度 0.1、top-p 0.3")
    expect(page.locator("#compare-summary-0")).to_contain_text("最多 64 個新 token")
    _run_three_columns(page)  # on the Chinese instruction the tab starts with
    stats = page.locator("#compare-stats-0")
    expect(stats).to_contain_text("貪婪解碼")
    assert "新 token 數" in stats.inner_text() and "tokens/s" not in stats.inner_text()
    expect(page.locator("#compare-stats-0")).to_contain_text("3 欄共用一次 generate 呼叫")
    save_screenshot(page, "side-by-side-zh-TW.png")

    page.get_by_role("tab", name=WORDS["zh-TW"]["compare.tab.adapters"]).click()
    _check_words(page, "#adapter-run", ADAPTER_LABELS, "zh-TW", "en")
    page.locator("#adapter-prompts textarea").fill("What is 2 + 2?")
    page.locator("#adapter-max-new input").fill("4")
    page.locator("#adapter-run").click()
    expect(page.locator("#adapter-status")).to_contain_text("1 個提示詞 · 貪婪解碼", timeout=60_000)
    expect(page.locator("#adapter-table")).to_contain_text("基礎模型")
    # The custom template's label keeps its braces (the placeholders a template may use).
    page.locator("#compare-template input").click()
    page.get_by_role("option", name=WORDS["zh-TW"]["compare.template.custom"]).click()
    expect(page.get_by_text(WORDS["zh-TW"]["compare.custom"])).to_be_visible()
    context.close()


def test_the_tab_in_english_keeps_its_english_words(browser, app_server):
    _, url = app_server
    context, page = _open_tab(browser, url, "en-US")
    _check_words(page, "#compare-run", DECODING_LABELS, "en", "zh-TW")
    _run_three_columns(page, "Name a color.")
    expect(page.locator("#compare-stats-0")).to_contain_text("tokens/s")
    save_screenshot(page, "side-by-side-en.png")
    page.get_by_role("tab", name="Base model vs adapters").click()
    _check_words(page, "#adapter-run", ADAPTER_LABELS, "en", "zh-TW")
    context.close()
