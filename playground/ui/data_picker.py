"""A data-set picker shared by tabs: a demo set from examples/, or an uploaded file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from playground.data import ColumnMapping, list_examples, load_dataset, save_upload
from playground.data_types import Dataset
from playground.errors import PlaygroundError

UPLOAD_HEIGHT = 140  # room for the "Drop file here - or - Click to Upload" text at any width


@dataclass
class DataPicker:
    example: gr.Dropdown
    upload: gr.File

    @property
    def inputs(self) -> list:
        return [self.example, self.upload]


def build_data_picker(
    label: str,
    default: str | None = None,
    elem_id: str = "",
    allow_none: bool = False,
    labels: tuple[Any, Any] | None = None,
    none_label: Any = "(none)",
) -> DataPicker:
    """`labels`: the demo-set and upload labels whole (catalogue words), instead of ones made from `label`."""
    names = [p.name for p in list_examples()]
    choices = ([(none_label, "")] if allow_none else []) + [(n, n) for n in names]
    example_label, upload_label = labels or (
        f"{label}: demo set",
        f"{label}: or upload JSON / JSONL / CSV / parquet",
    )
    value = default if default in names else ("" if allow_none else (names[0] if names else None))
    with gr.Group():
        example = gr.Dropdown(choices, value=value, label=example_label, elem_id=f"{elem_id}-example")
        upload = gr.File(
            label=upload_label,
            file_types=[".json", ".jsonl", ".csv", ".tsv", ".parquet"],
            elem_id=f"{elem_id}-upload",
            height=UPLOAD_HEIGHT,
        )
    # An uploaded file is what gets used, so the demo choice must not keep showing another file.
    upload.upload(lambda: gr.update(value=None), None, example, queue=False)
    return DataPicker(example, upload)


def resolve_path(example: str | None, upload: str | None, keep_for: str | None = None) -> Path | None:
    """The chosen file: an upload wins over a demo set.

    An upload is read where gradio put it; only work that reads it later (a training job) keeps a
    copy, in `keep_for`'s upload folder (stored once per content).
    """
    if upload:
        return save_upload(upload, keep_for) if keep_for else Path(upload)
    if example:
        for path in list_examples():
            if path.name == example:
                return path
        raise PlaygroundError(f"No demo data set {example}.")
    return None


MAPPING_ROLES = ("instruction", "input", "output", "id")


def parse_mapping(text: str | None) -> ColumnMapping | None:
    """ "instruction=question, output=answer" -> ColumnMapping; blank -> None (detect the shape)."""
    if not text or not text.strip():
        return None
    roles: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        role, sep, column = (x.strip() for x in part.partition("="))
        if not sep or role not in MAPPING_ROLES or not column:
            raise PlaygroundError(
                f"Column mapping {part!r}: write role=column with roles {', '.join(MAPPING_ROLES)}, "
                "e.g. instruction=question, output=answer."
            )
        roles[role] = column
    if "instruction" not in roles:
        raise PlaygroundError("A column mapping needs instruction=COLUMN (the text the model is asked).")
    return ColumnMapping(**roles)


def load_choice(
    example: str | None,
    upload: str | None,
    references: str | None = None,
    what: str = "data set",
    mapping: str | None = None,
) -> Dataset:
    path = resolve_path(example, upload)
    if path is None:
        raise PlaygroundError(f"Pick a {what} or upload one.")
    name = Path(upload).name if upload else None
    return load_dataset(path, references=references, name=name, mapping=parse_mapping(mapping))
