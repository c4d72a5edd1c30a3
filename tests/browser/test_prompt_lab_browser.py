from __future__ import annotations

from pathlib import Path

from playground.data import load_dataset
from tests.helpers import pick

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "classical_chinese_train.json"


def _count_in_preview(page, text: str) -> int:
    return page.locator("#lab-preview textarea").input_value().count(text)


def test_build_two_shot_prompt_preview_and_evaluate(page, app_server):
    ctx, _ = app_server
    before = max((r.id for r in ctx.leaderboard.runs()), default=0)
    train = load_dataset(TRAIN).examples
    page.get_by_role("tab", name="Prompt lab").click()
    page.locator("#lab-model").get_by_text("smollm2-135m-instruct").wait_for()
    page.locator("#lab-preview-info").get_by_text("tokens").wait_for()

    # A raw Q:/A: prompt with 2 examples (first k of the matching training file).
    pick(page, "#lab-template", "custom (below)")
    page.locator("#lab-custom textarea").fill("Q: {instruction}{input}\nA:")
    pick(page, "#lab-format-preset", "Q: / A:")
    k = page.locator("#lab-k input[type='number']")
    k.fill("0")
    k.blur()
    page.wait_for_function(
        "() => { const t = document.querySelector('#lab-preview textarea').value;"
        " return t.startsWith('Q: ') && t.split('Q: ').length === 2; }"
    )
    k.fill("2")
    k.blur()
    page.wait_for_function(
        "() => document.querySelector('#lab-preview textarea').value.split('Q: ').length === 4"
    )
    text = page.locator("#lab-preview textarea").input_value()
    assert text.startswith(f"Q: {train[0].instruction}\nA: {train[0].output}\nQ: {train[1].instruction}\n")
    assert text.endswith("\nA:") and _count_in_preview(page, "\nA: ") == 2
    info = page.locator("#lab-preview-info").inner_text()
    assert "tokens" in info and train[0].id in info and train[1].id in info

    # Try it on the chosen question: the answer streams in and the stats line ends "done".
    new_tokens = page.locator("#lab-max-new input[type='number']")
    new_tokens.fill("12")
    new_tokens.blur()
    page.locator("#lab-preview-info").get_by_text("(+ 12 new)").wait_for()
    page.locator("#lab-try").click()
    page.locator("#lab-try-stats").get_by_text("done").wait_for(timeout=60_000)
    assert page.locator("#lab-answer textarea").input_value().strip()
    assert "prompt " in page.locator("#lab-try-stats").inner_text()

    # Evaluate zero-shot and k=2 on 3 questions, perplexity only.
    ks = page.locator("#lab-ks textarea, #lab-ks input").first
    ks.fill("2")
    page.get_by_label("Limit (first N questions, 0 = all)").fill("3")
    page.locator("#lab-eval").click()
    page.locator("#lab-eval-status").get_by_text("Done").wait_for(timeout=120_000)

    summary = page.locator("#lab-summary")
    summary.get_by_text("mean_perplexity").filter(visible=True).first.wait_for()
    page.locator("#lab-chart .js-plotly-plot").first.wait_for()
    assert page.locator("#lab-chart g.point, #lab-chart .scatterlayer path").count() >= 1
    runs = [r for r in reversed(ctx.leaderboard.runs()) if r.id > before]
    assert [(r.shots, r.status, r.n_examples) for r in runs] == [(0, "finished", 3), (2, "finished", 3)]
    assert "Q: " + train[0].instruction in ctx.leaderboard.examples(runs[1].id)[0].prompt


def test_hand_picked_examples_recipe_and_data_switch(page):
    page.get_by_role("tab", name="Prompt lab").click()
    info = page.locator("#lab-preview-info")
    info.get_by_text("tokens").wait_for()

    # Pick two training rows by clicking them, in that order.
    page.get_by_label("picked by hand").check()
    table = page.locator("#lab-pool-table")
    table.get_by_text("cc-train-005").filter(visible=True).first.click()
    table.get_by_text("cc-train-003").filter(visible=True).first.click()
    info.get_by_text("2 example(s): cc-train-005, cc-train-003").wait_for()
    page.get_by_role("button", name="Chain of thought").click()
    page.locator("#lab-cot input").check()
    page.wait_for_function(
        "() => document.querySelector('#lab-preview textarea').value.endsWith(\"Let's think step by step.\")"
    )

    # Save as a recipe, change the builder, load the recipe back.
    page.get_by_role("button", name="Recipes").click()
    page.locator("#lab-recipe-name textarea, #lab-recipe-name input").first.fill("hand picked cot")
    page.locator("#lab-recipe-save").click()
    page.locator("#lab-recipe-status").get_by_text("Saved recipe").wait_for()
    page.get_by_label("first k").check()
    page.locator("#lab-cot input").uncheck()
    info.get_by_text("2 example(s): cc-train-001, cc-train-002").wait_for()
    page.locator("#lab-recipe-load").click()
    page.locator("#lab-recipe-status").get_by_text("Loaded recipe").wait_for()
    info.get_by_text("2 example(s): cc-train-005, cc-train-003").wait_for()
    assert page.locator("#lab-preview textarea").input_value().endswith("Let's think step by step.")

    # Another test set brings its own training file; the hand-picked ids are not in it.
    pick(page, "#lab-test-example", "sports_plausibility_test.json")
    page.wait_for_function(
        "() => document.querySelector('#lab-train-example input').value === 'sports_plausibility_train.json'"
    )
    info.get_by_text("No example with id").wait_for()
    page.get_by_label("first k").check()
    page.wait_for_function(
        "() => document.querySelector('#lab-preview textarea').value.includes('plausible')"
    )
    page.locator("#lab-query-info").get_by_text("Question id 1").wait_for()
