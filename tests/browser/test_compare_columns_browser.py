"""Side by side columns each picking an adapter and a precision (issue 20), in a real browser."""

from __future__ import annotations

import json
import shutil

from playwright.sync_api import expect

from tests.helpers import save_random_lora


def _adapter(ctx, name: str):
    """A random LoRA of the embedded model, put in place by the operator (so anyone's to use)."""
    from playground.models import EMBEDDED_KEY
    from playground.paths import adapters_dir

    folder = adapters_dir() / name
    save_random_lora(ctx.models.current.source, folder, scale=0.5)
    (folder / "playground.json").write_text(json.dumps({"base_model": EMBEDDED_KEY}), encoding="utf-8")
    return folder


def _pick(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.locator(dropdown).get_by_role("option", name=option, exact=True).click()


def test_columns_pick_adapters_and_a_precision_and_a_refused_one_says_why(page, app_server):
    from playground.models.adapters import detach_adapters

    ctx, _ = app_server
    _adapter(ctx, "colsel-a")
    gone = _adapter(ctx, "colsel-b")
    page.reload()
    page.locator("#model-status").get_by_text("smollm2-135m-instruct").wait_for()
    page.get_by_role("tab", name="Side by side").click()
    page.locator("#compare-instruction textarea").fill("Name three colors.")
    page.locator("#compare-input textarea").fill("")
    max_new = page.locator("#compare-max-new input")
    max_new.fill("10")
    max_new.press("Tab")
    columns = page.locator("#compare-n-columns input[type='number']")
    columns.fill("4")
    columns.press("Tab")
    expect(page.locator("#compare-out-3")).to_be_visible()
    # Columns 1-3 greedy like column 0: 1 with an adapter, 2 with one deleted before the run,
    # 3 the bar's model loaded again in bf16 (this page is an admin's: a single-user playground).
    for column in (1, 2, 3):
        _pick(page, f"#compare-preset-{column}", "greedy")
        expect(page.locator(f"#compare-summary-{column}")).to_contain_text("greedy")
    _pick(page, "#compare-adapter-1", "colsel-a")
    _pick(page, "#compare-adapter-2", "colsel-b")
    _pick(page, "#compare-precision-3", "bf16")
    shutil.rmtree(gone)
    try:
        page.locator("#compare-run").click()
        outputs = [page.locator(f"#compare-out-{i} textarea") for i in range(4)]
        for i in (0, 1, 3):
            expect(outputs[i]).not_to_have_value("", timeout=120_000)
        stats = [page.locator(f"#compare-stats-{i}") for i in range(4)]
        expect(stats[2]).to_contain_text("Not run")
        expect(stats[2]).to_contain_text("no adapter 'colsel-b' (deleted?)")
        assert outputs[2].input_value() == ""
        expect(stats[0]).to_contain_text("adapter none (base model)")
        expect(stats[1]).to_contain_text("adapter colsel-a")
        expect(stats[3]).to_contain_text("bfloat16")
        expect(stats[3]).to_contain_text("(bf16)")
        for s in (stats[0], stats[1], stats[3]):
            expect(s).to_contain_text("smollm2-135m-instruct")
            expect(s).to_contain_text("tokens/s")
        assert outputs[1].input_value() != outputs[0].input_value(), "the adapter changes the answer"
    finally:
        for info in ctx.models.resident():
            if "(bf16" in info.key:
                ctx.models.unload(info.key)
        detach_adapters(ctx.models.current)
