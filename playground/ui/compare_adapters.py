"""Base model vs adapters: the same prompts, decoding and seed for the base model and each adapter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.data import list_examples, load_dataset
from playground.errors import PlaygroundError
from playground.generation.adapter_compare import (
    ColumnPrompts,
    ComparisonTable,
    attach_adapters,
    compare_adapters,
    export_table,
    restoring_adapters,
)
from playground.generation.settings import PRESETS
from playground.models.adapters import read_adapter
from playground.names import named_path
from playground.number_lists import list_items
from playground.paths import adapters_dir
from playground.prompts.templates import PromptTemplate, adapter_template
from playground.ui.common import on_tab_shown, user_errors
from playground.ui.compare_decoding import decoding_label
from playground.ui.compare_shared import (
    SharedControls,
    new_stop_flag,
    on_stop,
    pick_template,
    render_prompt,
    seed_or_none,
)
from playground.ui.session import on_page_load

MAX_TABLE_PROMPTS = 200


def parse_rows(text: str, n_rows: int) -> list[int]:
    """'1-5, 8' -> 0-based indexes; blank means every row."""
    if not (text or "").strip():
        return list(range(n_rows))
    picked: list[int] = []
    for part in list_items(text):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise PlaygroundError(f"Rows: {part!r} is not a row number or a range like 3-7.")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= first <= last <= n_rows:
            raise PlaygroundError(f"Rows: {part} is outside 1-{n_rows} (the data set has {n_rows} rows).")
        picked += [i - 1 for i in range(first, last + 1) if i - 1 not in picked]
    return picked


def _adapter_choices() -> list[tuple[str, str]]:
    from playground.training.adapters import list_adapters

    return [(f"{a.name} (base: {a.base_model or 'unknown'})", a.name) for a in list_adapters()]


def _example_choices() -> list[tuple[str, str]]:
    return [(p.name, str(p)) for p in list_examples()]


def build_adapters_tab(ctx: AppContext, shared: SharedControls) -> None:
    gr.Markdown(
        "The same prompts, decoding and seed for the base model and each adapter, all on one copy of the "
        "base weights (adapters are switched, not reloaded). The model is left as it was afterwards."
    )
    with gr.Row(equal_height=True):
        adapters = gr.CheckboxGroup(
            [],
            label="Adapters",
            info="Trained adapters in the adapters folder (Training tab); press Refresh after training.",
            scale=4,
            elem_id="adapter-choices",
        )
        include_base = gr.Checkbox(
            True, label="Include the base model", scale=1, elem_id="adapter-include-base"
        )
        refresh = gr.Button("Refresh list", scale=1)
    own_template = gr.Checkbox(
        True,
        label="Each adapter in the template it was trained with (the base model gets the first adapter's)",
        info="Untick to use the template and system prompt chosen above for every column.",
        elem_id="adapter-own-template",
    )
    source = gr.Radio(["paste", "data set"], value="paste", label="Prompts", elem_id="adapter-source")
    pasted = gr.Textbox(
        label="Prompts, one per line",
        lines=5,
        elem_id="adapter-prompts",
        placeholder="以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。相見時難別亦難，",
    )
    with gr.Row(visible=False) as data_row:
        example = gr.Dropdown(_example_choices(), label="Demo data set", allow_custom_value=False)
        upload = gr.File(label="...or your data file", file_types=[".json", ".jsonl", ".csv", ".tsv"])
        refs = gr.File(label="Reference answers, one per line (optional)", file_types=[".txt"])
        rows_spec = gr.Textbox("1-5", label="Rows (e.g. 1-5, 8; blank = all)", elem_id="adapter-rows")
    with gr.Row(equal_height=True):
        preset = gr.Dropdown(list(PRESETS), value="greedy", label="Decoding", elem_id="adapter-preset")
        max_new = gr.Number(64, label="Max new tokens", precision=0, elem_id="adapter-max-new")
        seed = gr.Number(0, label="Seed (-1 = random)", precision=0, elem_id="adapter-seed")
        run = gr.Button("Compare", variant="primary", elem_id="adapter-run")
        stop = gr.Button("Stop", variant="stop")
    status = gr.Markdown("", elem_id="adapter-status")
    table_view = gr.Dataframe(interactive=False, wrap=True, elem_id="adapter-table")
    with gr.Row():
        export_csv = gr.Button("Export CSV", elem_id="adapter-export-csv")
        export_json = gr.Button("Export JSON", elem_id="adapter-export-json")
        exported = gr.File(label="Exported table", interactive=False, elem_id="adapter-export")
    last_table = gr.State(None)

    source.change(
        lambda s: (gr.update(visible=s == "paste"), gr.update(visible=s != "paste")),
        source,
        [pasted, data_row],
        queue=False,
    )
    refresh.click(lambda: gr.update(choices=_adapter_choices()), None, adapters, queue=False)
    on_page_load(lambda: gr.update(choices=_adapter_choices()), None, adapters)
    on_tab_shown(lambda: gr.update(choices=_adapter_choices()), None, [adapters])

    @user_errors
    def on_compare(
        folders: list[str],
        with_base: bool,
        source_name: str,
        pasted_text: str,
        example_path: str | None,
        upload_path: str | None,
        refs_path: str | None,
        rows_text: str,
        preset_name: str,
        max_new_tokens: float | None,
        seed_value: float | None,
        own: bool,
        template_name: str,
        custom_text: str,
        system_text: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, str, ComparisonTable]:
        items = _prompt_items(source_name, pasted_text, upload_path or example_path, refs_path, rows_text)
        if not folders and not with_base:
            raise PlaygroundError("Pick at least one adapter, or include the base model.")
        settings = PRESETS[preset_name].with_(
            max_new_tokens=int(max_new_tokens or 64), seed=seed_or_none(seed_value)
        )
        flag = new_stop_flag(request)

        def report(done: int, total: int) -> None:
            progress(done / total, desc=f"Generating: batch {done} of {total}")

        with ctx.models.use() as loaded, restoring_adapters(loaded):
            progress(0.0, desc="Attaching adapters")
            names = attach_adapters(loaded, [named_path(adapters_dir(), n, "adapter") for n in folders or []])
            template = pick_template(loaded, template_name, custom_text)
            prompts = [render_prompt(loaded, template, system_text, ins, inp) for ins, inp, _ in items]
            columns = ([None] if with_base else []) + list(folders or [])
            per_column = (
                [_column_prompts(loaded, folder, folders or [], items, template) for folder in columns]
                if own and folders
                else None
            )
            table = compare_adapters(
                loaded,
                prompts,
                ([None] if with_base else []) + names,
                settings,
                references=[ref for _, _, ref in items],
                labels=[f"{ins}\n{inp}".strip() for ins, inp, _ in items],
                progress=report,
                stop=flag,
                column_prompts=per_column,
            )
        times = ", ".join(f"{c} {s:.1f} s" for c, s in zip(table.columns, table.seconds))
        note = f"{len(table.rows)} prompts · {decoding_label(table.settings)} · seed {table.settings.seed} · {times}"
        if table.templates:
            note += " · templates: " + ", ".join(f"{c} {t}" for c, t in zip(table.columns, table.templates))
        return _table_view(table), note, table

    run.click(
        on_compare,
        [
            adapters,
            include_base,
            source,
            pasted,
            example,
            upload,
            refs,
            rows_spec,
            preset,
            max_new,
            seed,
            own_template,
            *shared,
        ],
        [table_view, status, last_table],
        concurrency_id="model",
        concurrency_limit=1,
    )
    stop.click(on_stop, None, None, queue=False)

    @user_errors
    def on_export(table: ComparisonTable | None, fmt: str) -> str:
        if table is None:
            raise PlaygroundError("Run a comparison first; then export its table.")
        return str(export_table(table, fmt))

    export_csv.click(lambda t: on_export(t, "csv"), last_table, exported)
    export_json.click(lambda t: on_export(t, "json"), last_table, exported)


def _table_frame(table: ComparisonTable) -> Any:
    import pandas as pd

    return pd.DataFrame(table.records(), columns=table.header())


def column_widths(table: ComparisonTable) -> list[str]:
    """Fixed shares of the page width, so a long prompt cannot push the answer columns off screen."""
    fixed = ["4%", "22%"] + (["16%"] if table.has_references else [])
    left = 100 - sum(int(w[:-1]) for w in fixed)
    return fixed + [f"{left / len(table.columns):.0f}%"] * len(table.columns)


def _table_view(table: ComparisonTable) -> Any:
    return gr.update(value=_table_frame(table), column_widths=column_widths(table))


def _column_prompts(
    loaded: Any,
    folder: str | None,
    folders: list[str],
    items: list[tuple[str, str, str | None]],
    fallback: PromptTemplate,
) -> ColumnPrompts:
    """A column's prompts in its adapter's training template; the base model's in the first adapter's."""
    source = folder if folder is not None else (folders[0] if folders else None)
    info = read_adapter(named_path(adapters_dir(), source, "adapter")) if source else None
    template = adapter_template(info.settings, loaded.default_template) if info else fallback
    prompts = [template.render(ins, inp, None, loaded.tokenizer) for ins, inp, _ in items]
    return ColumnPrompts(prompts, template.stop_strings, template.name)


def _prompt_items(
    source: str, pasted: str, data_path: str | None, refs_path: str | None, rows_text: str
) -> list[tuple[str, str, str | None]]:
    """(instruction, input, reference) per prompt, from pasted lines or rows of a data set."""
    if source == "paste":
        items = [(line.strip(), "", None) for line in (pasted or "").splitlines() if line.strip()]
    else:
        if not data_path:
            raise PlaygroundError("Pick a demo data set or upload a data file.")
        dataset = load_dataset(Path(data_path), references=refs_path or None)
        picked = parse_rows(rows_text, len(dataset))
        items = [
            (e.instruction, e.input, e.answers[0] if e.answers else None)
            for e in (dataset.examples[i] for i in picked)
        ]
    if not items:
        raise PlaygroundError("There are no prompts: paste some, one per line, or pick rows of a data set.")
    if len(items) > MAX_TABLE_PROMPTS:
        raise PlaygroundError(f"Compare at most {MAX_TABLE_PROMPTS} prompts at once (got {len(items)}).")
    return items
