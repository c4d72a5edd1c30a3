"""Service errors carry a catalogue key and values: English in str(), the page's language in the UI."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio.context import LocalContext

from playground.data import load_dataset
from playground.errors import Cancelled, DatasetError, ModelLoadError, PlaygroundError
from playground.limits import Limits
from playground.messages import WORDS, Message
from playground.models.loader import resolve
from playground.names import check_name
from playground.ui.common import error_text, user_errors

ZH = SimpleNamespace(headers={"accept-language": "zh-TW,zh;q=0.9"})


def _raised(fn, *args):
    with pytest.raises(PlaygroundError) as info:
        fn(*args)
    return info.value


def test_a_data_file_without_the_instruction_column_reads_in_both_languages(tmp_path):
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps([{"question": "1+1?", "answer": "2"}]))
    error = _raised(load_dataset, path)
    assert isinstance(error, DatasetError) and error.key == "data.in_file"
    english = str(error)
    assert english.startswith(
        "wrong.json: cannot tell which column is the instruction. Columns found: question, answer."
    )
    assert error.problem == english.removeprefix("wrong.json: ")
    chinese = error.in_language("zh-TW")
    assert chinese.startswith("wrong.json：無法判斷哪個欄位是指令")
    assert "question, answer" in chinese and "cannot" not in chinese
    assert error.in_language("en") == english


def test_a_row_problem_names_row_and_line_in_chinese(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"instruction": "a", "output": "b"}, {"instruction": 7, "output": "c"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    error = _raised(load_dataset, path)
    assert (
        str(error) == "rows.jsonl, row 2: column 'instruction' should be text but is a number (7) (line 2)."
    )
    assert (
        error.in_language("zh-TW")
        == "rows.jsonl 第 2 筆資料：欄位「instruction」應該是文字，但卻是數字（7）（第 2 行）。"
    )


def test_bad_json_and_an_empty_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"instruction": "a"')
    error = _raised(load_dataset, broken)
    assert "looks truncated" in str(error) and "line 1" in str(error)
    assert "被截斷" in error.in_language("zh-TW") and "第 1 行" in error.in_language("zh-TW")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    error = _raised(load_dataset, empty)
    assert (str(error), error.in_language("zh-TW")) == (
        "empty.csv: is empty (0 bytes).",
        "empty.csv：是空檔案（0 位元組）。",
    )


def test_too_big_and_too_many_rows_carry_their_numbers(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"instruction": "x" * 50}] * 40))
    error = _raised(lambda: load_dataset(path, max_bytes=100))
    assert "over the 100 bytes limit" in str(error) and "超過 100 bytes 的上限" in error.in_language("zh-TW")
    error = _raised(Limits(rows=5).check_rows, 8, "big.json")
    assert str(error).startswith("big.json has 8 rows; this playground reads up to 5.")
    assert error.in_language("zh-TW").startswith("big.json 有 8 筆資料；這個遊樂場最多讀取 5 筆")
    error = _raised(Limits(new_tokens=64).check_new_tokens, 100)
    assert error.values == {"asked": 100, "most": 64} and "100" in error.in_language("zh-TW")


def test_models_names_and_cancelled():
    error = _raised(resolve, "not a model id")
    assert isinstance(error, ModelLoadError) and error.key == "models.unknown"
    assert (
        error.in_language("zh-TW")
        == "'not a model id' 不是預設模型、本機資料夾，也不是 org/name 形式的 Hugging Face id。"
    )
    error = _raised(check_name, "../etc", "adapter")
    assert "cannot be a adapter name" in str(error)
    assert "不能當作轉接器名稱" in error.in_language("zh-TW")
    assert (str(Cancelled()), Cancelled().in_language("zh-TW")) == ("Cancelled.", "已取消。")
    plain = PlaygroundError("Only English here.")
    assert plain.key is None and plain.in_language("zh-TW") == "Only English here."


def test_a_keyed_error_survives_pickling_between_processes(tmp_path):
    error = DatasetError("f.csv", Message("data.no_rows"), row=None)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is DatasetError and again.file == "f.csv"
    assert (str(again), again.in_language("zh-TW")) == (str(error), "f.csv：沒有任何資料。")


def test_the_ui_shows_a_keyed_error_in_the_request_language():
    error = ModelLoadError(Message("models.none_loaded"))
    assert error_text(error, ZH) == "尚未載入模型。請在頁面最上方選擇一個模型，再按「載入」。"
    assert error_text(error) == str(error)  # no event: English

    @user_errors
    def handler():
        raise error

    token = LocalContext.request.set(ZH)  # what gradio sets while it runs an event's function
    try:
        with pytest.raises(gr.Error) as info:
            handler()
    finally:
        LocalContext.request.reset(token)
    assert info.value.message == error_text(error, ZH)


def test_every_service_message_is_translated():
    for key, english in WORDS["en"].items():
        if key.startswith("data.kind.other") or key in ("data.in_file", "data.row_end"):
            continue  # only placeholders and punctuation
        assert WORDS["zh-TW"][key] != english, key
