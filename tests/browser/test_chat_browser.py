from __future__ import annotations

import re
import time


def _assistant_text(page) -> str:
    bubbles = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']")
    if bubbles.count() == 0:
        return ""
    return bubbles.last.inner_text()


def test_chat_streams_and_stops(page):
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    # A fixed seed once the model's defaults are in: regenerate draws a new one each time (-1), and
    # a 135M model at its card's temperature does not name Paris for every seed.
    page.locator("#chat-defaults-info").get_by_text("Defaults for").wait_for()
    seed = page.locator("#chat-seed input[type='number']")
    seed.fill("1")
    seed.blur()
    box = page.locator("#chat-input textarea")
    box.fill("What is the capital of France?")
    box.press("Enter")
    page.locator("#chat-stats").get_by_text("done").wait_for(timeout=60_000)
    answer = _assistant_text(page)
    assert "Paris" in answer

    # A long answer: it streams (text grows while running), then stop ends it early.
    box.fill("Write a very long story about a dragon who learns to cook, with many chapters.")
    page.locator("#chat-send").click()
    page.locator("#chat-stats").get_by_text("generating").wait_for(timeout=30_000)
    seen = []
    deadline = time.time() + 10
    while time.time() < deadline and len(set(seen)) < 3:
        text = _assistant_text(page)
        if text and "Paris" not in text and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.2)
    assert len(seen) >= 3, f"text should stream in, saw {seen!r}"
    assert all(len(a) < len(b) for a, b in zip(seen, seen[1:])), "each update extends the text"
    page.locator("#chat-stop").click()
    page.locator("#chat-stats").get_by_text("stopped").wait_for(timeout=15_000)
    stats = page.locator("#chat-stats").inner_text()
    new_tokens = int(re.search(r"new (\d+) tokens", stats).group(1))
    assert 0 < new_tokens < 256
    assert "tokens/s" in stats

    # Clear empties the conversation.
    page.locator("#chat-clear").click()
    page.wait_for_function("document.querySelectorAll('#chatbot .message').length === 0")


def test_two_browsers_chat_at_once_and_both_stream(browser, app_server):
    """Two sessions stream their answers at the same time: neither waits for the other's answer."""
    _, url = app_server
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(2)]
    pages = [c.new_page() for c in contexts]
    try:
        for page in pages:
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
        for page, topic in zip(pages, ("a dragon who learns to cook", "a robot who learns to paint")):
            page.locator("#chat-input textarea").fill(
                f"Write a very long story about {topic}, with many chapters."
            )
            page.locator("#chat-send").click()
        for page in pages:
            page.locator("#chat-stats").get_by_text("generating").wait_for(timeout=30_000)
        # Both answers grow during the same window of time.
        grew = [set(), set()]
        deadline = time.time() + 15
        while time.time() < deadline and min(len(g) for g in grew) < 3:
            for i, page in enumerate(pages):
                grew[i].add(_assistant_text(page))
            time.sleep(0.2)
        assert min(len(g) for g in grew) >= 3, "both sessions streamed at once"
        stats = [page.locator("#chat-stats").inner_text() for page in pages]
        assert any("generating with 1 other" in s for s in stats), stats
        for page in pages:
            page.locator("#chat-stop").click()
            page.locator("#chat-stats").get_by_text("stopped").wait_for(timeout=15_000)
    finally:
        for c in contexts:
            c.close()
