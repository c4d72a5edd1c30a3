"""Issue 17 (7, 8, 9): what a student on a CPU sees, upload zones, tables, exports, closing a tab."""

from __future__ import annotations

from pathlib import Path

from playground.leaderboard import ExampleResult, RunSpec
from tests.helpers import pick, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_cpu_sees_only_cpu_settings_in_plain_words(page):
    page.get_by_role("tab", name="Training").click()
    page.locator("#train-preview").click()
    page.locator("#masked-example .masked-token").first.wait_for(timeout=120_000)
    body = page.locator("body").inner_text()
    for jargon in ("label -100", "torch.compile", "Activation memory", "Fused layers"):
        assert jargon not in body, jargon
    assert not page.locator("#train-gpu-speed").is_visible()
    page.locator("#train-preset input").click()
    assert page.get_by_role("option", name="7B QLoRA (homework)").count() == 0
    page.keyboard.press("Escape")
    loss = page.locator("#train-loss-on input")
    assert loss.input_value() == "answer only"
    box = loss.bounding_box()
    text_width = page.evaluate(
        "(el) => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = getComputedStyle(el).font; return c.measureText(el.value).width; }",
        loss.element_handle(),
    )
    assert text_width <= box["width"], "the Loss on choice is shown whole"
    page.get_by_role("tab", name="Leaderboard").click()
    info = page.locator("#eval-data-info")
    info.get_by_text("rows").wait_for()
    assert "shape" not in info.inner_text() and "columns" in info.inner_text()


def test_upload_zone_fits_and_an_upload_replaces_the_demo_choice(page):
    page.get_by_role("tab", name="Leaderboard").click()
    zone = page.locator("#eval-data-upload")
    zone.get_by_text("Click to Upload").first.wait_for()
    # Where the words are drawn, against the box that clips them.
    cut = page.evaluate(
        "() => { const zone = document.querySelector('#eval-data-upload');"
        " const walk = document.createTreeWalker(zone, NodeFilter.SHOW_TEXT);"
        " for (let n = walk.nextNode(); n; n = walk.nextNode()) {"
        " if (!n.textContent.includes('Click to Upload')) continue;"
        " const r = document.createRange(); r.selectNodeContents(n); const t = r.getBoundingClientRect();"
        " for (let el = n.parentElement; el && el !== zone.parentElement; el = el.parentElement) {"
        " const s = getComputedStyle(el); if (s.overflow === 'visible' && s.overflowY === 'visible') continue;"
        " const b = el.getBoundingClientRect(); if (t.bottom > b.bottom + 1 || t.top < b.top - 1) return true; }"
        " return false; } return null; }"
    )
    assert cut is False, "Click to Upload is cut off (or missing)"
    assert page.locator("#eval-data-example input").input_value() == "classical_chinese_test.json"
    zone.locator("input[type='file']").set_input_files(str(EXAMPLES / "poem_continuation_test.json"))
    wait_for(lambda: page.locator("#eval-data-example input").input_value() == "", 15)
    page.locator("#eval-data-info").get_by_text("poem_continuation_test.json").wait_for()


def test_group_table_has_no_hashes_and_export_has_one_suffix(page, app_server):
    ctx, _ = app_server
    spec = RunSpec(
        model="smollm2-135m-instruct",
        task="qa",
        dataset_name="zz_layout_test.json",
        template_sha="abcdef123456",
    )
    run = ctx.leaderboard.start_run(spec)
    ctx.leaderboard.finish_run(run, {"mean_perplexity": 2.5}, [ExampleResult(0, "p", "r", "x")])
    page.get_by_role("tab", name="Leaderboard").click()
    pick(page, "#lb-dataset", "zz_layout_test.json")
    table = page.locator("#lb-table")
    table.get_by_text("mean_perplexity").first.wait_for()
    text = table.inner_text()
    assert "abcdef123456" not in text and "{}" not in text
    # Every header on one line: a header wrapped onto several lines has several line boxes.
    wrapped = page.evaluate(
        "() => { const out = []; for (const th of document.querySelectorAll('#lb-table th')) {"
        " const walk = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);"
        " for (let n = walk.nextNode(); n; n = walk.nextNode()) { if (!n.textContent.trim()) continue;"
        " const r = document.createRange(); r.selectNodeContents(n);"
        " const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));"
        " if (tops.size > 1) out.push(n.textContent.trim()); } } return out; }"
    )
    assert wrapped == []
    page.locator("#lb-export").click()
    link = page.locator("#lb-export-file a").first
    link.wait_for()
    assert link.get_attribute("href").endswith("/leaderboard-zz_layout_test.csv")


def test_closing_the_tab_cancels_a_running_evaluation(page, app_server):
    ctx, _ = app_server
    page.get_by_role("tab", name="Leaderboard").click()
    page.locator("#eval-data-info").get_by_text("rows").wait_for()
    page.locator("#eval-metrics").get_by_label("rouge").check()
    page.get_by_label("Limit (first N examples, 0 = all)").filter(visible=True).fill("0")
    new_tokens = page.locator("#eval-max-new input[type='number']")
    new_tokens.fill("512")
    new_tokens.blur()
    before = {r.id for r in ctx.leaderboard.runs()}
    page.locator("#eval-start").click()

    def new_running():
        runs = [r for r in ctx.leaderboard.runs() if r.id not in before]
        return runs[0] if runs and runs[0].status == "running" else None

    run = wait_for(new_running, 120)
    page.close()
    wait_for(lambda: ctx.leaderboard.run(run.id).status == "cancelled", 60)
