"""Base model vs adapters, the parts without events: the prompts to compare, each column's prompts,
the adapters to pick from, and the table as the page shows it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from playground.data import list_examples, load_dataset
from playground.errors import PlaygroundError
from playground.generation.adapter_compare import BASE_LABEL, ColumnPrompts, ComparisonTable
from playground.models.adapters import read_adapter
from playground.names import named_path
from playground.number_lists import list_items
from playground.paths import adapters_dir
from playground.prompts.templates import PromptTemplate, adapter_template
from playground.ui.i18n import text

MAX_TABLE_PROMPTS = 200
PromptItem = tuple[str, str, str | None]  # instruction, input, reference


def parse_rows(rows: str, n_rows: int, lang: str = "en") -> list[int]:
    """'1-5, 8' -> 0-based indexes; blank means every row."""
    if not (rows or "").strip():
        return list(range(n_rows))
    picked: list[int] = []
    for part in list_items(rows):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise PlaygroundError(text(lang, "compare.adapters.row_unreadable", part=repr(part)))
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= first <= last <= n_rows:
            raise PlaygroundError(text(lang, "compare.adapters.row_outside", part=part, rows=n_rows))
        picked += [i - 1 for i in range(first, last + 1) if i - 1 not in picked]
    return picked


def adapter_choices(lang: str = "en") -> list[tuple[str, str]]:
    from playground.training.adapters import list_adapters

    unknown = text(lang, "compare.adapters.base_unknown")
    return [
        (text(lang, "compare.adapters.choice", name=a.name, base=a.base_model or unknown), a.name)
        for a in list_adapters()
    ]


def example_choices() -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_examples()]


def prompt_items(
    source: str, pasted: str, data_path: str | None, refs_path: str | None, rows: str, lang: str = "en"
) -> list[PromptItem]:
    """(instruction, input, reference) per prompt, from pasted lines or rows of a data set."""
    if source == "paste":
        items: list[PromptItem] = [
            (line.strip(), "", None) for line in (pasted or "").splitlines() if line.strip()
        ]
    else:
        if not data_path:
            raise PlaygroundError(text(lang, "compare.adapters.pick_data"))
        dataset = load_dataset(Path(data_path), references=refs_path or None)
        picked = parse_rows(rows, len(dataset), lang)
        items = [
            (e.instruction, e.input, e.answers[0] if e.answers else None)
            for e in (dataset.examples[i] for i in picked)
        ]
    if not items:
        raise PlaygroundError(text(lang, "compare.adapters.no_prompts"))
    if len(items) > MAX_TABLE_PROMPTS:
        raise PlaygroundError(
            text(lang, "compare.adapters.too_many", most=MAX_TABLE_PROMPTS, count=len(items))
        )
    return items


def column_prompts(
    loaded: Any, folder: str | None, folders: list[str], items: list[PromptItem], fallback: PromptTemplate
) -> ColumnPrompts:
    """A column's prompts in its adapter's training template; the base model's in the first adapter's."""
    source = folder if folder is not None else (folders[0] if folders else None)
    info = read_adapter(named_path(adapters_dir(), source, "adapter")) if source else None
    template = adapter_template(info.settings, loaded.default_template) if info else fallback
    prompts = [template.render(ins, inp, None, loaded.tokenizer) for ins, inp, _ in items]
    return ColumnPrompts(prompts, template.stop_strings, template.name)


def column_widths(table: ComparisonTable) -> list[str]:
    """Fixed shares of the page width, so a long prompt cannot push the answer columns off screen."""
    fixed = ["4%", "22%"] + (["16%"] if table.has_references else [])
    left = 100 - sum(int(w[:-1]) for w in fixed)
    return fixed + [f"{left / len(table.columns):.0f}%"] * len(table.columns)


def column_names(table: ComparisonTable, lang: str = "en") -> list[str]:
    """The answer columns' names as the page shows them: the base model's in the page's language."""
    base = text(lang, "compare.adapters.header.base")
    return [base if name == BASE_LABEL else name for name in table.columns]


def shown_header(table: ComparisonTable, lang: str = "en") -> list[str]:
    """The table's header in the page's language (exports keep the service's English one)."""
    fixed = ["#", text(lang, "compare.adapters.header.prompt")]
    if table.has_references:
        fixed.append(text(lang, "compare.adapters.header.reference"))
    return fixed + column_names(table, lang)


def table_view(table: ComparisonTable, lang: str = "en") -> Any:
    import pandas as pd

    frame = pd.DataFrame(table.records(), columns=shown_header(table, lang))
    return gr.update(value=frame, column_widths=column_widths(table))
