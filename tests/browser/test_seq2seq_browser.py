"""An encoder-decoder model (tiny local T5) picked in the model bar and used in the Prompt lab."""

from __future__ import annotations

import re

from playground.generation import GREEDY, generate_text
from playground.models import EMBEDDED_KEY
from tests.helpers import pick


def test_t5_three_shot_prompt_gets_an_answer(page, app_server, tiny_t5):
    ctx, _ = app_server
    try:
        box = page.locator("#model-name input")
        box.fill(str(tiny_t5))
        box.press("Enter")
        page.locator("#model-load").click()
        page.locator("#model-status").get_by_text(f"Loaded: {tiny_t5.name}").wait_for(timeout=60_000)
        assert ctx.models.current.is_seq2seq

        page.get_by_role("tab", name="Prompt lab").click()
        pick(page, "#lab-test-example", "sports_plausibility_test.json")
        pick(page, "#lab-template", "custom (below)")
        page.locator("#lab-custom textarea").fill("Q: {instruction}{input}\nA:")
        pick(page, "#lab-format-preset", "Q: / A:")
        k = page.locator("#lab-k input[type='number']")
        k.fill("3")
        k.blur()
        page.wait_for_function(
            "() => document.querySelector('#lab-preview textarea').value.split('Q: ').length === 5"
        )
        # The preview (and its model line) follows the model loaded in the bar.
        page.locator("#lab-model").get_by_text(tiny_t5.name).wait_for()
        new_tokens = page.locator("#lab-max-new input[type='number']")
        new_tokens.fill("8")
        new_tokens.blur()
        page.locator("#lab-try").click()
        page.locator("#lab-try-stats").get_by_text("done").wait_for(timeout=60_000)
        answer = page.locator("#lab-answer textarea").input_value()
        stats = page.locator("#lab-try-stats").inner_text()
        assert re.search(r"new [1-8] tokens", stats), stats
        # What the page shows is the decoder's greedy output for exactly the previewed prompt
        # (random tiny weights: the text itself is gibberish, possibly empty).
        prompt = page.locator("#lab-preview textarea").input_value()
        expected = generate_text(ctx.models.current, prompt, GREEDY.with_(max_new_tokens=8)).text
        assert answer.strip() == expected.strip()
        assert "Q: " not in answer
    finally:
        ctx.models.load(EMBEDDED_KEY)
