"""Load data sets (JSON, JSON Lines, CSV) into a Dataset, whatever layout the student brings.

Every way a file can be wrong ends in a DatasetError naming the file, the row and the problem:
nothing is half-loaded, and rows that are dropped are counted in `Dataset.notes`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from playground.atomic import TEMP_PREFIX, atomic_write_bytes
from playground.data_types import Dataset, Example
from playground.errors import DatasetError
from playground.hf_data import HUB_PREFIX, PARQUET, is_hf_source, is_saved_dataset, read_hf
from playground.limits import current_limits
from playground.messages import Message
from playground.names import inside
from playground.paths import data_dir

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MAX_FIELD_CHARS = 1_000_000
DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", PARQUET)
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


def datasets_dir() -> Path:
    """Where the operator puts data sets for everyone (files, parquet, save_to_disk folders)."""
    path = data_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


SHAPE_COLUMNS = {
    "adl": "{id, instruction, output}",
    "alpaca": "{instruction, input, output}",
    "bigbench": "{input, target}",
    "summarization": "{dialogue, summary}",
}
# What each detected shape is, in words a student knows.
SHAPE_NAMES = {
    "adl": "the NTU ADL homework format",
    "alpaca": "the Alpaca format",
    "bigbench": "the BIG-bench format",
    "summarization": "a summarization set",
}
_ACCEPTED = (
    "adl {id, instruction, output}; alpaca {instruction, input, output}; "
    "bigbench {input, target} or {inputs, targets} or {input, target_scores}; "
    "summarization {dialogue or conversation, summary}"
)
_KIND_LABELS = {
    ".json": "JSON",
    ".jsonl": "JSON Lines",
    ".ndjson": "JSON Lines",
    ".csv": "CSV",
    ".tsv": "TSV",
}
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!\x1a", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.xls or .doc)"),
)
# Lone surrogates only arrive through JSON "\ud800" escapes and cannot be saved as UTF-8 later.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column plays which role; set by the user when detection cannot tell."""

    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class _Row:
    number: int  # 1-based data row, as the user counts them
    line: int | None  # where it starts in the file, for line-based formats
    values: Any


@dataclass(frozen=True)
class _Plan:
    shape: str
    instruction: str
    input: str | None = None
    answers: tuple[str, ...] = ()
    scores: str | None = None  # BIG-bench {answer: score}, used where a row has no text answer
    id: str | None = None


def load_dataset(
    path: str | Path,
    *,
    references: str | Path | None = None,
    mapping: ColumnMapping | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    require_outputs: bool = False,
) -> Dataset:
    """Read a data file (and optionally a one-answer-per-line references file) into a Dataset."""
    label = name or (str(path) if str(path).startswith(HUB_PREFIX) else Path(path).name)
    content, rows, columns, read_notes = _read_rows(path, label, max_bytes)
    path = Path(path)
    plan = _detect(label, columns, mapping)
    ref_data = None
    ref_lines = None
    if references is not None:
        ref_path = Path(references)
        ref_data = _read_bytes(ref_path, ref_path.name, max_bytes)
        ref_lines = _reference_lines(ref_path.name, ref_data, label, len(rows))
    examples, notes = _build(label, rows, plan, ref_lines, require_outputs)
    notes = read_notes + _column_notes(plan, columns, mapping) + notes
    if references is not None:
        own = f" (the file's own '{plan.answers[0]}' column was not used)" if plan.answers else ""
        notes.append(f"Outputs come from {Path(references).name}, one line per row{own}.")
    return Dataset(
        name=label,
        examples=examples,
        shape=plan.shape,
        source=str(path),
        # A Hugging Face dataset is hashed by its files (or hub name), standing in for a file's bytes.
        sha256=_sha256(content, ref_data),
        notes=notes,
    )


def _read_rows(
    path: str | Path, label: str, max_bytes: int
) -> tuple[bytes, list[_Row], list[str], list[str]]:
    """(what to hash, rows, columns, notes) of a JSON / CSV file or a Hugging Face dataset."""
    if is_hf_source(path):
        found = read_hf(path, label, max_bytes)
        rows = [_Row(number, None, values) for number, values in enumerate(found.rows, start=1)]
        return f"hf-dataset:{found.sha256}".encode(), rows, found.columns, found.notes
    data = _read_bytes(Path(path), label, max_bytes)
    with _parse_slot(len(data), label):
        rows, columns = _parse(Path(path), label, data)
    current_limits().check_rows(len(rows), label)
    return data, rows, columns, []


