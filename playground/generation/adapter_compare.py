"""Base model vs adapters: the same prompts, decoding and seed, one column per adapter.

All adapters sit on one copy of the base weights (peft adapters by name); the rows of all
columns decode in one batch of the generation engine, each row naming its adapter (None for the
base). `restoring_adapters` puts the model back as it was, so the comparison never leaves an
adapter attached or switched on for the other tabs.
"""

from __future__ import annotations

import csv
import io
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from playground.atomic import atomic_write_bytes, atomic_write_json
from playground.errors import Cancelled, PlaygroundError
from playground.generation.compare import RowRequest, generate_rows
from playground.generation.settings import DecodingSettings
from playground.models.access import model_access
from playground.models.adapters import attach_adapter, detach_adapters
from playground.models.loader import LoadedModel
from playground.paths import private_export_dir

BASE_LABEL = "base model"  # has a space, so no adapter (names are [A-Za-z0-9_-]) can take it
EXPORT_FORMATS = ("csv", "json")


@dataclass
class TableRow:
    prompt: str  # as shown to the user, usually the instruction
    reference: str | None
    outputs: list[str]  # one per table column


@dataclass(frozen=True)
class ColumnPrompts:
    """One column's own prompts (e.g. in the template its adapter was trained with) and stops."""

    prompts: Sequence[str]
    stop: tuple[str, ...] = ()
    template: str = ""


@dataclass
class ComparisonTable:
    columns: list[str]  # BASE_LABEL for the base model, else the adapter's name
    rows: list[TableRow]
    settings: DecodingSettings  # with the seed that was used
    seconds: list[float] = field(default_factory=list)  # generation time per column
    templates: list[str] = field(default_factory=list)  # per column, when columns have their own

    @property
    def has_references(self) -> bool:
        return any(r.reference is not None for r in self.rows)

    def header(self) -> list[str]:
        return ["#", "prompt"] + (["reference"] if self.has_references else []) + self.columns

    def records(self) -> list[list[str]]:
        """One list per prompt, in `header()` order."""
        refs = self.has_references
        return [
            [str(i), r.prompt] + ([r.reference or ""] if refs else []) + list(r.outputs)
            for i, r in enumerate(self.rows, start=1)
        ]


def column_label(name: str | None) -> str:
    return BASE_LABEL if name is None else name


def attach_adapters(loaded: LoadedModel, folders: Sequence[str | Path]) -> list[str]:
    """Load adapter folders onto the resident model; their names, in order."""
    return [attach_adapter(loaded, folder) for folder in folders]


@contextmanager
def restoring_adapters(loaded: LoadedModel) -> Iterator[None]:
    """Whatever adapters are attached or switched inside, the model ends as it started."""
    from peft import PeftModel

    was_peft = isinstance(loaded.model, PeftModel)
    active = loaded.model.active_adapter if was_peft else None
    try:
        yield
    finally:
        with model_access(loaded):
            if not was_peft:
                detach_adapters(loaded)
            elif isinstance(active, str) and active in loaded.model.peft_config:
                loaded.model.set_adapter(active)


def compare_adapters(
    loaded: LoadedModel,
    prompts: Sequence[str],
    adapter_names: Sequence[str | None],
    settings: DecodingSettings,
    references: Sequence[str | None] | None = None,
    labels: Sequence[str] | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    column_prompts: Sequence[ColumnPrompts] | None = None,
) -> ComparisonTable:
    """A table with one row per prompt and one column per adapter (None = the base model).

    `prompts` are sent as they are (already templated); `labels` are what the table shows.
    `column_prompts`, one per column, replaces `prompts` for that column.
    """
    if not prompts:
        raise PlaygroundError("There are no prompts to compare: paste some or pick rows of a data set.")
    if not adapter_names:
        raise PlaygroundError("Pick at least one adapter, or the base model, to compare.")
    columns = [column_label(n) for n in adapter_names]
    if len(set(columns)) != len(columns):
        raise PlaygroundError("Each adapter can appear only once in the comparison.")
    for what, items in (("references", references), ("labels", labels)):
        if items is not None and len(items) != len(prompts):
            raise PlaygroundError(f"There are {len(prompts)} prompts but {len(items)} {what}.")
    if batch_size < 1:
        raise PlaygroundError(f"Batch size must be at least 1 (got {batch_size}).")
    if column_prompts is not None and (
        len(column_prompts) != len(adapter_names)
        or any(len(c.prompts) != len(prompts) for c in column_prompts)
    ):
        raise PlaygroundError("Each column needs its own version of every prompt.")
    own = (
        list(column_prompts) if column_prompts is not None else [ColumnPrompts(prompts)] * len(adapter_names)
    )
    # One seed for every column, chosen once when the user asked for a random one.
    seed = random.randrange(2**31) if settings.seed is None else int(settings.seed)
    settings = settings.with_(seed=seed).validate()
    starts = range(0, len(prompts), batch_size)
    outputs: list[list[str]] = [[] for _ in adapter_names]
    seconds = [0.0] * len(adapter_names)
    # Each column answers its own prompts (its training template) and stops at its own stops.
    column_settings = [settings.with_(stop=tuple(dict.fromkeys(settings.stop + c.stop))) for c in own]
    for done, start in enumerate(starts, start=1):
        if stop is not None and stop.is_set():
            raise Cancelled("Stopped.")
        # Every column's rows of a batch decode together: peft runs each row with its adapter.
        n = len(own[0].prompts[start : start + batch_size])
        requests = [
            RowRequest(p, column_settings[c], seed, name)
            for c, (name, column) in enumerate(zip(adapter_names, own, strict=True))
            for p in column.prompts[start : start + batch_size]
        ]
        rows = generate_rows(loaded, requests, stop)
        for c in range(len(adapter_names)):
            outputs[c] += [r.text for r in rows[c * n : (c + 1) * n]]
            seconds[c] += rows[c * n].seconds
        if progress is not None:
            progress(done, len(starts))
    shown = list(labels) if labels is not None else list(prompts)
    refs = list(references) if references is not None else [None] * len(prompts)
    rows = [TableRow(shown[i], refs[i], [column[i] for column in outputs]) for i in range(len(prompts))]
    templates = [c.template for c in own] if column_prompts is not None else []
    return ComparisonTable(columns, rows, settings, seconds, templates)


def export_table(table: ComparisonTable, fmt: str = "csv", folder: str | Path | None = None) -> Path:
    """Write the table to data_dir()/exports (CSV with a BOM so spreadsheets read Chinese; or JSON)."""
    if fmt not in EXPORT_FORMATS:
        raise PlaygroundError(f"Export as {' or '.join(EXPORT_FORMATS)}, not {fmt!r}.")
    folder = Path(folder) if folder is not None else private_export_dir()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"adapter-compare-{stamp}-{uuid.uuid4().hex[:6]}.{fmt}"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(table.header())
        writer.writerows(table.records())
        atomic_write_bytes(path, buffer.getvalue().encode("utf-8-sig"))
    else:
        header = table.header()
        atomic_write_json(
            path,
            {
                "columns": table.columns,
                "templates": table.templates,
                "settings": table.settings.to_dict(),
                "rows": [dict(zip(header, record, strict=True)) for record in table.records()],
            },
        )
    return path
