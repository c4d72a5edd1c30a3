"""What the Training tab writes: a job's progress, its curves, the job and adapter tables, the preview."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.identity import Owner, display_owner
from playground.training import list_adapters
from playground.training.progress import JOB_STATUSES, RunSetup, TrainingProgress
from playground.ui.i18n import text

BAR_WIDTH = 30


def status_word(status: str, lang: str = "en") -> str:
    return text(lang, f"training.status.{status}") if status in JOB_STATUSES else status


def curves_figure(progress: TrainingProgress, title: str = "", lang: str = "en") -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    steps, losses = zip(*progress.loss_curve, strict=True) if progress.loss_curve else ((), ())
    fig.add_scatter(x=steps, y=losses, name=text(lang, "training.chart.loss"), mode="lines")
    if progress.eval_curve:
        eval_steps, perplexities = zip(*progress.eval_curve, strict=True)
        fig.add_scatter(
            x=eval_steps,
            y=perplexities,
            name=text(lang, "training.chart.eval"),
            mode="lines+markers",
            secondary_y=True,
        )
    fig.update_layout(
        title=title or text(lang, "training.chart.title"),
        height=360,
        margin={"l": 40, "r": 40, "t": 50, "b": 40},
    )
    fig.update_xaxes(title_text=text(lang, "training.chart.x"))
    fig.update_yaxes(title_text=text(lang, "training.chart.y"), secondary_y=False)
    fig.update_yaxes(title_text=text(lang, "training.chart.eval"), secondary_y=True)
    return fig


def _setup_text(setup: RunSetup, lang: str) -> str:
    line = text(lang, "training.progress.on_device", method=setup.method, device=setup.device)
    if setup.gpus > 1:
        line += text(lang, "training.progress.data_parallel", gpus=setup.gpus)
    parts = [line, text(lang, "training.progress.packed" if setup.packing else "training.progress.padded")]
    if setup.fused_layers:
        kept = [text(lang, "training.progress.kept_layers", n=setup.kept_layers)] if setup.kept_layers else []
        if setup.kept_weights:
            kept.append(text(lang, "training.progress.kept_weights", n=setup.kept_weights))
        fused = text(lang, "training.progress.fused")
        parts.append(fused + (f" ({', '.join(kept)})" if kept else ""))
    return " · ".join(parts)


def _step_text(progress: TrainingProgress, lang: str) -> str:
    filled = int(progress.step / progress.total_steps * BAR_WIDTH)
    eta = (
        text(lang, "training.progress.eta_next")
        if progress.eta_s is None
        else text(lang, "training.progress.eta", seconds=progress.eta_s)
    )
    return text(
        lang,
        "training.progress.step",
        bar="█" * filled + "░" * (BAR_WIDTH - filled),
        step=progress.step,
        total=progress.total_steps,
        loss=progress.loss,
        lr=progress.lr,
        grad_norm=progress.grad_norm or 0.0,
        tokens_per_s=progress.tokens_per_s or 0.0,
        eta=eta,
    )


def progress_markdown(progress: TrainingProgress, lang: str = "en") -> str:
    status = status_word(progress.status, lang)
    lines = [
        text(lang, "training.progress.status_message", status=status, message=progress.message)
        if progress.message
        else text(lang, "training.progress.status", status=status)
    ]
    if progress.stepped and progress.total_steps:
        lines.append(_step_text(progress, lang))
    if progress.setup is not None:
        lines.append(_setup_text(progress.setup, lang))
        if progress.setup.notes:
            lines.append("\n".join(f"- {n}" for n in progress.setup.notes))
    if progress.adapter:
        lines.append(text(lang, "training.progress.adapter_saved", path=progress.adapter))
    # Blank lines between: Markdown runs single-newline lines together into one paragraph.
    return "\n\n".join(lines)


def progress_text(events: list[dict[str, Any]], status: dict[str, Any], lang: str = "en") -> str:
    """The status of a job with these events and this status.json, as Markdown."""
    return progress_markdown(TrainingProgress.from_events(events, status), lang)


def masked_html(pieces: list[tuple[str, bool]], lang: str = "en") -> str:
    spans = [
        f"<span class='{'trained-token' if trained else 'masked-token'}'>{html.escape(piece)}</span>"
        for piece, trained in pieces
    ]
    return (
        "<div id='masked-example' style='white-space:pre-wrap;font-family:monospace;line-height:1.6'>"
        + "".join(spans)
        + "</div><div style='font-size:12px;color:#6b7280'>"
        + html.escape(text(lang, "training.preview.legend"))
        + "</div>"
    )


def saved_text(job: Any, lang: str = "en") -> str:
    """What a job has on disk: a finished job's adapter is at its last step, not its last checkpoint."""
    if job.status == "finished" and job.total_steps:
        return text(lang, "training.saved.adapter", step=job.total_steps)
    return text(lang, "training.saved.checkpoint", step=job.checkpoint_step) if job.checkpoint_step else ""


def jobs_frame(jobs: Any, viewer: Owner | None = None, lang: str = "en") -> pd.DataFrame:
    """The jobs table; its first column is the job id (a click on a row reads it)."""

    def column(name: str) -> str:
        return text(lang, f"training.jobs.{name}")

    rows = [
        {
            column("id"): j.id,
            column("status"): status_word(j.status, lang),
            column("owner"): display_owner(j.owner, viewer),
            column("model"): j.model,
            column("output"): j.output or "",
            column("saved"): saved_text(j, lang),
            column("message"): j.message[:80],
        }
        for j in jobs.jobs()
    ]
    return pd.DataFrame(rows or [{column("id"): "", column("status"): text(lang, "training.jobs.none")}])


def adapters_frame(lang: str = "en") -> pd.DataFrame:
    """The saved adapters; the first column is the adapter's name."""
    rows = [
        {
            text(lang, "training.adapters.name"): a.name,
            text(lang, "training.adapters.base_model"): a.base_model,
            text(lang, "training.adapters.created"): a.created,
            **{k: round(v, 4) for k, v in a.metrics.items() if isinstance(v, (int, float))},
        }
        for a in list_adapters()
    ]
    return pd.DataFrame(
        rows or [{text(lang, "training.adapters.name"): text(lang, "training.adapters.none")}]
    )