# Parsing takes about 15 times a file's size in memory: big files are read a few at a time.
BIG_FILE_BYTES = 16 * 1024 * 1024
PARSE_WAIT_S = 120.0
_parse_slots: threading.BoundedSemaphore | None = None
_parse_slots_lock = threading.Lock()


@contextmanager
def _parse_slot(size: int, label: str) -> Iterator[None]:
    global _parse_slots
    if size < BIG_FILE_BYTES:
        yield
        return
    with _parse_slots_lock:
        if _parse_slots is None:
            _parse_slots = threading.BoundedSemaphore(current_limits().parse_concurrency)
        slots = _parse_slots
    if not slots.acquire(timeout=PARSE_WAIT_S):
        raise DatasetError(
            label, "cannot be read now: the server is reading other large files. Try again soon."
        )
    try:
        yield
    finally:
        slots.release()


def read_columns(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """The column names found in a data file, for the column-mapping controls."""
    return _read_rows(path, Path(path).name, max_bytes)[2]


def dataset_summary(dataset: Dataset) -> str:
    """One short sentence about a loaded data set, plus its notes."""
    missing = sum(e.output is None for e in dataset.examples)
    columns = SHAPE_COLUMNS.get(dataset.shape)
    kind = SHAPE_NAMES.get(dataset.shape, dataset.shape)
    shape = f"columns {columns.strip('{}')} ({kind})" if columns else kind
    text = f"{dataset.name}: {len(dataset)} rows, {shape}; {missing} without output."
    return " ".join([text, *dataset.notes])


def list_examples() -> list[Path]:
    """The data sets the pages offer by name: the demo files in the repository's examples/ folder,
    then what the operator put in the data folder's datasets/ (data files, parquet, save_to_disk
    folders). Pages pick only from this list, so no name reaches a file outside these folders."""
    found: list[Path] = []
    for folder in (EXAMPLES_DIR, datasets_dir()):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if _offered(folder, p))
    return found


def _offered(folder: Path, path: Path) -> bool:
    if path.name.startswith((".", TEMP_PREFIX)) or not inside(folder, path):
        return False
    return (path.is_file() and path.suffix.lower() in DATA_SUFFIXES) or is_saved_dataset(path)


def dataset_sha256(path: str | Path, references: str | Path | None = None) -> str:
    """Hash of the data file's bytes, and of the references file's when there is one."""
    ref_data = Path(references).read_bytes() if references is not None else None
    return _sha256(Path(path).read_bytes(), ref_data)


def uploads_dir(owner_id: str) -> Path:
    """One folder per owner (named by a hash of the id: user names stay out of paths)."""
    folder = data_dir() / "uploads" / hashlib.sha256(owner_id.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_upload(
    src_path: str | Path, owner_id: str = "system", *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Path:
    """Keep an uploaded file for a job that reads it later: stored once per owner by content hash.

    Then the owner's old uploads are cleaned: those past the age limit, then the oldest until the
    owner is within the quota (PLAYGROUND_UPLOAD_MAX_AGE_DAYS, PLAYGROUND_UPLOAD_QUOTA_MB).
    """
    src = Path(src_path)
    data = _read_bytes(src, src.name, max_bytes)
    suffix = re.sub(r"[^\w.]+", "", src.suffix.lower())[:10]
    folder = uploads_dir(owner_id)
    dest = folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if dest.is_file():
        os.utime(dest)  # used again: the age limit counts from now
    else:
        atomic_write_bytes(dest, data)
    prune_uploads(folder, keep=dest)
    return dest


def prune_uploads(folder: Path, keep: Path | None = None) -> list[Path]:
    """Remove uploads older than the age limit, then the oldest beyond the quota; returns them."""
    limits = current_limits()
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(TEMP_PREFIX)),
        key=lambda p: p.stat().st_mtime,
    )
    removed: list[Path] = []
    cutoff = time.time() - limits.upload_max_age_days * 86400
    total = sum(p.stat().st_size for p in files)
    for path in files:
        if path == keep:
            continue
        too_old = limits.upload_max_age_days and path.stat().st_mtime < cutoff
        over_quota = limits.upload_quota_mb and total > limits.upload_quota_mb * 1024 * 1024
        if too_old or over_quota:
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# --- reading bytes into rows -------------------------------------------------------------------


