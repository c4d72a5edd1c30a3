"""The page speaks the browser's language, and the switch changes it for the whole page."""

from __future__ import annotations


def _title(page) -> str:
    return page.locator("#app-title").inner_text().strip()


def test_the_page_follows_the_browser_language_and_the_switch(browser, app_server):
    _, url = app_server
    for locale, expected in (("zh-TW", "LLM 遊樂場"), ("en-US", "LLM playground")):
        context = browser.new_context(locale=locale)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#model-status")
        page.wait_for_function(f"document.querySelector('#app-title').innerText.includes({expected!r})")
        assert _title(page) == expected
        context.close()

    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#model-status")
    page.click("#lang-zh-TW")
    page.wait_for_function("document.querySelector('#app-title')?.innerText.includes('LLM 遊樂場')")
    # The choice outlives a reload, and goes back with the other link.
    page.reload()
    page.wait_for_function("document.querySelector('#app-title')?.innerText.includes('LLM 遊樂場')")
    page.click("#lang-en")
    page.wait_for_function("document.querySelector('#app-title')?.innerText.includes('LLM playground')")
    context.close()
