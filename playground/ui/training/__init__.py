"""Training tab: LoRA/QLoRA jobs launched from the browser, with live loss and eval curves.

The job runs in its own process (playground.training.JobManager); this tab only submits,
polls the job's event file every two seconds, and draws what it finds. Layout is in layout.py
and form.py, handlers in handlers.py, the words it writes in text.py; this module connects them.
"""

from __future__ import annotations

import gradio as gr

from playground.context import AppContext
from playground.training.presets import presets_for
from playground.ui.common import on_tab_shown
from playground.ui.session import on_page_load
from playground.ui.session_stop import session_runs_state
from playground.ui.training import handlers
from playground.ui.training.handlers import TrainingHandlers
from playground.ui.training.layout import (
    Adapters,
    Export,
    Monitor,
    Settings,
    Source,
    build_adapters,
    build_export,
    build_monitor,
    build_settings,
    build_source,
)
from playground.ui.training.text import curves_figure, masked_html, progress_text, saved_text

__all__ = [
    "build_training_tab",
    "curves_figure",
    "gpu_available",
    "masked_html",
    "progress_text",
    "saved_text",
]


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_training_tab(ctx: AppContext) -> None:
    gpu = gpu_available()
    with gr.Row():
        with gr.Column(scale=2):
            source = build_source(ctx)
        with gr.Column(scale=3):
            settings = build_settings(presets_for(gpu), gpu)
    monitor = build_monitor()
    adapters = build_adapters()
    h = TrainingHandlers(ctx)
    _connect(h, source, settings, monitor, adapters)
    _connect_export(h, adapters, build_export())


def _connect(
    h: TrainingHandlers, source: Source, settings: Settings, monitor: Monitor, adapters: Adapters
) -> None:
    m, a = monitor, adapters
    form_inputs = [*source.inputs, *settings.form]
    settings.preset.change(handlers.apply_preset, settings.preset, settings.form, queue=False)
    m.preview_btn.click(h.on_preview, form_inputs, m.preview, concurrency_id="model", concurrency_limit=1)
    m.start.click(
        h.on_start, form_inputs, [m.job_id, m.offset, m.progress, m.status, m.chart, m.jobs_table, m.timer]
    )
    m.timer.tick(
        h.poll,
        [m.job_id, m.offset, m.progress],
        [m.offset, m.progress, m.status, m.chart, m.log, m.jobs_table, a.table, source.resume_from, m.timer],
        queue=False,
    )
    m.stop.click(h.on_stop, m.job_id, m.status)
    m.resume.click(h.on_resume, m.job_id, [m.offset, m.progress, m.status, m.timer])
    m.jobs_table.select(
        handlers.on_job_select, m.jobs_table, [m.job_id, m.offset, m.progress, m.timer], queue=False
    )
    a.table.select(handlers.on_adapter_select, a.table, [a.selected, a.chart])
    a.evaluate.click(
        h.on_evaluate,
        [a.selected, *a.test_set.inputs, a.refs, a.limit, session_runs_state()],
        a.result,
        concurrency_id="model",
        concurrency_limit=1,
    )
    lists = [m.jobs_table, a.table, source.resume_from]
    a.refresh.click(h.on_refresh, None, lists, queue=False)
    # Filled once the page (and so the user) is known, never as initial values before login;
    # read again whenever the tab is opened.
    on_page_load(h.on_refresh, None, lists)
    on_tab_shown(h.on_refresh, None, lists)


def _connect_export(h: TrainingHandlers, adapters: Adapters, e: Export) -> None:
    e.zip.click(h.on_export_zip, adapters.selected, [e.file, e.status])
    # Not on the model's queue: a merge loads its own fp32 copy of the base, in a background thread.
    e.merge.click(h.on_merge, adapters.selected, [e.file, e.status])
    e.push.click(h.on_push, [adapters.selected, e.repo, e.token, e.what], e.status)
