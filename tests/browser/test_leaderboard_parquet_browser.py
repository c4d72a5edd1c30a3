"""Issue 22 (2): a clicked run's examples download as parquet that datasets reads back."""

from __future__ import annotations

import time

import datasets

from playground.leaderboard import ExampleResult, RunSpec
from tests.helpers import pick


def test_a_clicked_run_downloads_as_parquet(page, app_server, tmp_path):
    ctx, _ = app_server
    name = f"parquet-set-{int(time.time())}.json"
    run_id = ctx.leaderboard.start_run(RunSpec(model="smollm2-135m-instruct", task="qa", dataset_name=name))
    examples = [ExampleResult(i, f"prompt {i}", f"ref {i}", f"pred {i}", {"rouge1": i / 4}) for i in range(3)]
    ctx.leaderboard.finish_run(run_id, {"rouge1": 0.25}, examples)

    page.get_by_role("tab", name="Leaderboard").click()
    pick(page, "#lb-dataset", name)
    page.locator("#lb-runs").get_by_text("finished").filter(visible=True).first.click()
    page.locator("#lb-run-title").get_by_text(f"Run #{run_id}").wait_for()
    page.locator("#lb-export-run").click()
    row = page.locator("#lb-export-file").get_by_role("row", name=f"run-{run_id}-examples.parquet")
    row.wait_for(timeout=60_000)
    with page.expect_download() as info:
        row.get_by_role("link").click()
    path = tmp_path / "run.parquet"
    info.value.save_as(path)
    back = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert back["prompt"] == [e.prompt for e in examples] and set(back["run_id"]) == {run_id}
