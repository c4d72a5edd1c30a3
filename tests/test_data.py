from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import data
from playground.data import (
    MAX_FIELD_CHARS,
    ColumnMapping,
    dataset_sha256,
    dataset_summary,
    list_examples,
    load_dataset,
    read_columns,
    save_upload,
)
from playground.errors import DatasetError
from playground.paths import data_dir

TANG = Path("datasets") / "tang-poems"
EXAMPLES = Path(data.__file__).resolve().parents[1] / "examples"


def write_json(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load_error(path: Path, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    return str(info.value)


# --- shapes ---------------------------------------------------------------------------------------


def test_adl_shape(tmp_path):
    path = write_json(
        tmp_path / "adl.json",
        [
            {"id": "a1", "instruction": "翻譯成文言文：你好", "output": "汝好"},
            {"id": "a2", "instruction": "x"},
        ],
    )
    ds = load_dataset(path)
    assert ds.shape == "adl"
    assert [e.id for e in ds.examples] == ["a1", "a2"]
    assert ds.examples[0].output == "汝好" and ds.examples[1].output is None
    assert ds.examples[0].input == ""
    assert ds.name == "adl.json" and ds.source == str(path)


def test_alpaca_shape_and_row_number_ids(tmp_path):
    rows = [{"instruction": f"q{i}", "input": f"in{i}", "output": f"out{i}"} for i in range(3)]
    ds = load_dataset(write_jsonl(tmp_path / "a.jsonl", rows))
    assert ds.shape == "alpaca"
    assert [(e.id, e.instruction, e.input, e.output) for e in ds.examples] == [
        (str(i + 1), f"q{i}", f"in{i}", f"out{i}") for i in range(3)
    ]


def test_bigbench_variants(tmp_path):
    task = {
        "name": "t",
        "examples": [
            {"input": "2+2?", "target": "4"},
            {"input": "capital?", "target": ["Taipei", "臺北"]},
            {"input": "pick", "target_scores": {"a": 0, "b": 1, "c": 0.5}},
        ],
    }
    ds = load_dataset(write_json(tmp_path / "task.json", task))
    assert ds.shape == "bigbench"
    first, second, third = ds.examples
    assert (first.instruction, first.output, first.references) == ("2+2?", "4", ("4",))
    assert second.output == "Taipei" and second.references == ("Taipei", "臺北")
    # Rows without a target fall back to the best-scored answer.
    assert third.output == "b" and third.references == ("b",)

    scores = write_json(
        tmp_path / "scores.json", {"examples": [{"input": "pick", "target_scores": {"a": 0, "b": 1}}]}
    )
    assert load_dataset(scores).examples[0].output == "b"

    message = load_error(
        write_json(tmp_path / "bad.json", {"examples": [{"input": "q", "target_scores": ["a"]}]})
    )
    assert "bad.json, row 1" in message and "target_scores" in message and "score" in message

    plural = write_jsonl(tmp_path / "plural.jsonl", [{"inputs": "q", "targets": ["x", "y"]}])
    ex = load_dataset(plural).examples[0]
    assert (ex.instruction, ex.output, ex.references) == ("q", "x", ("x", "y"))


def test_summarization_shape_with_several_summaries(tmp_path):
    path = write_csv(
        tmp_path / "dialogsum.csv",
        ["id", "dialogue", "summary1", "summary2", "topic"],
        [["d1", "#Person1#: hi\n#Person2#: hello", "They greet.", "A greeting.", "greeting"]],
    )
    ds = load_dataset(path)
    assert ds.shape == "summarization"
    ex = ds.examples[0]
    assert ex.instruction == "#Person1#: hi\n#Person2#: hello"
    assert ex.output == "They greet." and ex.references == ("They greet.", "A greeting.")
    assert any("topic" in note for note in ds.notes)

    convo = write_jsonl(tmp_path / "c.jsonl", [{"conversation": "A: x", "summary": "s"}])
    assert load_dataset(convo).examples[0].output == "s"


def test_unknown_suffix_is_sniffed(tmp_path):
    lines = tmp_path / "rows.txt"
    lines.write_text('{"instruction": "a"}\n{"instruction": "b"}\n', encoding="utf-8")
    assert [e.instruction for e in load_dataset(lines).examples] == ["a", "b"]
    table = tmp_path / "table.dat"
    table.write_text("instruction\toutput\nq\ta\n", encoding="utf-8")
    assert load_dataset(table).examples[0].output == "a"
    misnamed = tmp_path / "lines.json"
    misnamed.write_text('{"instruction": "a"}\n{"instruction": "b"}\n', encoding="utf-8")
    assert ".jsonl" in load_error(misnamed)


def test_utf8_bom_and_tsv_and_semicolon(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfinstruction,output\r\n\xe4\xbd\xa0,\xe5\xa5\xbd\r\n")
    ds = load_dataset(bom)
    assert ds.shape == "adl" and ds.examples[0].instruction == "你" and ds.examples[0].output == "好"

    bom_json = tmp_path / "bom.json"
    bom_json.write_bytes(b"\xef\xbb\xbf" + json.dumps([{"instruction": "q"}]).encode())
    assert load_dataset(bom_json).examples[0].instruction == "q"

    semi = tmp_path / "semi.csv"
    semi.write_text("instruction;output\nq;a\n", encoding="utf-8")
    assert load_dataset(semi).examples[0].output == "a"


def test_only_a_trailing_newline_is_stripped(tmp_path):
    rows = [{"instruction": "  keep spaces  ", "input": "\nlead", "output": "two\nlines\n"}]
    ex = load_dataset(write_json(tmp_path / "n.json", rows)).examples[0]
    assert ex.instruction == "  keep spaces  "
    assert ex.input == "\nlead"
    assert ex.output == "two\nlines"


def test_skipped_rows_and_empty_outputs_are_noted(tmp_path):
    rows = [
        {"instruction": "a", "output": "1"},
        {"instruction": "", "output": "2"},
        {"instruction": "c", "output": ""},
        {"instruction": None, "output": "4"},
    ]
    ds = load_dataset(write_json(tmp_path / "gaps.json", rows))
    assert [e.id for e in ds.examples] == ["1", "3"]  # ids keep the file's row numbers
    assert ds.examples[1].output is None
    text = dataset_summary(ds)
    assert "2 rows skipped" in text and "rows 2, 4" in text
    assert (
        "1 row without an output" in text
        and "2 rows, columns id, instruction, output (the NTU ADL homework format)" in text
    )


def test_dataset_summary_sentence(tmp_path):
    ds = load_dataset(write_json(tmp_path / "d.json", [{"instruction": "i", "input": "", "output": "o"}] * 2))
    assert dataset_summary(ds).startswith(
        "d.json: 2 rows, columns instruction, input, output (the Alpaca format); 0 without output."
    )


def test_column_mapping_overrides_detection(tmp_path):
    path = write_csv(tmp_path / "qa.csv", ["qid", "question", "context", "answer"], [["x", "Q?", "ctx", "A"]])
    assert read_columns(path) == ["qid", "question", "context", "answer"]
    with pytest.raises(DatasetError, match="Columns found: qid, question, context, answer"):
        load_dataset(path)
    mapping = ColumnMapping(instruction="question", input="context", output="answer", id="qid")
    ds = load_dataset(path, mapping=mapping)
    assert ds.shape == "custom"
    ex = ds.examples[0]
    assert (ex.id, ex.instruction, ex.input, ex.output) == ("x", "Q?", "ctx", "A")
    assert "instruction = question" in dataset_summary(ds)

    # A mapping also wins over a shape that would have been detected.
    alpaca = write_json(tmp_path / "al.json", [{"instruction": "i", "input": "n", "output": "o"}])
    swapped = load_dataset(alpaca, mapping=ColumnMapping(instruction="output", output="instruction"))
    assert (swapped.examples[0].instruction, swapped.examples[0].output) == ("o", "i")

    message = load_error(path, mapping=ColumnMapping(instruction="question", output="nope"))
    assert "qa.csv" in message and "'nope'" in message and "output" in message
    assert "instruction" in load_error(path, mapping=ColumnMapping(output="answer"))


def test_references_file_supplies_outputs(tmp_path):
    rows = [{"instruction": "續寫", "input": f"第{i}句"} for i in range(3)]
    test = write_json(tmp_path / "test.json", rows)
    gt = tmp_path / "gt.txt"
    gt.write_text("甲\t乙\n丙\r\n丁\n\n", encoding="utf-8")
    ds = load_dataset(test, references=gt)
    assert [e.output for e in ds.examples] == ["甲\t乙", "丙", "丁"]
    assert ds.sha256 == dataset_sha256(test, gt) != dataset_sha256(test)
    assert dataset_sha256(test) == hashlib.sha256(test.read_bytes()).hexdigest()

    gt.write_text("甲\n丙\n", encoding="utf-8")
    message = load_error(test, references=gt)
    assert "test.json" in message and "gt.txt" in message and "3 rows" in message and "2 lines" in message


# --- demo sets and the homework files -----------------------------------------------------------


EXPECTED_DEMOS = {
    "classical_chinese": "adl",
    "poem_continuation": "alpaca",
    "dialogue_summary": "summarization",
    "sports_plausibility": "bigbench",
}


def _raw_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    doc = json.loads(text)
    return doc["examples"] if isinstance(doc, dict) else doc


def test_demo_sets_load_with_their_shapes():
    files = list_examples()
    assert {p.name for p in files} == {
        f"{stem}_{split}{'.jsonl' if stem == 'dialogue_summary' else '.json'}"
        for stem in EXPECTED_DEMOS
        for split in ("train", "test")
    }
    for stem, shape in EXPECTED_DEMOS.items():
        splits = {}
        for split in ("train", "test"):
            path = next(p for p in files if p.name.startswith(f"{stem}_{split}"))
            ds = load_dataset(path, require_outputs=True)
            raw = _raw_rows(path)
            assert ds.shape == shape, path.name
            assert len(ds) == len(raw) >= 8, path.name
            assert all(e.output for e in ds.examples), path.name
            assert not any("skipped" in n or "Ignored" in n for n in ds.notes), (path.name, ds.notes)
            splits[split] = ds
        train_q = {(e.instruction, e.input) for e in splits["train"].examples}
        assert not train_q & {(e.instruction, e.input) for e in splits["test"].examples}, stem


def test_demo_sets_content_rules():
    by_name = {p.name: load_dataset(p) for p in list_examples()}
    for split in ("train", "test"):
        sports = by_name[f"sports_plausibility_{split}.json"]
        targets = [e.output for e in sports.examples]
        assert set(targets) == {"yes", "no"} and targets.count("yes") == targets.count("no")
        assert all(e.instruction.startswith("Is the following sentence plausible?") for e in sports.examples)

        classical = by_name[f"classical_chinese_{split}.json"]
        prefixes = {e.instruction[:7] for e in classical.examples}
        assert prefixes == {"翻譯成文言文：", "翻譯成白話文："}

        poems = by_name[f"poem_continuation_{split}.json"]
        assert all(e.input.endswith("。") and e.output.endswith("。") for e in poems.examples)

        dialogues = by_name[f"dialogue_summary_{split}.jsonl"]
        assert all(e.instruction.startswith("#Person1#: ") for e in dialogues.examples)


def test_tang_homework_files(shared_dir):
    folder = shared_dir / TANG
    train = load_dataset(folder / "Tang_training_data.json", require_outputs=True)
    assert train.shape == "alpaca" and len(train) == 5001
    assert "5001 rows, columns instruction, input, output" in dataset_summary(
        train
    ) and "0 without output" in dataset_summary(train)

    bare = load_dataset(folder / "Tang_testing_data.json")
    assert len(bare) == 15 and not bare.has_outputs

    gt_lines = (folder / "Tang_testing_gt.txt").read_text(encoding="utf-8").splitlines()
    test = load_dataset(folder / "Tang_testing_data.json", references=folder / "Tang_testing_gt.txt")
    assert len(test) == 15 and all(e.output for e in test.examples)
    assert [e.output for e in test.examples] == gt_lines[:15]
    with pytest.raises(DatasetError):
        load_dataset(folder / "Tang_testing_data.json", require_outputs=True)


# --- bad input -----------------------------------------------------------------------------------


def test_not_utf8(tmp_path):
    prefix = b'[{"instruction": "ok"},\n {"instruction": "'
    path = tmp_path / "big5.json"
    for bom in (b"", b"\xef\xbb\xbf"):
        path.write_bytes(bom + prefix + "唐詩".encode("big5") + b'"}]')
        message = load_error(path)
        assert "big5.json" in message and "UTF-8" in message and "line 2" in message
        assert f"byte offset {len(bom) + len(prefix)}" in message


def test_utf16_is_named(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("instruction,output\nq,a\n".encode("utf-16"))
    assert "UTF-16" in load_error(path)


def test_truncated_json(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "out', encoding="utf-8"
    )
    message = load_error(path)
    assert "cut.json" in message and "line 3" in message and "column" in message and "truncated" in message


def test_jsonl_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a"}\n{"instruction": "b"}\n{"instruction": c}\n', encoding="utf-8")
    message = load_error(path)
    assert "bad.jsonl, row 3" in message and "line 3" in message and "not valid JSON" in message


def test_csv_row_missing_a_cell(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("instruction,input,output\na,b,c\nd,e\n", encoding="utf-8")
    message = load_error(path)
    assert "short.csv, row 2" in message and "2 cells" in message
    assert "missing: output" in message and "line 3" in message


def test_csv_without_a_usable_column(tmp_path):
    path = write_csv(tmp_path / "cols.csv", ["prompt", "completion"], [["a", "b"]])
    message = load_error(path)
    assert "cols.csv" in message and "prompt, completion" in message
    assert all(shape in message for shape in ("adl", "alpaca", "bigbench", "summarization", "column mapping"))


@pytest.mark.parametrize(
    ("value", "word"), [(42, "number"), (["a"], "list"), ({"a": 1}, "object"), (True, "true")]
)
def test_wrong_type_in_row_7(tmp_path, value, word):
    rows = [{"instruction": f"q{i}", "output": "a"} for i in range(10)]
    rows[6]["instruction"] = value
    message = load_error(write_json(tmp_path / "types.json", rows))
    assert "types.json, row 7" in message and "'instruction'" in message and word in message


def test_wrong_types_elsewhere(tmp_path):
    message = load_error(write_json(tmp_path / "o.json", [{"instruction": "a", "output": 3}]))
    assert "row 1" in message and "'output'" in message and "number" in message
    message = load_error(write_jsonl(tmp_path / "l.jsonl", [{"instruction": "a"}, ["not", "a", "row"]]))
    assert "l.jsonl, row 2" in message and "list" in message and "line 2" in message
    message = load_error(write_json(tmp_path / "root.json", {"data": []}))
    assert "root.json" in message and "examples" in message and "data" in message


def test_empty_files(tmp_path):
    for name, content in [
        ("e.json", ""),
        ("w.jsonl", "  \n\n"),
        ("l.json", "[]"),
        ("h.csv", "instruction,output\n"),
    ]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        message = load_error(path)
        assert name in message and ("empty" in message or "no rows" in message), message


def test_no_rows_left_after_filtering(tmp_path):
    rows = [{"instruction": "", "output": "a"}, {"instruction": "   ", "output": "b"}, {"instruction": None}]
    message = load_error(write_json(tmp_path / "blank.json", rows))
    assert "blank.json" in message and "no usable rows" in message and "3 rows" in message


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_huge_field(tmp_path, suffix):
    rows = [["a", "short"], ["b", "x" * (MAX_FIELD_CHARS + 1)]]
    if suffix == ".csv":
        path = write_csv(tmp_path / "huge.csv", ["instruction", "output"], rows)
    else:
        path = write_json(tmp_path / "huge.json", [{"instruction": i, "output": o} for i, o in rows])
    message = load_error(path)
    assert f"huge{suffix}, row 2" in message and "'output'" in message and "1,000,000" in message


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = write_json(tmp_path / "big.json", [{"instruction": "x" * 500}])

    def no_reading(self):
        raise AssertionError("read before the size check")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    message = load_error(path, max_bytes=100)
    assert "big.json" in message and "limit" in message


def test_zip_and_binary_renamed(tmp_path):
    path = tmp_path / "homework.json"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.json", "[]")
    message = load_error(path)
    assert "homework.json" in message and "this looks like a ZIP archive, not JSON" in message

    binary = tmp_path / "model.csv"
    binary.write_bytes(b"instruction,output\nq,\x00\x01\x02")
    message = load_error(binary)
    assert "model.csv" in message and "binary" in message and "NUL" in message


def test_duplicate_ids(tmp_path):
    rows = [{"id": i, "instruction": "q"} for i in ("a", "b", "c", "d", "b")]
    message = load_error(write_json(tmp_path / "dup.json", rows))
    assert "dup.json, row 5" in message and "row 2" in message and "'b'" in message
    message = load_error(
        write_json(tmp_path / "noid.json", [{"id": 1, "instruction": "q"}, {"instruction": "r"}])
    )
    assert "row 2" in message and "id" in message


def test_all_empty_outputs(tmp_path):
    path = write_csv(tmp_path / "noans.csv", ["instruction", "output"], [["a", ""], ["b", ""]])
    ds = load_dataset(path)
    assert all(e.output is None for e in ds.examples) and "2 without output" in dataset_summary(ds)
    message = load_error(path, require_outputs=True)
    assert "noans.csv" in message and "'output'" in message and "empty in every row" in message
    no_column = write_json(tmp_path / "nocol.json", [{"instruction": "a"}])
    assert "no output column" in load_error(no_column, require_outputs=True)


def test_missing_file(tmp_path):
    assert "not found" in load_error(tmp_path / "nope.json")


# --- uploads and examples -----------------------------------------------------------------------


def test_save_upload_never_overwrites(tmp_path):
    first = tmp_path / "a" / "我的 資料.json"
    second = tmp_path / "b" / "我的 資料.json"
    for path, content in ((first, b"[1]"), (second, b"[2]")):
        path.parent.mkdir()
        path.write_bytes(content)
    saved = [save_upload(first), save_upload(second)]
    assert saved[0] != saved[1]
    assert [p.read_bytes() for p in saved] == [b"[1]", b"[2]"]
    uploads = saved[0].parent
    assert uploads.parent == data_dir() / "uploads"
    assert all(p.parent == uploads and p.suffix == ".json" for p in saved)
    assert sorted(p.name for p in uploads.iterdir()) == sorted(p.name for p in saved)  # no temp leftovers
    with pytest.raises(DatasetError, match="limit"):
        save_upload(first, max_bytes=2)


# --- properties ----------------------------------------------------------------------------------

# Text a student might type: any printable character, plus the ones that break naive parsers.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        st.sampled_from(list("{}[]\"',;\t\n\r\\ 床前明月光，疑是地上霜。\u2028\ufeff")),
    ),
    max_size=25,
).filter(lambda s: not s.endswith("\n"))
ROWS = st.lists(st.tuples(TEXT.filter(str.strip), TEXT, TEXT), min_size=1, max_size=6)
PROPERTY = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(rows=ROWS, fmt=st.sampled_from(["json", "jsonl", "csv"]))
def test_round_trip(tmp_path, rows, fmt):
    dicts = [{"instruction": i, "input": n, "output": o} for i, n, o in rows]
    path = tmp_path / f"rt.{fmt}"
    if fmt == "json":
        write_json(path, dicts)
    elif fmt == "jsonl":
        write_jsonl(path, dicts)
    else:
        write_csv(path, ["instruction", "input", "output"], [list(r) for r in rows])
    ds = load_dataset(path)
    assert ds.shape == "alpaca"
    assert [(e.instruction, e.input) for e in ds.examples] == [(i, n) for i, n, _ in rows]
    assert [e.output for e in ds.examples] == [o if o.strip() else None for _, _, o in rows]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(
    ["id", "instruction", "input", "output", "target", "targets", "target_scores", "dialogue", "summary"]
)


@PROPERTY
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='[]{}",:\n\\ab01 ', max_size=80).map(str.encode),
        st.lists(st.dictionaries(KEYS, JSON_VALUES, max_size=4), max_size=4).map(
            lambda rows: json.dumps(rows).encode()
        ),
    ),
    suffix=st.sampled_from([".json", ".jsonl", ".csv", ".txt"]),
)
def test_garbage_only_raises_dataset_error(tmp_path, content, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(content)
    try:
        ds = load_dataset(path)
    except DatasetError as e:
        assert "junk" in str(e)
    else:
        assert len(ds) >= 1 and all(e.instruction.strip() for e in ds.examples)
