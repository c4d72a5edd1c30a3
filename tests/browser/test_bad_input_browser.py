"""Malformed uploads in a real browser: the line under the upload names file, row and problem,
and the leaderboard keeps what it had. tests/test_bad_input_ui.py runs all twelve cases through the
same handler without a browser."""

from __future__ import annotations

import json

from playground.leaderboard import ExampleResult, RunSpec

KEPT_SET = "0-kept-before-bad-uploads.json"
BAD_FILES = [
    ("big5-poems.csv", "instruction,output\n床前,明月\n".encode("big5"), "big5-poems.csv: is not UTF-8 text"),
    (
        "one-bad-line.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": }\n',
        "one-bad-line.jsonl, row 2: not valid JSON (line 2",
    ),
    ("poems.json", b"PK\x03\x04" + b"\0" * 100, "poems.json: this looks like a ZIP archive, not JSON"),
]


def test_bad_uploads_show_file_row_and_problem_and_keep_earlier_runs(page, app_server, tmp_path):
    ctx, _ = app_server
    board = ctx.leaderboard
    run = board.start_run(RunSpec(model="kept-model", task="perplexity", dataset_name=KEPT_SET))
    board.finish_run(run, {"mean_perplexity": 4.25}, [ExampleResult(idx=0, prompt="p", reference="r")])

    page.get_by_role("tab", name="Leaderboard").click()
    upload = page.locator("#eval-data-upload")
    for name, content, expected in BAD_FILES:
        path = tmp_path / name
        path.write_bytes(content)
        upload.locator("input[type=file]").set_input_files(str(path))
        info = page.locator("#eval-data-info")
        info.get_by_text(expected).wait_for(timeout=30_000)
        assert info.inner_text().startswith("⚠️ Cannot use this file.")
        upload.get_by_role("button", name="Clear").click()
        upload.locator("input[type=file]").wait_for(state="attached")

    # The earlier run is still on the board, in the table a student would look at.
    dataset = page.locator("#lb-dataset input")
    dataset.fill(KEPT_SET)
    dataset.press("Enter")
    page.locator("#lb-runs").get_by_text("kept-model").filter(visible=True).first.wait_for(timeout=30_000)
    assert "mean_perplexity=4.25" in page.locator("#lb-runs").inner_text()
    assert board.run(run).status == "finished" and len(board.examples(run)) == 1
    assert json.loads(json.dumps(board.run(run).metrics)) == {"mean_perplexity": 4.25}
