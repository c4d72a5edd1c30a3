from __future__ import annotations

from pathlib import Path

from playground.data import load_dataset

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "classical_chinese_train.json"


def _pick(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


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
    _pick(page, "#lab-template", "custom (below)")
    page.locator("#lab-custom textarea").fill("Q: {instruction}{input}\nA:")
    _pick(page, "#lab-format-preset", "Q: / A:")
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
