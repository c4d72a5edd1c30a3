"""Bad input as the UI sees it: malformed data sets through the Leaderboard tab's own handlers,
and property-based checks of the template renderer and the data loader.

The handlers are taken from the built app (the functions the upload and the Start button call),
so a message checked here is the message a student gets in the browser's toast;
tests/browser/test_bad_input_browser.py uploads three of these files in a real browser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.data import DEFAULT_MAX_BYTES, MAX_FIELD_CHARS
from playground.errors import DatasetError
from playground.prompts.templates import PromptTemplate
from playground.ui.session_stop import SessionRuns


def _json(rows) -> bytes:
    return json.dumps(rows, ensure_ascii=False).encode()


def _rows(n: int) -> list[dict]:
    return [
        {"instruction": f"Continue the poem {i}", "input": "床前明月光，", "output": "疑是地上霜。"}
        for i in range(n)
    ]


def _sparse(path: Path) -> None:
    # Over the limit without writing 200 MB: the loader checks the size before reading.
    with open(path, "wb") as f:
        f.truncate(DEFAULT_MAX_BYTES + 1024 * 1024)


# (file name, content or a writer, row the message must name or None, problem it must state)
MALFORMED = [
    ("big5-poems.csv", "instruction,output\n床前,明月\n".encode("big5"), None, r"not UTF-8 .*line 2"),
    ("truncated.json", _json(_rows(3))[:-25], None, r"truncated"),
    (
        "one-bad-line.jsonl",
        b"\n".join(
            [_json(r) for r in _rows(2)] + [b'{"instruction": "x", "output": }'] + [_json(_rows(1)[0])]
        ),
        3,
        r"not valid JSON \(line 3",
    ),
    (
        "missing-cell.csv",
        b"instruction,input,output\na,b,c\nd,e\n",
        2,
        r"2 cells .* 3 columns; missing: output",
    ),
    (
        "wrong-types.json",
        _json(_rows(1) + [{"instruction": 42, "output": "x"}]),
        2,
        r"column 'instruction' should be text but is a number \(42\)",
    ),
    ("empty.json", b"", None, r"is empty \(0 bytes\)"),
    (
        "blank-instructions.json",
        _json([{"instruction": "  ", "output": "a"}, {"instruction": "", "output": "b"}]),
        None,
        r"no usable rows: none of the 2 rows",
    ),
    (
        "huge-field.jsonl",
        b"\n".join([_json(_rows(1)[0]), _json({"instruction": "x", "output": "y" * (MAX_FIELD_CHARS + 1)})]),
        2,
        r"column 'output' has 1,000,001 characters; the limit is 1,000,000",
    ),
    ("too-big.jsonl", _sparse, None, r"over the 200\.0 MB limit"),
    ("poems.json", b"PK\x03\x04" + b"\0" * 200, None, r"looks like a ZIP archive, not JSON"),
    (
        "duplicate-ids.json",
        _json(
            [{"id": "a", "instruction": "x", "output": "1"}, {"id": "b", "instruction": "y", "output": "2"}]
            * 2
        ),
        3,
        r"repeats the id 'a' of row 1",
    ),
]
EMPTY_OUTPUTS = ("no-answers.json", _json([{"instruction": f"q{i}", "output": ""} for i in range(3)]))


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    return path


@pytest.fixture(scope="module")
def handlers(tmp_path_factory, tiny_llama):
    """The Leaderboard tab's upload and Start handlers, from an app with a tiny model loaded."""
    root = tmp_path_factory.mktemp("bad-input-app")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAYGROUND_DATA_DIR", str(root / "data"))
        mp.setenv("PLAYGROUND_ADAPTERS_DIR", str(root / "adapters"))
        from playground.context import AppContext
        from playground.models import LoadOptions
        from playground.ui.app import build_app

        ctx = AppContext()
        ctx.models.load(str(tiny_llama), LoadOptions(precision="fp32"))
        demo = build_app(ctx)
        by_name = {}
        for fn in demo.fns.values():
            by_name.setdefault(getattr(fn.fn, "__name__", ""), fn.fn)
        yield SimpleNamespace(
            ctx=ctx, by_name=by_name, on_upload=by_name["on_data_change"], start=by_name["run_eval"]
        )
        demo.close()


