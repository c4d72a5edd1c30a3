"""The chat flow (send, answer, regenerate) in each language of the page, with a screenshot of each.

In Traditional Chinese every word of the Chat tab, the model bar and the tab labels is Chinese:
none of their English labels is left on the page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import wait_for

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BOT = "#chatbot [data-testid='bot']"

# What each language shows: the buttons by element id, labels anywhere, and the server's words.
WORDS = {
    "en-US": {
        "buttons": {
            "chat-send": "Send",
            "chat-stop": "Stop",
            "chat-regenerate": "Regenerate",
            "chat-continue": "Continue",
            "chat-clear": "New chat",
            "chat-copy-md": "Copy as Markdown",
            "chat-model-defaults": "Model defaults",
        },
        "labels": ["System prompt", "Prompt template", "Temperature (0 = greedy)", "Max new tokens"],
        "adapter": "(none)",
        "template": "chat: The model's own chat template",
        "defaults": "Defaults for",
        "system_placeholder": "Empty: the model's own default system prompt",
        "done": "· done ·",
        "seed": r"seed (\d+)",
        "screenshot": "chat-en.png",
    },
    "zh-TW": {
        "buttons": {
            "chat-send": "送出",
            "chat-stop": "停止",
            "chat-regenerate": "重新產生",
            "chat-continue": "繼續",
            "chat-clear": "新對話",
            "chat-copy-md": "複製為 Markdown",
            "chat-model-defaults": "模型預設值",
        },
        "labels": ["系統提示詞", "提示詞範本", "溫度（0 = 貪婪解碼）", "最大新 token 數"],
        "adapter": "（無）",
        "template": "chat：模型自己的對話範本",
        "defaults": "的預設值",
        "system_placeholder": "留空：使用模型內建的預設系統提示詞",
        "done": "· 完成 ·",
        "seed": r"隨機種子 (\d+)",
        "screenshot": "chat-zh-TW.png",
    },
}

# Every English word of the Chat tab, the model bar and the page frame that a visitor sees.
ENGLISH = [
    *WORDS["en-US"]["buttons"].values(),
    *WORDS["en-US"]["labels"],
    "Chat",
    "Prompt lab",
    "Side by side",
    "Training",
    "Leaderboard",
    "Decoding",
    "Top-k (0 = off)",
    "Min-p (0 = off)",
    "Typical-p (1 = off)",
    "Drops tokens",
    "Keeps the tokens",
    "Repetition penalty",
    "Seed (",
    "Extra stop strings",
    "next-turn text",
    "Last prompt sent",
    "Your earlier chats",
    "Adapter for your chat",
    "Refresh adapters",
    "Loaded:",
    "parameters",
    "loaded in",
    "Single-user playground",
    "Type a message",
    "Defaults for",
    "prompt ",
    "tokens/s",
    "done",
    "seed ",
]


def _visible_text(page) -> str:
    """The page's visible words, placeholders included, but not the conversation (the model's
    answers are English)."""
    placeholders = page.eval_on_selector_all(
        "textarea, input", "els => els.map(e => e.placeholder || '').join('\\n')"
    )
    shown = page.locator("body").inner_text()
    for message in page.locator("#chatbot .message").all_inner_texts():
        shown = shown.replace(message, "")
    return shown + "\n" + placeholders


@pytest.mark.parametrize("locale", ["en-US", "zh-TW"])
def test_chat_flow_in_each_language(browser, app_server, locale):
    _, url = app_server
    words = WORDS[locale]
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(url)
        page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
        page.locator("#chat-defaults-info").get_by_text(words["defaults"]).wait_for()
        for elem_id, label in words["buttons"].items():
            assert page.locator(f"#{elem_id}").inner_text().strip() == label
        for label in words["labels"]:
            page.get_by_text(label, exact=True).first.wait_for()
        assert page.locator("#chat-adapter input").input_value() == words["adapter"]
        assert page.locator("#chat-template input").input_value().startswith(words["template"])

        # Words the server fills in come in the page's language too.
        placeholder = page.locator("#chat-system textarea").get_attribute("placeholder")
        assert placeholder.startswith(words["system_placeholder"])

        box = page.locator("#chat-max-new input[type='number']")
        box.fill("12")
        box.blur()
        page.locator("#chat-input textarea").fill("What is the capital of France?")
        page.locator("#chat-send").click()
        stats = page.locator("#chat-stats")
        first = wait_for(lambda: words["done"] in stats.inner_text() and stats.inner_text(), 120)
        first_seed = re.search(words["seed"], first).group(1)
        assert page.locator(BOT).count() == 1 and page.locator(BOT).last.inner_text().strip()

        page.locator("#chat-regenerate").click()
        wait_for(lambda: words["done"] in stats.inner_text() and first_seed not in stats.inner_text(), 120)
        assert page.locator(BOT).count() == 1 and page.locator(BOT).last.inner_text().strip()

        if locale == "zh-TW":
            shown = _visible_text(page)
            left = [word for word in ENGLISH if re.search(rf"(?<![\w-]){re.escape(word)}", shown)]
            assert not left, f"English left on the zh-TW page: {left}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SCREENSHOTS / words["screenshot"]))
    finally:
        context.close()