def _sha256(data: bytes, ref_data: bytes | None) -> str:
    digest = hashlib.sha256(data)
    if ref_data is not None:
        # The separator keeps (a+b, c) and (a, b+c) from hashing alike.
        digest.update(b"\x00references\x00")
        digest.update(ref_data)
    return digest.hexdigest()


def _read_bytes(path: Path, label: str, max_bytes: int) -> bytes:
    try:
        if path.is_dir():
            raise DatasetError(label, Message("data.is_folder"))
        # Size first: a 5 GB upload must be refused without reading it.
        size = os.path.getsize(path)
        if size > max_bytes:
            raise DatasetError(label, Message("data.too_big", size=_size(size), limit=_size(max_bytes)))
        if size == 0:
            raise DatasetError(label, Message("data.empty_bytes"))
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(label, Message("data.not_found")) from None
    except OSError as e:
        raise DatasetError(label, Message("data.unreadable", reason=e.strerror or e)) from None


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _decode(label: str, data: bytes, kind: str) -> str:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            hint = " (an Excel .xlsx file is one too: save it as CSV UTF-8)" if "ZIP" in what else ""
            raise DatasetError(label, f"this looks like {what}, not {kind}{hint}.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError(label, Message("data.utf16"))
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DatasetError(
            label,
            f"contains a NUL byte at byte offset {nul} (line {_line_at(data, nul)}): "
            f"this looks like a binary file, not {kind}.",
        )
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + bom
        raise DatasetError(
            label,
            Message(
                "data.not_utf8",
                byte=f"{data[offset]:02X}",
                offset=offset,
                line=_line_at(data, offset),
                reason=e.reason,
            ),
        ) from None


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


_HUGE_NUMBER = "has a number with thousands of digits, which no data set needs; quote it as text."
_LISTED_COLUMNS = 20


def column_list(columns: list[Any]) -> str:
    """Column names for a message: the first few, each cut short, and how many there are in all."""
    shown = [str(c) if len(str(c)) <= 40 else str(c)[:40] + "…" for c in columns[:_LISTED_COLUMNS]]
    more = len(columns) - len(shown)
    return ", ".join(shown) + (f", … ({len(columns):,} columns in all)" if more > 0 else "")


def _parse(path: Path, label: str, data: bytes) -> tuple[list[_Row], list[str]]:
    suffix = path.suffix.lower()
    text = _decode(label, data, _KIND_LABELS.get(suffix, "a data file"))
    if not text.strip():
        raise DatasetError(label, Message("data.blank"))
    fmt = suffix if suffix in _KIND_LABELS else _sniff(text)
    if fmt == ".json":
        rows = _parse_json(label, text)
    elif fmt in (".jsonl", ".ndjson"):
        rows = _parse_jsonl(label, text)
    else:
        return _parse_csv(label, text, "\t" if fmt == ".tsv" else ",")
    if not rows:
        raise DatasetError(label, Message("data.no_rows"))
    for row in rows:
        if not isinstance(row.values, dict):
            _fail(label, row, Message("data.row_not_object", kind=_kind(row.values)))
    columns = list(dict.fromkeys(key for row in rows for key in row.values))
    return rows, columns


def _sniff(text: str) -> str:
    lines = [line for line in text.split("\n") if line.strip()]
    first = lines[0].lstrip()
    if first.startswith("["):
        return ".json"
    if first.startswith("{"):
        try:
            json.loads(lines[0])
        except (json.JSONDecodeError, RecursionError):
            return ".json"
        return ".jsonl" if len(lines) > 1 else ".json"
    return ".tsv" if "\t" in first and "," not in first else ".csv"


def _json_problem(e: json.JSONDecodeError, text: str) -> Message:
    where = Message("data.json_where", line=e.lineno, column=e.colno)
    if not text[e.pos :].strip():
        return Message("data.json_truncated", where=where, reason=e.msg)
    if e.msg.startswith("Unterminated string"):
        # The scanner only says this when it reached the end of the file inside a string.
        return Message("data.json_unterminated", where=where)
    key = "data.json_invalid_extra" if e.msg == "Extra data" else "data.json_invalid"
    return Message(key, where=where, reason=e.msg)


def _parse_json(label: str, text: str) -> list[_Row]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(label, _json_problem(e, text)) from None
    except RecursionError:
        raise DatasetError(label, "is nested too deeply to be a data set.") from None
    except ValueError:
        # Python refuses to convert integers of more than 4,300 digits (a denial-of-service guard).
        raise DatasetError(label, _HUGE_NUMBER) from None
    if isinstance(doc, dict) and isinstance(doc.get("examples"), list):
        doc = doc["examples"]  # a BIG-bench task.json
    if isinstance(doc, dict):
        keys = ", ".join(list(map(str, doc))[:10]) or "none"
        raise DatasetError(label, Message("data.json_object", keys=keys))
    if not isinstance(doc, list):
        raise DatasetError(label, Message("data.json_not_list", kind=_kind(doc)))
    return [_Row(i + 1, None, value) for i, value in enumerate(doc)]


def _parse_jsonl(label: str, text: str) -> list[_Row]:
    rows: list[_Row] = []
    # split("\n"), not splitlines(): JSON leaves U+2028 and friends unescaped inside strings.
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            array = rows == [] and line.strip() == "["
            key = "data.jsonl_invalid_array" if array else "data.jsonl_invalid"
            problem = Message(key, line=line_no, column=e.colno, reason=e.msg)
            raise DatasetError(label, problem, row=len(rows) + 1) from None
        except RecursionError:
            raise DatasetError(label, f"line {line_no} is nested too deeply.", row=len(rows) + 1) from None
        except ValueError:
            raise DatasetError(label, f"line {line_no}: {_HUGE_NUMBER}", row=len(rows) + 1) from None
        rows.append(_Row(len(rows) + 1, line_no, value))
    return rows


def _parse_csv(label: str, text: str, delimiter: str) -> tuple[list[_Row], list[str]]:
    # The default limit (131,072 characters) would hide our own clearer per-field message.
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(2**31 - 1)
    first = next(line for line in text.split("\n") if line.strip())
    if delimiter == "," and "," not in first:
        delimiter = next((d for d in ("\t", ";") if d in first), ",")  # Excel in some locales
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[_Row] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _csv_header(label, cells)
                continue
            if len(cells) > len(header) and not any(c.strip() for c in cells[len(header) :]):
                cells = cells[: len(header)]  # trailing empty cells, as spreadsheets write
            if len(cells) != len(header):
                missing = column_list(header[len(cells) :])
                key = "data.csv_cells_missing" if missing else "data.csv_cells"
                problem = Message(key, cells=len(cells), columns=len(header), missing=missing, line=line)
                raise DatasetError(label, problem, row=len(rows) + 1)
            rows.append(_Row(len(rows) + 1, line, dict(zip(header, cells, strict=True))))
    except csv.Error as e:
        problem = Message("data.csv_invalid", line=reader.line_num, reason=e)
        raise DatasetError(label, problem, row=len(rows) + 1) from None
    if header is None or not rows:
        raise DatasetError(label, Message("data.header_no_rows" if header else "data.no_rows"))
    return rows, header


def _csv_header(label: str, cells: list[str]) -> list[str]:
    header = [cell.strip() or f"column {i + 1}" for i, cell in enumerate(cells)]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DatasetError(label, Message("data.csv_header_twice", name=name))
        seen.add(name)
    return header


# --- from rows to examples ---------------------------------------------------------------------


def _detect(label: str, columns: list[str], mapping: ColumnMapping | None) -> _Plan:
    if mapping is not None:
        return _plan_from_mapping(label, columns, mapping)
    by_name = {str(c).strip().lower(): c for c in reversed(columns)}

    def find(*names: str) -> str | None:
        return next((by_name[n] for n in names if n in by_name), None)

    id_col = find("id")
    if instruction := find("instruction"):
        input_col = find("input")
        output = find("output")
        return _Plan(
            "alpaca" if input_col else "adl", instruction, input_col, (output,) if output else (), id=id_col
        )
    if dialogue := find("dialogue", "conversation"):
        # DialogSum's test split has summary1..summary3: all of them become references.
        summaries = sorted(
            (c for c in columns if re.fullmatch(r"summary\d*", str(c).strip().lower())),
            key=lambda c: (len(str(c)), str(c)),
        )
        return _Plan("summarization", dialogue, answers=tuple(summaries), id=id_col)
    if question := find("input", "inputs"):
        targets = find("targets", "target")
        answers = (targets,) if targets else ()
        return _Plan("bigbench", question, answers=answers, scores=find("target_scores"), id=id_col)
    found = column_list(columns) or "none"
    raise DatasetError(label, Message("data.no_instruction_column", found=found, accepted=_ACCEPTED))


def _plan_from_mapping(label: str, columns: list[str], mapping: ColumnMapping) -> _Plan:
    roles = {
        "instruction": mapping.instruction or None,
        "input": mapping.input or None,
        "output": mapping.output or None,
        "id": mapping.id or None,
    }
    if roles["instruction"] is None:
        raise DatasetError(label, Message("data.mapping_no_instruction"))
    for role, column in roles.items():
        if column is not None and column not in columns:
            found = column_list(columns)
            raise DatasetError(
                label, Message("data.mapping_no_column", column=column, role=role, found=found)
            )
    output = roles["output"]
    return _Plan("custom", roles["instruction"], roles["input"], (output,) if output else (), id=roles["id"])


def _column_notes(plan: _Plan, columns: list[str], mapping: ColumnMapping | None) -> list[str]:
    notes = []
    if mapping is not None:
        used = [("instruction", plan.instruction), ("input", plan.input), ("id", plan.id)]
        used.insert(2, ("output", plan.answers[0] if plan.answers else None))
        notes.append("Columns: " + ", ".join(f"{role} = {col}" for role, col in used if col) + ".")
    used_cols = {plan.instruction, plan.input, plan.id, plan.scores, *plan.answers}
    ignored = [str(c) for c in columns if c not in used_cols]
    if ignored:
        notes.append(f"Ignored columns: {column_list(ignored)}.")
    return notes


def _build(
    label: str,
    rows: list[_Row],
    plan: _Plan,
    ref_lines: list[str] | None,
    require_outputs: bool,
) -> tuple[list[Example], list[str]]:
    examples: list[Example] = []
    skipped: list[int] = []
    id_rows: dict[str, int] = {}
    for row in rows:
        instruction = _text(label, row, plan.instruction)
        if instruction is None or not instruction.strip():
            skipped.append(row.number)
            continue
        input_text = _text(label, row, plan.input) if plan.input else None
        answers = [] if ref_lines is not None else _answers(label, row, plan)
        if ref_lines is not None and ref_lines[row.number - 1].strip():
            answers = [ref_lines[row.number - 1]]
        example_id = _id(label, row, plan.id)
        if example_id in id_rows:
            _fail(label, row, Message("data.row.repeated_id", id=example_id, first=id_rows[example_id]))
        id_rows[example_id] = row.number
        many = len(answers) > 1 or (plan.shape == "bigbench" and ref_lines is None)
        examples.append(
            Example(
                id=example_id,
                instruction=instruction,
                input=input_text or "",
                output=answers[0] if answers else None,
                references=tuple(answers) if many and answers else (),
            )
        )
    if not examples:
        raise DatasetError(label, Message("data.no_usable_rows", rows=len(rows), column=plan.instruction))
    return examples, _row_notes(label, plan, examples, skipped, ref_lines, require_outputs)


def _row_notes(
    label: str,
    plan: _Plan,
    examples: list[Example],
    skipped: list[int],
    ref_lines: list[str] | None,
    require_outputs: bool,
) -> list[str]:
    notes = []
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (", ..." if len(skipped) > 10 else "")
        notes.append(f"{_rows(len(skipped))} skipped because '{plan.instruction}' was empty: rows {shown}.")
    missing = sum(e.output is None for e in examples)
    if missing == len(examples):
        if require_outputs:
            if ref_lines is not None:
                raise DatasetError(label, Message("data.references_empty"))
            if not plan.answers and not plan.scores:
                raise DatasetError(label, Message("data.no_output_column"))
            column = " / ".join(str(c) for c in (*plan.answers, plan.scores) if c)
            raise DatasetError(label, Message("data.output_empty", column=column))
        notes.append("No outputs: a test file without answers.")
    elif missing:
        notes.append(f"{_rows(missing)} without an output.")
    return notes


def _reference_lines(ref_label: str, data: bytes, data_label: str, n_rows: int) -> list[str]:
    text = _decode(ref_label, data, "text")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()  # the final newline, and blank lines editors leave at the end
    if len(lines) != n_rows:
        problem = Message("data.references_count", rows=n_rows, references=ref_label, lines=len(lines))
        raise DatasetError(data_label, problem)
    for i, line in enumerate(lines, 1):
        if len(line) > MAX_FIELD_CHARS:
            raise DatasetError(
                ref_label, f"line {i} has {len(line):,} characters; the limit is {MAX_FIELD_CHARS:,}.", row=i
            )
    return lines


def _text(label: str, row: _Row, column: str | None) -> str | None:
    value = row.values.get(column) if column is not None else None
    if value is None:
        return None
    if not isinstance(value, str):
        _fail(label, row, Message("data.row.not_text", column=column, kind=_kind(value)))
    return _checked(label, row, column, value)


def _checked(label: str, row: _Row, column: str, value: str) -> str:
    if len(value) > MAX_FIELD_CHARS:
        too_long = Message(
            "data.row.too_long", column=column, chars=f"{len(value):,}", limit=f"{MAX_FIELD_CHARS:,}"
        )
        _fail(label, row, too_long)
    if _SURROGATE.search(value):
        _fail(label, row, Message("data.row.surrogate", column=column))
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")


def _answers(label: str, row: _Row, plan: _Plan) -> list[str]:
    answers: list[str] = []
    for column in plan.answers:
        value = row.values.get(column)
        if value is None:
            continue
        if isinstance(value, str):
            answers.append(_checked(label, row, column, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            answers += [_checked(label, row, column, v) for v in value]
        else:
            _fail(label, row, Message("data.row.not_texts", column=column, kind=_kind(value)))
    answers = [a for a in answers if a.strip()]
    if not answers and plan.scores and row.values.get(plan.scores) is not None:
        answers = [a for a in _best_scored(label, row, plan.scores, row.values[plan.scores]) if a.strip()]
    return answers


def _best_scored(label: str, row: _Row, column: str, value: Any) -> list[str]:
    numbers = isinstance(value, dict) and all(
        isinstance(s, int | float) and not isinstance(s, bool) for s in value.values()
    )
    if not numbers:
        _fail(label, row, Message("data.row.not_scores", column=column, kind=_kind(value)))
    if not value:
        return []
    best = max(value.values())
    return [_checked(label, row, column, answer) for answer, score in value.items() if score == best]


def _id(label: str, row: _Row, column: str | None) -> str:
    if column is None:
        return str(row.number)
    value = row.values.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return _checked(label, row, column, value)
    if value is None or isinstance(value, str):
        _fail(label, row, Message("data.row.no_id", column=column))
    _fail(label, row, Message("data.row.bad_id", column=column, kind=_kind(value)))


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _kind(value: Any) -> Message:
    if isinstance(value, bool):
        return Message("data.kind.bool", value=json.dumps(value))
    if isinstance(value, int | float):
        return Message("data.kind.number", value=value)
    if isinstance(value, str):
        return Message("data.kind.text")
    if isinstance(value, list):
        return Message("data.kind.list")
    if isinstance(value, dict):
        return Message("data.kind.object")
    return (
        Message("data.kind.null") if value is None else Message("data.kind.other", name=type(value).__name__)
    )


def _fail(label: str, row: _Row, problem: str | Message) -> NoReturn:
    if isinstance(problem, Message):
        if row.line is not None:
            raise DatasetError(
                label, Message("data.row_at_line", problem=problem, line=row.line), row=row.number
            )
        raise DatasetError(label, Message("data.row_end", problem=problem), row=row.number)
    where = f" (line {row.line})" if row.line is not None else ""
    raise DatasetError(label, problem.removesuffix(".") + where + ".", row=row.number)
