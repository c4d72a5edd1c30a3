from __future__ import annotations

from playground.training import list_adapters
from tests.helpers import wait_for


def test_train_short_job_live_chart_stop_and_adapter_listed(page, app_server):
    ctx, _ = app_server
    page.get_by_role("tab", name="Training").click()
    page.locator("#train-preview").click()
    page.locator("#masked-example .masked-token").first.wait_for()
    assert page.locator("#masked-example .trained-token").count() > 0

    page.locator("#train-output textarea, #train-output input").first.fill("browser-lora")
    steps = page.locator("#train-max-steps input")
    steps.fill("400")
    # On this CPU-only machine the GPU-only settings are not shown at all.
    assert not page.locator("#train-gpu-speed").is_visible()
    assert (
        page.get_by_text("Fused layers").count() == 0
        or not page.get_by_text("Fused layers").first.is_visible()
    )
    page.locator("#train-start").click()
    page.locator("#train-status").get_by_text("step", exact=False).wait_for(timeout=180_000)
    # Packing is on by default, and the status says how the job batches.
    assert page.get_by_label("Pack examples (no padding; same loss, fewer passes)").is_checked()
    page.locator("#train-status").get_by_text("packed batches", exact=False).wait_for()
    # Fused layers stay on auto (hidden on CPU); this CPU run (LoRA, no gradient checkpointing) has none.
    assert "fused layers" not in page.locator("#train-status").inner_text()
    config = ctx.jobs.job(ctx.jobs.jobs()[0].id).config
    assert config.fused_layers is None and config.activation_memory_gb is None

    # The chart updates: more loss points appear while the job runs.
    def points() -> int:
        return page.locator("#train-chart .scatterlayer .trace").count() and page.evaluate(
            "() => { const g = document.querySelector('#train-chart .js-plotly-plot');"
            " return g && g.data && g.data[0] ? g.data[0].x.length : 0 }"
        )

    first = wait_for(points, timeout=180)
    wait_for(lambda: points() > first, timeout=180)

    page.locator("#train-stop").click()
    wait_for(lambda: ctx.jobs.jobs()[0].status == "stopped", timeout=120)
    job = ctx.jobs.jobs()[0]
    assert job.checkpoint_step and job.checkpoint_step > 0, "stop keeps the last checkpoint"

    # The stopped job's adapter is listed at once (a resume would finish it in place).
    assert job.adapter and any(a.name == "browser-lora" for a in list_adapters())
    page.get_by_role("button", name="Refresh lists").click()
    page.locator("#train-adapters").get_by_text("browser-lora").filter(visible=True).first.wait_for()

    # "Evaluate this adapter": base and adapter perplexity on a test set, both on the leaderboard.
    before = len(ctx.leaderboard.runs())
    page.locator("#train-adapters").get_by_text("browser-lora").filter(visible=True).first.click()
    page.get_by_label("Limit (first N examples, 0 = all)").last.fill("2")
    page.locator("#train-evaluate").click()
    status = page.locator("#train-evaluate-status")
    status.get_by_text("adapter browser-lora: mean").wait_for(timeout=120_000)
    assert "base model: mean" in status.inner_text()
    new = ctx.leaderboard.runs()[: len(ctx.leaderboard.runs()) - before]
    assert sorted(r.adapter or "" for r in new) == ["", "browser-lora"]
