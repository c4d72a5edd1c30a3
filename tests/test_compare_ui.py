"""The Side by side tab's pieces without a browser: Stop per session, labels and messages in both
languages, rows and sweep values read from what a user typed."""

from __future__ import annotations

import copy
import threading

import pytest

from playground.errors import PlaygroundError
from playground.generation.adapter_compare import BASE_LABEL, ComparisonTable, TableRow
from playground.generation.compare import SWEEP_PARAMS
from playground.generation.settings import PRESETS, DecodingSettings
from playground.ui.compare.adapters import comparison_note
from playground.ui.compare.adapters_table import parse_rows, prompt_items, shown_header
from playground.ui.compare.decoding_settings import decoding_label, settings_summary
from playground.ui.compare.decoding_views import parse_values
from playground.ui.i18n import WORDS
from playground.ui.i18n.catalogue.compare import PRESET_KEYS
from playground.ui.session_stop import SessionRuns, stop_all


def test_stop_sets_the_running_work_of_its_session_only():
    mine, theirs = SessionRuns(), SessionRuns()
    with mine.run() as first, mine.run() as second, theirs.run() as other:
        assert mine.running() == 2
        stop_all(mine)
        assert first.is_set() and second.is_set()
        assert not other.is_set(), "another session's run goes on"
    assert mine.running() == 0 and theirs.running() == 0
    with mine.run() as later:
        assert not later.is_set(), "a Stop pressed before does not stop the next run"
    stop_all(None)  # a session that never ran anything


def test_each_session_gets_runs_of_its_own_from_the_state_value():
    # gradio deep-copies a State's first value for every session.
    first = SessionRuns()
    copied = copy.deepcopy(first)
    assert copied is not first
    with first.run() as event:
        stop_all(copied)
        assert not event.is_set()


def test_a_run_ends_its_event_even_when_it_fails():
    runs = SessionRuns()
    with pytest.raises(ValueError), runs.run():
        raise ValueError("boom")
    assert runs.running() == 0


def test_stop_reaches_a_run_waiting_in_another_thread():
    runs = SessionRuns()
    started, stopped = threading.Event(), threading.Event()

    def work() -> None:
        with runs.run() as stop:
            started.set()
            if stop.wait(10):
                stopped.set()

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(10)
    runs.stop_all()
    worker.join(10)
    assert stopped.is_set()


def test_every_preset_and_sweep_setting_has_words():
    assert PRESET_KEYS.keys() == PRESETS.keys()
    for name in SWEEP_PARAMS:
        assert f"compare.sweep.param.{name}" in WORDS["en"]


def test_column_labels_in_english_as_before_and_in_chinese():
    creative = PRESETS["creative (T 1.2, top-k 10, top-p 0.9)"]
    assert decoding_label(creative) == "T 1.2, top-p 0.9, top-k 10"
    assert decoding_label(PRESETS["beams 3"]) == "beams 3, length penalty 1"
    focused = PRESETS["focused (T 0.1, top-p 0.3, no-repeat 3)"]
    assert decoding_label(focused.with_(top_k=0)) == "T 0.1, top-p 0.3, top-k off, no-repeat 3"
    assert settings_summary(PRESETS["greedy"].with_(max_new_tokens=16)) == "greedy · max 16 new tokens"
    assert decoding_label(creative, "zh-TW") == "溫度 1.2、top-p 0.9、top-k 10"
    assert (
        decoding_label(DecodingSettings(do_sample=False, repetition_penalty=1.2), "zh-TW")
        == "貪婪解碼、重複懲罰 1.2"
    )


def test_rows_typed_by_a_user():
    assert parse_rows("", 3) == [0, 1, 2]
    assert parse_rows("1-2, 2, 3", 5) == [0, 1, 2]
    with pytest.raises(PlaygroundError, match="outside 1-5"):
        parse_rows("4-9", 5)
    with pytest.raises(PlaygroundError, match="not a row number"):
        parse_rows("../etc", 5)
    with pytest.raises(PlaygroundError, match="超出 1-5 的範圍"):
        parse_rows("0", 5, "zh-TW")


def test_prompts_pasted_or_too_many():
    assert prompt_items("paste", "a\n\n b \n", None, None, "") == [("a", "", None), ("b", "", None)]
    with pytest.raises(PlaygroundError, match="no prompts"):
        prompt_items("paste", "  \n", None, None, "")
    with pytest.raises(PlaygroundError, match="最多比較 200 個"):
        prompt_items("paste", "x\n" * 201, None, None, "", "zh-TW")
    with pytest.raises(PlaygroundError, match="demo data set"):
        prompt_items("data set", "", None, None, "")


def test_sweep_values_typed_by_a_user():
    assert parse_values("0.1, 0.5 0.9", "temperature") == [0.1, 0.5, 0.9]
    assert parse_values("0.1:0.5:0.2", "temperature") == [0.1, 0.3, 0.5]
    with pytest.raises(PlaygroundError, match="start:stop:step"):
        parse_values("0.1:0.5:0", "temperature")
    with pytest.raises(PlaygroundError, match="溫度"):
        parse_values("", "temperature", "zh-TW")
    # An absurd setting through the API is a clear message, not a missing-key traceback.
    with pytest.raises(PlaygroundError, match="nonsense"):
        parse_values("x", "nonsense")


def _table(columns: list[str]) -> ComparisonTable:
    rows = [
        TableRow("What is 2 + 2?", "4", ["4"] * len(columns)),
        TableRow("Name a fruit.", None, ["apple"] * len(columns)),
    ]
    return ComparisonTable(columns, rows, PRESETS["greedy"].with_(seed=0), seconds=[0.5] * len(columns))


def test_the_table_header_and_note_in_the_page_language():
    table = _table([BASE_LABEL, "prompt"])  # an adapter may be called "prompt"
    assert shown_header(table) == ["#", "prompt", "reference", "base model", "prompt"]
    assert shown_header(table, "zh-TW") == ["#", "提示詞", "參考答案", "基礎模型", "prompt"]
    assert comparison_note(table) == "2 prompts · greedy · seed 0 · base model 0.5 s, prompt 0.5 s"
    table.templates = ["alpaca", "chatml"]
    assert comparison_note(table).endswith(" · templates: base model alpaca, prompt chatml")
    assert comparison_note(table, "zh-TW").startswith("2 個提示詞 · 貪婪解碼 · 隨機種子 0 · 基礎模型 0.5 s")
