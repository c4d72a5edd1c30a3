"""Issue 17 (2, 3, 6): lists stay fresh in every tab, the Tang homework is scored from the page,
and base vs adapters prompts each adapter in its own training template."""

from __future__ import annotations

import time

import pytest

from playground.leaderboard import ExampleResult, RunSpec
from tests.helpers import pick, wait_for


def test_things_made_after_page_load_appear_in_every_tab(page, app_server, make_adapter):
    ctx, _ = app_server
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    # Made after the page was built and loaded: an adapter and a finished leaderboard run.
    make_adapter("fresh-lora")
    name = f"fresh-data-{int(time.time())}.json"
    run = ctx.leaderboard.start_run(RunSpec(model="smollm2-135m-instruct", task="qa", dataset_name=name))
    ctx.leaderboard.finish_run(run, {"mean_perplexity": 3.0}, [ExampleResult(0, "p", "r", "x")])

    page.get_by_role("tab", name="Training").click()
    page.locator("#train-adapters").get_by_text("fresh-lora").filter(visible=True).first.wait_for(
        timeout=15_000
    )
    page.get_by_label("Continue from adapter").click()
    page.get_by_role("option", name="fresh-lora", exact=True).wait_for()
    page.keyboard.press("Escape")

    page.get_by_role("tab", name="Leaderboard").click()
    # The new data set is among the choices (a pick made earlier in the page stays as it was).
    pick(page, "#lb-dataset", name)
    wait_for(lambda: page.locator("#lb-dataset input").input_value() == name, 15)
    page.locator("#lb-runs").get_by_text("finished").filter(visible=True).first.wait_for()
    pick(page, "#eval-adapter", "fresh-lora")  # the evaluate form lists it too

    page.get_by_role("tab", name="Side by side").click()
    page.get_by_role("tab", name="Base model vs adapters").click()
    page.locator("#adapter-choices").get_by_text("fresh-lora").wait_for(timeout=15_000)


def test_tang_homework_scored_from_the_training_tab_and_the_leaderboard(
    page, app_server, make_adapter, shared_dir
):
    ctx, _ = app_server
    tang = shared_dir / "datasets" / "tang-poems"
    if not (tang / "Tang_testing_data.json").is_file():
        pytest.skip("the Tang course data is not present")
    make_adapter("tang-lora", template="alpaca")
    before = len(ctx.leaderboard.runs())

    page.get_by_role("tab", name="Training").click()
    page.locator("#train-adapters").get_by_text("tang-lora").filter(visible=True).first.click()
    page.locator("#train-eval-test-upload input[type='file']").set_input_files(
        str(tang / "Tang_testing_data.json")
    )
    page.locator("#train-eval-refs input[type='file']").set_input_files(str(tang / "Tang_testing_gt.txt"))
    page.get_by_label("Limit (first N examples, 0 = all)").filter(visible=True).fill("2")
    page.locator("#train-evaluate").click()
    status = page.locator("#train-evaluate-status")
    status.get_by_text("adapter tang-lora: mean").wait_for(timeout=180_000)
    assert "Tang_testing_data.json" in status.inner_text() and "2 examples" in status.inner_text()
    new = ctx.leaderboard.runs()[: len(ctx.leaderboard.runs()) - before]
    assert sorted(r.adapter or "" for r in new) == ["", "tang-lora"]
    assert all(r.dataset_name == "Tang_testing_data.json" for r in new)

    # The leaderboard form: pick the adapter (its template comes with it), the file and its ground truth.
    page.get_by_role("tab", name="Leaderboard").click()
    pick(page, "#eval-adapter", "tang-lora")
    wait_for(lambda: page.locator("#eval-template input").input_value() == "alpaca", 10)
    page.locator("#eval-data-upload input[type='file']").set_input_files(str(tang / "Tang_testing_data.json"))
    page.locator("#eval-refs input[type='file']").set_input_files(str(tang / "Tang_testing_gt.txt"))
    page.locator("#eval-data-info").get_by_text("rows").wait_for()
    page.get_by_label("Limit (first N examples, 0 = all)").filter(visible=True).fill("2")
    page.locator("#eval-start").click()
    page.locator("#eval-status").get_by_text("Done").wait_for(timeout=180_000)
    latest = ctx.leaderboard.runs()[0]
    assert latest.adapter == "tang-lora" and latest.dataset_name == "Tang_testing_data.json"
    assert "### Instruction:" in latest.template_text


def test_base_vs_adapter_uses_its_training_template_and_keeps_the_column_on_screen(page, make_adapter):
    make_adapter("alpaca-lora", template="alpaca")
    page.get_by_role("tab", name="Side by side").click()
    page.get_by_role("tab", name="Base model vs adapters").click()
    page.locator("#adapter-choices").get_by_text("alpaca-lora").click()
    long_prompt = "Explain, in careful detail and with examples, " + "why the sky looks blue " * 12
    page.locator("#adapter-prompts textarea").fill(long_prompt + "\nName a fruit.")
    page.locator("#adapter-max-new input").fill("6")
    page.locator("#adapter-run").click()
    status = page.locator("#adapter-status")
    status.get_by_text("2 prompts").wait_for(timeout=120_000)
    assert "templates: base model alpaca, alpaca-lora alpaca" in status.inner_text()
    header = page.locator("#adapter-table th").filter(has_text="alpaca-lora").first
    header.wait_for()
    box = header.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1400, box  # inside the 1400 px viewport
