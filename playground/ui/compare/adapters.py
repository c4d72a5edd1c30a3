"""Base model vs adapters: the same prompts, decoding and seed for the base model and each adapter.

`adapters_layout` builds the sections, the handlers here call the services, `build_adapters_tab`
connects them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.explorer.adapter_diff import AdapterDiffRow, adapter_diff_rows
from playground.generation.adapter_compare import (
    ComparisonTable,
    attach_adapters,
    compare_adapters,
    export_table,
    restoring_adapters,
)
from playground.generation.settings import PRESETS, DecodingSettings
from playground.names import named_path
from playground.paths import adapters_dir
from playground.ui.adapter_diff_chart import adapter_diff_figure
from playground.ui.common import on_tab_shown, user_errors
from playground.ui.compare.adapters_layout import (
    build_adapter_pick,
    build_comparison_run,
    build_prompt_source,
)
from playground.ui.compare.adapters_table import (
    adapter_choices,
    column_names,
    column_prompts,
    prompt_items,
    table_view,
)
from playground.ui.compare.decoding_settings import DEFAULT_MAX_NEW, decoding_label
from playground.ui.compare.shared import SharedControls, pick_template, render_prompt, seed_or_none
from playground.ui.i18n import language_of, text
from playground.ui.session import on_page_load
from playground.ui.session_stop import SessionRuns, stop_all


class AdapterHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @user_errors
    def run_comparison(
        self,
        folders: list[str] | None,
        with_base: bool,
        source: str,
        pasted: str,
        example_path: str | None,
        upload_path: str | None,
        refs_path: str | None,
        rows: str,
        preset_name: str,
        max_new_tokens: float | None,
        seed: float | None,
        own_templates: bool,
        template_name: str,
        custom_template: str,
        system: str,
        runs: SessionRuns,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, str, ComparisonTable, Any]:
        lang = language_of(request)
        folders = list(folders or [])
        items = prompt_items(source, pasted, upload_path or example_path, refs_path, rows, lang)
        if not folders and not with_base:
            raise PlaygroundError(text(lang, "compare.adapters.pick_one"))
        settings = PRESETS[preset_name].with_(
            max_new_tokens=int(max_new_tokens or DEFAULT_MAX_NEW), seed=seed_or_none(seed)
        )

        def report(done: int, total: int) -> None:
            progress(done / total, desc=text(lang, "compare.adapters.batch", done=done, total=total))

        with runs.run() as stop, self.ctx.models.use() as loaded, restoring_adapters(loaded):
            progress(0.0, desc=text(lang, "compare.adapters.attaching"))
            names = attach_adapters(loaded, [named_path(adapters_dir(), n, "adapter") for n in folders])
            template = pick_template(loaded, template_name, custom_template)
            columns = ([None] if with_base else []) + folders
            own = (
                [column_prompts(loaded, f, folders, items, template) for f in columns]
                if own_templates and folders
                else None
            )
            prompts = [render_prompt(loaded, template, system, ins, inp) for ins, inp, _ in items]
            table = compare_adapters(
                loaded,
                prompts,
                ([None] if with_base else []) + names,
                settings,
                references=[ref for _, _, ref in items],
                labels=[f"{ins}\n{inp}".strip() for ins, inp, _ in items],
                progress=report,
                stop=stop,
                column_prompts=own,
            )
            progress(1.0, desc=text(lang, "compare.adapters.scoring"))
            by_adapter = [
                (n, own[columns.index(f)].prompts if own else prompts) for n, f in zip(names, folders)
            ]
            diffs = adapter_diff_rows(loaded, by_adapter, [ref for _, _, ref in items])
        note = comparison_note(table, lang)
        if diffs:
            note += "\n\n" + text(lang, "adapter_diff.compare_note", rows=len({d.row for d in diffs}))
        return table_view(table, lang), note, table, diff_view(diffs, lang)


def diff_view(diffs: list[AdapterDiffRow], lang: str) -> Any:
    """The heatmap of every scored (row, adapter), hidden when nothing had a reference."""
    if not diffs:
        return gr.update(visible=False, value=None)
    titled = [(text(lang, "adapter_diff.row", row=d.row + 1, adapter=d.adapter), d.characters) for d in diffs]
    return gr.update(visible=True, value=adapter_diff_figure(titled, lang))


def comparison_note(table: ComparisonTable, lang: str = "en") -> str:
    """The status line under a finished comparison: what ran, how, and how long each column took."""
    names = column_names(table, lang)
    settings: DecodingSettings = table.settings
    times = ", ".join(f"{c} {s:.1f} s" for c, s in zip(names, table.seconds))
    note = text(
        lang,
        "compare.adapters.done",
        prompts=len(table.rows),
        label=decoding_label(settings, lang),
        seed=settings.seed,
        times=times,
    )
    if table.templates:
        templates = ", ".join(f"{c} {t}" for c, t in zip(names, table.templates))
        note += text(lang, "compare.adapters.templates", templates=templates)
    return note


def refreshed_choices(request: gr.Request) -> Any:
    return gr.update(choices=adapter_choices(language_of(request)))


def source_visibility(source: str) -> tuple[Any, Any]:
    return gr.update(visible=source == "paste"), gr.update(visible=source != "paste")


def _export(table: ComparisonTable | None, fmt: str, lang: str) -> str:
    if table is None:
        raise PlaygroundError(text(lang, "compare.adapters.run_first"))
    return str(export_table(table, fmt))


@user_errors
def export_csv(request: gr.Request, table: ComparisonTable | None) -> str:
    return _export(table, "csv", language_of(request))


@user_errors
def export_json(request: gr.Request, table: ComparisonTable | None) -> str:
    return _export(table, "json", language_of(request))


def build_adapters_tab(ctx: AppContext, shared: SharedControls) -> None:
    pick = build_adapter_pick()
    prompts = build_prompt_source()
    run = build_comparison_run()
    handlers = AdapterHandlers(ctx)

    prompts.source.change(source_visibility, prompts.source, [prompts.pasted, prompts.data_row], queue=False)
    pick.refresh.click(refreshed_choices, None, pick.adapters, queue=False)
    on_page_load(refreshed_choices, None, pick.adapters)
    on_tab_shown(refreshed_choices, None, [pick.adapters])
    run.run.click(
        handlers.run_comparison,
        [
            pick.adapters,
            pick.include_base,
            *prompts.inputs,
            run.preset,
            run.max_new,
            run.seed,
            pick.own_template,
            *shared.prompt,
            shared.runs,
        ],
        [run.table, run.status, run.last_table, run.diff],
        concurrency_id="model",
        concurrency_limit=1,
    )
    run.stop.click(stop_all, shared.runs, None, queue=False)
    run.export_csv.click(export_csv, run.last_table, run.exported)
    run.export_json.click(export_json, run.last_table, run.exported)
