from __future__ import annotations

import time


def _wait_until(fn, timeout=120.0, every=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def test_train_short_job_live_chart_stop_and_adapter_listed(page, app_server):
    ctx, _ = app_server
    page.get_by_role("tab", name="Training").click()
    page.locator("#train-preview").click()
    page.locator("#masked-example .masked-token").first.wait_for()
    assert page.locator("#masked-example .trained-token").count() > 0

    page.locator("#train-output textarea, #train-output input").first.fill("browser-lora")
    steps = page.locator("#train-max-steps input")
    steps.fill("400")
    page.locator("#train-start").click()
    page.locator("#train-status").get_by_text("step", exact=False).wait_for(timeout=180_000)

    # The chart updates: more loss points appear while the job runs.
    def points() -> int:
        return page.locator("#train-chart .scatterlayer .trace").count() and page.evaluate(
            "() => { const g = document.querySelector('#train-chart .js-plotly-plot');"
            " return g && g.data && g.data[0] ? g.data[0].x.length : 0 }"
        )

    first = _wait_until(points, timeout=180)
    _wait_until(lambda: points() > first, timeout=180)

    page.locator("#train-stop").click()
    _wait_until(lambda: ctx.jobs.jobs()[0].status == "stopped", timeout=120)
    job = ctx.jobs.jobs()[0]
    assert job.checkpoint_step and job.checkpoint_step > 0, "stop keeps the last checkpoint"

    # Resume to the end with fewer steps is not possible; a fresh tiny job finishes and is listed.
    steps.fill("3")
    page.locator("#train-output textarea, #train-output input").first.fill("browser-lora-done")
    page.locator("#train-start").click()
    _wait_until(
        lambda: any(
            a.name == "browser-lora-done"
            for a in __import__("playground.training", fromlist=["x"]).list_adapters()
        ),
        timeout=240,
    )
    page.get_by_role("button", name="Refresh lists").click()
    page.locator("#train-adapters").get_by_text("browser-lora-done").filter(visible=True).first.wait_for()
