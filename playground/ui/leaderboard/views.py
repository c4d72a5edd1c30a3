"""What the Leaderboard tab shows, made from service data: the chart, the tables, the heatmap."""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from playground.errors import PlaygroundError
from playground.identity import display_owner
from playground.leaderboard import lower_is_better
from playground.ui.i18n import text

RUN_COLUMNS = [
    "id",
    "status",
    "model",
    "adapter",
    "strategy",
    "shots",
    "selection",
    "seed",
    "examples",
    "metrics",
    "owner",
]
PREFERRED_METRICS = (
    "mean_perplexity",
    "corpus_perplexity",
    "accuracy",
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "chrf",
)
EXAMPLE_COLUMNS = ["idx", "prompt", "reference", "prediction"]


def metric_choices(board: Any, dataset: str | None) -> list[str]:
    names: set[str] = set()
    for run in board.runs(dataset_name=dataset, status="finished") if dataset else []:
        names.update(k for k, v in run.metrics.items() if v is not None)
    return [m for m in PREFERRED_METRICS if m in names] + sorted(names - set(PREFERRED_METRICS))


def bar_chart(rows: list[dict[str, Any]], metric: str, lang: str = "en") -> go.Figure:
    fig = go.Figure()
    if rows:
        labels = [
            f"#{r['rank']} {r['model']}{' + ' + r['adapter'] if r['adapter'] else ''} · {r['strategy']}"
            + (f" k={r['shots']}" if r["shots"] else "")
            for r in rows
        ]
        fig.add_bar(
            x=labels,
            y=[r[metric] for r in rows],
            error_y={"type": "data", "array": [r[f"{metric} std"] for r in rows], "visible": True},
            text=[f"{r[metric]:.3g} ± {r[f'{metric} std']:.2g} (n={r['runs']})" for r in rows],
            marker_color="#6366f1",
        )
    better = text(
        lang, "leaderboard.lower_better" if lower_is_better(metric) else "leaderboard.higher_better"
    )
    fig.update_layout(
        title=text(lang, "leaderboard.chart_title", metric=metric, better=better),
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 120},
        yaxis_title=metric,
    )
    return fig


def nll_heatmap(tokens: list[str] | None, nll: list[float | None] | None, lang: str = "en") -> str:
    """The reference output, each token shaded by how much it surprised the model."""
    if not tokens or not nll:
        return f"<p><i>{html.escape(text(lang, 'leaderboard.no_nll'))}</i></p>"
    finite = [x for x in nll if x is not None and math.isfinite(x)]
    top = max(finite + [1e-6])
    spans = []
    for token, value in zip(tokens, nll, strict=False):
        if not token:
            continue  # a byte piece of a character that the next token completes
        v = value if value is not None and math.isfinite(value) else top
        alpha = min(1.0, v / top) if top > 0 else 0
        spans.append(
            f'<span class="nll-token" title="NLL {v:.2f}" style="background: rgba(239,68,68,{alpha:.2f});'
            f' padding:1px 0; border-radius:2px; white-space:pre-wrap">{html.escape(token)}</span>'
        )
    legend = html.escape(text(lang, "leaderboard.nll_legend", top=f"{top:.2f}"))
    legend_div = f"<div style='font-size:12px;color:#6b7280'>{legend}</div>"
    return f"<div id='nll-heatmap' style='line-height:1.9;font-size:15px'>{''.join(spans)}</div>{legend_div}"


def data_problem(exc: PlaygroundError, lang: str = "en") -> str:
    """A data file's problem as Markdown for the info line, its punctuation kept literal."""
    escaped = re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~])", r"\\\1", exc.in_language(lang))
    return f"⚠️ **{text(lang, 'leaderboard.bad_file')}** {escaped}"


def decoding_text(decoding: str | dict | None) -> str:
    """A run's decoding in words ("greedy, 64 new tokens"); blank for scoring-only runs."""
    if isinstance(decoding, str):
        try:
            decoding = json.loads(decoding)
        except ValueError:
            return decoding
    if not decoding:
        return ""
    mode = (
        f"{decoding.get('num_beams')} beams"
        if (decoding.get("num_beams") or 1) > 1
        else f"T {decoding.get('temperature')}, top-p {decoding.get('top_p')}"
        if decoding.get("do_sample")
        else "greedy"
    )
    return f"{mode}, {decoding.get('max_new_tokens')} new tokens"


def readable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A leaderboard row as shown: no template hash (the CSV keeps it), decoding in words."""
    shown = {k: v for k, v in row.items() if k != "template"}
    shown["decoding"] = decoding_text(row.get("decoding"))
    return shown


def grouped_frame(rows: list[dict[str, Any]], lang: str = "en") -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({"": [text(lang, "leaderboard.no_runs")]})
    return pd.DataFrame([readable_row(r) for r in rows]).round(4)


def runs_frame(records: list[Any], viewer: Any, lang: str = "en") -> pd.DataFrame:
    published = text(lang, "leaderboard.published")
    rows = [
        [
            r.id,
            r.status,
            r.model,
            r.adapter or "",
            r.strategy,
            r.shots,
            r.selection or "",
            "" if r.seed is None else r.seed,
            r.n_examples,
            ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if v is not None) or r.message[:80],
            display_owner(r.owner, viewer) + (published if r.published else ""),
        ]
        for r in records
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def examples_frame(rows: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "idx": r.idx,
                "prompt": r.prompt[-300:],
                "reference": r.reference,
                "prediction": r.prediction,
                **{k: round(v, 4) for k, v in r.metrics.items() if isinstance(v, (int, float))},
            }
            for r in rows
        ]
    )


def run_title(record: Any, lang: str = "en") -> str:
    return (
        f"**{text(lang, 'leaderboard.run')} #{record.id}** · {record.model} · {record.strategy}"
        f"{f' k={record.shots}' if record.shots else ''} · {record.status}"
        f"{' · ' + record.message if record.message else ''}"
    )


def export_stem(dataset_name: str | None) -> str:
    """classical_chinese_test.json -> classical_chinese_test (not ...test.json.csv)."""
    name = (dataset_name or "all").replace("/", "_").replace("\\", "_")
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and suffix.lower() in ("json", "jsonl", "csv", "tsv", "txt") else name


def selected_row(index: Any) -> int:
    """The row of a Dataframe select event (gradio gives [row, column] or a row)."""
    return index[0] if isinstance(index, (list, tuple)) else index