def _start(handlers, upload: Path):
    """Press Start evaluation with `upload` as the test set and perplexity ticked."""
    args = [None, str(upload), None, "", "plain", "", "", "(none)", ["perplexity"], 0, "first", "", None]
    args += ["0", 0, 16, SessionRuns(), SimpleNamespace(session_hash="bad-input"), lambda *a, **k: None]
    return handlers.start(*args)


def _message(call) -> str:
    with pytest.raises(gr.Error) as info:
        call()
    return info.value.message


PROBLEM = "⚠️ **Cannot use this file.** "


def _shown(text: str) -> str:
    """The info line as the browser renders it: the Markdown escapes dropped."""
    return re.sub(r"\\(.)", r"\1", text)


def _upload_problem(handlers, path: Path) -> str:
    """What the info line under the upload says about a file it cannot use."""
    text = handlers.on_upload(None, str(path), None)
    assert text.startswith(PROBLEM), text
    return _shown(text[len(PROBLEM) :])


@pytest.fixture
def saved_before(handlers, tmp_path):
    """What a student had before the bad uploads: a finished run, an upload and an adapter."""
    from playground.data import save_upload
    from playground.leaderboard import ExampleResult, RunSpec
    from playground.paths import adapters_dir

    board = handlers.ctx.leaderboard
    run = board.start_run(RunSpec(model="earlier", task="perplexity", dataset_name="kept.json"))
    board.finish_run(run, {"mean_perplexity": 4.2}, [ExampleResult(idx=0, prompt="p", reference="r")])
    good = tmp_path / "good.json"
    good.write_bytes(_json(_rows(2)))
    upload = save_upload(good)
    adapter = adapters_dir() / "mine"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")

    def intact() -> bool:
        record = board.run(run)
        return (
            record.status == "finished"
            and record.metrics == {"mean_perplexity": 4.2}
            and len(board.examples(run)) == 1
            and upload.read_bytes() == good.read_bytes()
            and (adapter / "adapter_config.json").read_text() == "{}"
        )

    assert intact()
    return intact


@pytest.mark.parametrize("name, content, row, problem", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_upload_is_rejected_naming_file_row_and_problem(
    handlers, saved_before, tmp_path, name, content, row, problem
):
    path = _write(tmp_path, name, content)
    message = _upload_problem(handlers, path)
    assert message.startswith(f"{name}{f', row {row}' if row else ''}: "), message
    assert re.search(problem, message), message
    assert "Traceback" not in message and "Unexpected error" not in message
    # Start evaluation with the same file says the same thing (in a toast).
    assert _message(lambda: _start(handlers, path)) == message
    assert saved_before()


def test_output_column_all_empty_is_described_then_refused_at_start(handlers, saved_before, tmp_path):
    path = _write(tmp_path, *EMPTY_OUTPUTS)
    described = handlers.on_upload(None, str(path), None)
    assert described.startswith("no-answers.json: 3 rows") and "No outputs" in described
    message = _message(lambda: _start(handlers, path))
    assert message.startswith("no-answers.json: 3 of 3 examples have no reference output (first: id 1)")
    assert "ground-truth file" in message
    assert saved_before()


def test_a_good_upload_after_bad_ones_still_works(handlers, saved_before, tmp_path):
    bad = _write(tmp_path, "truncated.json", MALFORMED[1][1])
    assert "truncated" in _upload_problem(handlers, bad)
    good = _write(tmp_path, "fine.json", _json(_rows(3)))
    assert handlers.on_upload(None, str(good), None).startswith("fine.json: 3 rows")
    assert saved_before()


# -- property-based: the upload handler, the loader, the template renderer -------------------------

PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".json", ".jsonl", ".csv", ".tsv"]))
def test_any_bytes_give_a_description_or_a_message_naming_the_file(handlers, tmp_path, content, suffix):
    path = tmp_path / f"whatever{suffix}"
    path.write_bytes(content)
    text = handlers.on_upload(None, str(path), None)  # an unexpected error would raise
    if text.startswith(PROBLEM):
        text = _shown(text[len(PROBLEM) :])
    assert text.startswith(path.name), text


CELL = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")) | st.sampled_from(list('",{}床')),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and s)


