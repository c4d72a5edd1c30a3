"""The arena in a real browser: tick two contestants, ask, vote, see who was who, see the rating."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from playground.models import LoadOptions
from tests.tiny_models import build_causal_lm


def test_battle_vote_reveals_and_rates(page, app_server, tmp_path_factory):
    ctx, _ = app_server
    tiny = build_causal_lm(tmp_path_factory.mktemp("arena-tiny"), "llama")
    with ctx.models.use_model(str(tiny), LoadOptions(precision="fp32")) as loaded:
        tiny_key = next(i.key for i in ctx.models.resident() if i.name == loaded.name)
    embedded = "smollm2-135m-instruct | base | greedy"
    other = f"{tiny_key} | base | greedy"

    page.reload()
    expect(page.locator("#model-status")).to_contain_text(tiny_key)  # the bar lists both residents
    page.get_by_role("tab", name="Arena").click()
    contestants = page.locator("#arena-contestants")
    contestants.get_by_label(embedded, exact=True).check()
    contestants.get_by_label(other, exact=True).check()
    page.locator("#arena-prompt textarea").fill("Name a color.")
    page.locator("#arena-max-new input[type='number']").fill("12")
    page.locator("#arena-max-new input[type='number']").press("Tab")
    vote_a = page.locator("#arena-vote-a")
    expect(vote_a).to_be_disabled()
    page.locator("#arena-ask").click()
    expect(vote_a).to_be_enabled(timeout=90_000)
    assert page.locator("#arena-answer-a textarea").input_value().strip()
    assert page.locator("#arena-answer-b textarea").input_value().strip()
    status = page.locator("#arena-status")
    assert tiny_key not in status.inner_text() and "smollm2" not in status.inner_text(), (
        "anonymous until the vote"
    )

    vote_a.click()
    expect(status).to_contain_text("A was")
    expect(status).to_contain_text(embedded)
    expect(status).to_contain_text(other)
    expect(vote_a).to_be_disabled()

    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#ratings-count")).to_contain_text("1 human votes", timeout=30_000)
    table = page.locator("#ratings-human")
    expect(table).to_contain_text(embedded)
    expect(table).to_contain_text(other)
    page.locator("#ratings-heatmap .js-plotly-plot").wait_for()
    page.locator("#ratings-export-jsonl").click()
    expect(page.locator("#ratings-export")).to_contain_text(".jsonl")


def test_side_by_side_columns_pick_resident_models(page, app_server, tmp_path_factory):
    ctx, _ = app_server
    tiny = build_causal_lm(tmp_path_factory.mktemp("column-tiny"), "llama", seed=5)
    with ctx.models.use_model(str(tiny), LoadOptions(precision="fp32")) as loaded:
        tiny_key = next(i.key for i in ctx.models.resident() if i.name == loaded.name)
    bar_key = next(i.key for i in ctx.models.resident() if i.current)
    page.reload()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Name a fruit.")
    page.locator("#compare-input textarea").fill("")
    max_new = page.locator("#compare-max-new input")
    max_new.fill("10")
    max_new.press("Tab")
    # Column 2: the bar's model by name, greedy like column 1; column 3: the tiny model.
    for column, key in ((1, bar_key), (2, tiny_key)):
        page.locator(f"#compare-model-{column} input").click()
        page.get_by_role("option", name=key, exact=False).first.click()
    page.locator("#compare-preset-1 input").click()
    page.get_by_role("option", name="greedy", exact=True).click()
    expect(page.locator("#compare-summary-1")).to_contain_text("greedy")
    page.locator("#compare-run").click()
    outputs = [page.locator(f"#compare-out-{i} textarea") for i in range(3)]
    for out in outputs:
        expect(out).not_to_have_value("", timeout=90_000)
    expect(page.locator("#compare-stats-2")).to_contain_text(tiny_key)
    expect(page.locator("#compare-stats-1")).to_contain_text(bar_key)
    # Same model, same settings, same seed: the same answer, whichever way the column named it.
    assert outputs[0].input_value() == outputs[1].input_value()
    assert outputs[2].input_value() != outputs[0].input_value()


def _resident_tiny(ctx, tmp_path_factory, name: str, seed: int = 0) -> str:
    tiny = build_causal_lm(tmp_path_factory.mktemp(name), "llama", seed=seed)
    with ctx.models.use_model(str(tiny), LoadOptions(precision="fp32")) as loaded:
        return next(i.key for i in ctx.models.resident() if i.name == loaded.name)


def test_score_automatically_fills_the_metric_ranking(page, app_server, tmp_path_factory):
    ctx, _ = app_server
    tiny_key = _resident_tiny(ctx, tmp_path_factory, "auto-tiny", seed=3)
    embedded = "smollm2-135m-instruct | base | greedy"
    other = f"{tiny_key} | base | greedy"
    page.reload()
    page.get_by_role("tab", name="Arena").click()
    contestants = page.locator("#arena-contestants")
    contestants.get_by_label(embedded, exact=True).check()
    contestants.get_by_label(other, exact=True).check()
    max_new = page.locator("#arena-max-new input[type='number']")
    max_new.fill("8")
    max_new.press("Tab")
    limit = page.locator("#arena-auto-limit input")
    limit.fill("2")
    limit.press("Tab")
    # An upload through the test-set picker, with reference answers.
    rows = [
        {"id": "1", "instruction": "What colour is the sky?", "output": "The sky is blue."},
        {"id": "2", "instruction": "Name a fruit.", "output": "An apple is a fruit."},
        {"id": "3", "instruction": "Say hi.", "output": "Hi!"},
    ]
    upload = tmp_path_factory.mktemp("auto-upload") / "colours.json"
    upload.write_text(json.dumps(rows), encoding="utf-8")
    page.locator("#arena-test-set-upload input[type='file']").set_input_files(str(upload))
    expect(page.locator("#arena-test-set-upload")).to_contain_text("colours.json")
    page.locator("#arena-draw").click()  # a prompt drawn from the upload
    prompt = page.locator("#arena-prompt textarea")
    expect(prompt).not_to_have_value("", timeout=30_000)
    assert prompt.input_value() in {r["instruction"] for r in rows}
    status = page.locator("#arena-auto-status")
    page.locator("#arena-auto-start").click()
    expect(status).to_contain_text(
        "2 new metric votes from 2 examples x 1 pairings of colours.json", timeout=120_000
    )
    scores = page.locator("#arena-auto-scores")
    expect(scores).to_contain_text(embedded)
    expect(scores).to_contain_text(other)

    page.locator("#arena-auto-start").click()  # the same pairing again: nothing twice
    expect(status).to_contain_text("0 new metric votes", timeout=120_000)
    expect(status).to_contain_text("2 were stored by an earlier run")

    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#ratings-count")).to_contain_text("2 metric votes", timeout=30_000)
    metric_table = page.locator("#ratings-metric")
    expect(metric_table).to_contain_text(embedded)
    expect(metric_table).to_contain_text(other)


def test_stop_ends_both_answers_and_allows_no_vote(page, app_server, tmp_path_factory):
    ctx, _ = app_server
    tiny_key = _resident_tiny(ctx, tmp_path_factory, "stop-tiny", seed=4)
    page.reload()
    page.get_by_role("tab", name="Arena").click()
    contestants = page.locator("#arena-contestants")
    contestants.get_by_label("smollm2-135m-instruct | base | greedy", exact=True).check()
    contestants.get_by_label(f"{tiny_key} | base | greedy", exact=True).check()
    page.locator("#arena-prompt textarea").fill("Tell a long story about the sea.")
    # The tiny model's context is 256 tokens; the embedded model is still answering at Stop.
    max_new = page.locator("#arena-max-new input[type='number']")
    max_new.fill("200")
    max_new.press("Tab")
    page.locator("#arena-ask").click()
    status = page.locator("#arena-status")
    expect(status).to_contain_text("coming", timeout=60_000)
    page.locator("#arena-stop").click()
    expect(status).to_contain_text("Stopped", timeout=60_000)
    expect(page.locator("#arena-vote-a")).to_be_disabled()
