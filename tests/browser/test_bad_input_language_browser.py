"""A bad data file in a zh-TW browser: the line under the upload says what is wrong in Chinese."""

from __future__ import annotations

import json
import re

from playground.ui.i18n import WORDS
from tests.browser.language import open_tab
from tests.helpers import wait_for

BAD_FILES = [
    # (name, content, the Chinese the line must show, the English it must not)
    (
        "wrong-columns.json",
        json.dumps([{"question": "1+1?", "answer": "2"}]).encode(),
        "wrong-columns.json：無法判斷哪個欄位是指令",
        "cannot tell which column",
    ),
    (
        "number-in-row-2.jsonl",
        b'{"instruction": "a", "output": "b"}\n{"instruction": 7, "output": "c"}\n',
        "number-in-row-2.jsonl 第 2 筆資料：欄位「instruction」應該是文字，但卻是數字（7）",
        "should be text",
    ),
]


def test_a_bad_upload_is_explained_in_traditional_chinese(browser, app_server, tmp_path):
    _, url = app_server
    context, page = open_tab(
        browser,
        url,
        "zh-TW",
        "排行榜",
        lambda page: page.locator("#eval-data-info").get_by_text("rows").wait_for(),
    )
    upload = page.locator("#eval-data-upload")
    info = page.locator("#eval-data-info")
    for name, content, chinese, english in BAD_FILES:
        path = tmp_path / name
        path.write_bytes(content)
        upload.locator("input[type=file]").set_input_files(str(path))
        info.get_by_text(chinese).wait_for(timeout=30_000)
        # gradio's queue line ("queue: 1/1 | ...") may still stand above the answer for a moment.
        shown = wait_for(lambda: (text := info.inner_text()).startswith("⚠️") and text, 30)
        assert shown.startswith("⚠️ " + WORDS["zh-TW"]["leaderboard.bad_file"])
        assert english not in shown
        upload.get_by_role("button", name=re.compile("^(Clear|清除)$")).click()
        upload.locator("input[type=file]").wait_for(state="attached")
    context.close()