@PROPERTY
@given(
    rows=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=8),
    data=st.data(),
    fmt=st.sampled_from(["json", "jsonl", "csv"]),
)
def test_one_broken_row_anywhere_is_named_by_its_number(tmp_path, rows, data, fmt):
    from playground.data import load_dataset

    bad = data.draw(st.integers(0, len(rows) - 1), label="broken row (0-based)")
    dicts = [{"instruction": i, "output": o} for i, o in rows]
    path = tmp_path / f"broken.{fmt}"
    if fmt == "json":
        dicts[bad] = ["not", "an", "object"]
        path.write_text(json.dumps(dicts, ensure_ascii=False), encoding="utf-8")
    elif fmt == "jsonl":
        lines = [json.dumps(d, ensure_ascii=False) for d in dicts]
        lines[bad] = lines[bad][:-1]  # lose the closing brace
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["instruction", "output"])
        for n, (i, o) in enumerate(rows):
            writer.writerow([i] if n == bad else [i, o])
        path.write_text(out.getvalue(), encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert info.value.row == bad + 1 and info.value.file == path.name
    assert str(info.value).startswith(f"{path.name}, row {bad + 1}: ")


SEGMENT = st.text(max_size=8).filter(lambda s: "{" not in s)
VALUE = st.text(max_size=10) | st.sampled_from(["{input}", "{system}", "{instruction}", "{}", "{{x}}", "\\1"])
PLACEHOLDER = st.sampled_from(["{system}", "{instruction}", "{input}"])


@PROPERTY
@given(
    parts=st.lists(st.tuples(SEGMENT, PLACEHOLDER), max_size=5),
    tail=SEGMENT,
    instruction=VALUE,
    input_text=VALUE,
    system=VALUE,
)
def test_raw_templates_substitute_each_placeholder_once_and_literally(
    parts, tail, instruction, input_text, system
):
    text = "".join(a + b for a, b in parts) + tail
    values = {"{system}": system, "{instruction}": instruction, "{input}": input_text}
    expected = "".join(a + values[b] for a, b in parts) + tail
    template = PromptTemplate("custom", text, system="default system")
    assert template.render(instruction, input_text, system=system) == expected
    # Without an explicit system text the template's own is used.
    default = "".join(a + {**values, "{system}": "default system"}[b] for a, b in parts) + tail
    assert template.render(instruction, input_text) == default


# -- adapters that do not belong to the loaded model ----------------------------------------------


def _lora(base_model, folder: Path, base_name: str | None) -> None:
    from peft import LoraConfig, get_peft_model

    get_peft_model(
        base_model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    ).save_pretrained(folder)
    config_file = folder / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_name
    config_file.write_text(json.dumps(config))


def test_adapter_made_for_another_base_model_is_refused_by_name(handlers, tiny_mistral):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from playground.paths import adapters_dir

    on_adapter = handlers.by_name["on_adapter"]
    _lora(
        AutoModelForCausalLM.from_pretrained(tiny_mistral),
        adapters_dir() / "mistral-poems",
        str(tiny_mistral),
    )
    message = _message(lambda: on_adapter("mistral-poems"))
    assert message == (
        f"Adapter mistral-poems was trained on {tiny_mistral}, but the loaded model is "
        f"{handlers.ctx.models.current.name}. Load {tiny_mistral} first."
    )
    # No base model recorded, and other shapes: refused when the weights do not fit.
    small = LlamaConfig(
        vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    _lora(AutoModelForCausalLM.from_config(small), adapters_dir() / "small-poems", None)
    message = _message(lambda: on_adapter("small-poems"))
    assert message.startswith("Adapter small-poems does not fit") and "another base model" in message
    # Nothing of the refused adapters stays behind in the model.
    model = handlers.ctx.models.current.model
    assert handlers.ctx.models.current.adapters == {}
    assert not any("lora" in n for n, _ in model.named_modules()) and not hasattr(model, "peft_config")


def test_column_mapping_typed_in_the_ui_overrides_detection(tmp_path):
    import json

    from playground.errors import PlaygroundError
    from playground.ui.data_picker import load_choice, parse_mapping

    path = tmp_path / "quiz.json"
    path.write_text(json.dumps([{"question": "2+2?", "answer": "4"}, {"question": "3+3?", "answer": "6"}]))
    with pytest.raises(PlaygroundError, match="question"):  # unknown shape: the message lists the columns
        load_choice(None, str(path))
    data = load_choice(None, str(path), mapping="instruction=question, output=answer")
    assert data.shape == "custom"
    assert [(e.instruction, e.output) for e in data.examples] == [("2+2?", "4"), ("3+3?", "6")]
    with pytest.raises(PlaygroundError, match="role=column"):
        parse_mapping("question")
    with pytest.raises(PlaygroundError, match="needs instruction"):
        parse_mapping("output=answer")
    assert parse_mapping("  ") is None
