"""Issue 17 (5): homework-template few-shot prompts keep the system text first, and Try stops at "USER:"."""

from __future__ import annotations

import re

from playground.prompts.templates import TAIWAN_LLAMA_SYSTEM, TEMPLATES
from tests.helpers import pick


def test_homework_template_system_first_and_try_ends_at_next_user_turn(page):
    page.get_by_role("tab", name="Prompt lab").click()
    page.locator("#lab-model").get_by_text("smollm2-135m-instruct").wait_for()
    page.locator("#lab-preview-info").get_by_text("tokens").wait_for()
    pick(page, "#lab-template", f"taiwan-llama: {TEMPLATES['taiwan-llama'].notes}")
    k = page.locator("#lab-k input[type='number']")
    k.fill("2")
    k.blur()
    page.wait_for_function(
        "() => document.querySelector('#lab-preview textarea').value.split('USER: ').length === 4"
    )
    text = page.locator("#lab-preview textarea").input_value()
    assert text.startswith(TAIWAN_LLAMA_SYSTEM + "USER: "), text[:200]
    assert text.count(TAIWAN_LLAMA_SYSTEM) == 1 and text.endswith(" ASSISTANT:")

    new_tokens = page.locator("#lab-max-new input[type='number']")
    new_tokens.fill("200")
    new_tokens.blur()
    page.locator("#lab-preview-info").get_by_text("(+ 200 new)").wait_for()
    page.locator("#lab-try").click()
    page.locator("#lab-try-stats").get_by_text("done").wait_for(timeout=120_000)
    stats = page.locator("#lab-try-stats").inner_text()
    assert "ends at 'USER:'" in stats
    answer = page.locator("#lab-answer textarea").input_value()
    assert answer.strip() and "USER:" not in answer
    # The small model writes the next "USER:" turn well before 200 tokens; Try ended there.
    assert int(re.search(r"new (\d+) tokens", stats).group(1)) < 200
