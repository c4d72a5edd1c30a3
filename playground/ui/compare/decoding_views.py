"""What the decoding columns and the sweep show: column texts and stats, the sweep's chart and table,
and reading the sweep's values."""

from __future__ import annotations

from typing import Any

from playground.errors import PlaygroundError
from playground.generation.compare import SWEEP_PARAMS, ColumnResult, SweepPoint
from playground.number_lists import parse_number_list
from playground.ui.compare.decoding_settings import decoding_label
from playground.ui.i18n import text


def column_text(result: ColumnResult, n_samples: int = 1, lang: str = "en") -> str:
    if len(result.texts) == 1:
        note = "\n\n" + text(lang, "compare.deterministic") if n_samples > 1 else ""
        return result.texts[0] + note
    seed = result.settings.seed or 0
    return "\n\n".join(
        text(lang, "compare.draw", number=i + 1, seed=seed + i) + "\n" + out
        for i, out in enumerate(result.texts)
    )


def column_stats(result: ColumnResult, lang: str = "en") -> str:
    parts = [
        f"**{decoding_label(result.settings, lang)}**",
        text(lang, "compare.stats.new_tokens", tokens=", ".join(str(n) for n in result.new_tokens)),
        text(lang, "compare.stats.seconds", seconds=f"{result.seconds:.2f}"),
        text(lang, "compare.stats.speed", rate=f"{result.tokens_per_s:.1f}"),
    ]
    if result.peak_memory_mb is not None:
        parts.append(text(lang, "compare.stats.peak_memory", mb=f"{result.peak_memory_mb:,.0f}"))
    if result.shared_call_with > 1:
        parts.append(text(lang, "compare.stats.shared_call", columns=result.shared_call_with))
    return " · ".join(parts)


def entropy_trace(results: list[ColumnResult | None], lang: str = "en") -> Any:
    """The chart's update: one line per column that kept its steps (its first draw), else hidden;
    a refused column (None) has no line."""
    import gradio as gr
    import plotly.graph_objects as go

    traced = [
        (n, r) for n, r in enumerate(results, start=1) if r and r.entropies and r.entropies[0] is not None
    ]
    if not traced:
        return gr.update(visible=False, value=None)
    fig = go.Figure()
    for number, result in traced:
        steps = result.entropies[0]
        fig.add_scatter(
            x=list(range(1, len(steps) + 1)),
            y=steps,
            mode="lines+markers",
            marker=dict(size=4),
            name=text(
                lang, "compare.entropy.series", column=number, label=decoding_label(result.settings, lang)
            ),
        )
    untraced = [
        str(n) for n, r in enumerate(results, start=1) if r and r.entropies and r.entropies[0] is None
    ]
    title = text(lang, "compare.entropy.title")
    if untraced:
        title += "<br><sub>" + text(lang, "compare.entropy.untraced", columns=", ".join(untraced)) + "</sub>"
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        height=340,
        margin=dict(l=50, r=20, t=70, b=40),
        xaxis=dict(title=text(lang, "explorer.axis.step")),
        yaxis=dict(title=text(lang, "explorer.axis.entropy"), rangemode="tozero"),
        legend=dict(orientation="h", y=-0.2),
    )
    return gr.update(visible=True, value=fig)


def sweep_figure(points: list[SweepPoint], param: str, lang: str = "en") -> Any:
    """Diversity, length and perplexity of the outputs against the swept value."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=tuple(
            text(lang, f"compare.sweep.{key}") for key in ("diversity", "length", "perplexity_title")
        ),
    )
    x = [p.value for p in points]
    for name, ys, row in (
        ("distinct-1", [p.distinct_1 for p in points], 1),
        ("distinct-2", [p.distinct_2 for p in points], 1),
        (text(lang, "compare.sweep.mean_length"), [p.mean_length for p in points], 2),
        (text(lang, "compare.sweep.perplexity"), [p.mean_perplexity for p in points], 3),
    ):
        fig.add_scatter(x=x, y=ys, name=name, mode="lines+markers", row=row, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title_text=text(lang, f"compare.sweep.param.{param}"), row=3, col=1)
    fig.update_layout(height=620, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def sweep_headers(lang: str = "en") -> list[str]:
    words = [
        text(lang, f"compare.sweep.{key}") for key in ("value", "mean_length", "perplexity", "first_output")
    ]
    return [words[0], "distinct-1", "distinct-2", *words[1:]]


def sweep_table(points: list[SweepPoint], lang: str = "en") -> Any:
    import pandas as pd

    rows = [
        [p.value, round(p.distinct_1, 3), round(p.distinct_2, 3), round(p.mean_length, 1)]
        + [round(p.mean_perplexity, 2), p.texts[0][:200]]
        for p in points
    ]
    return pd.DataFrame(rows, columns=sweep_headers(lang))


def parse_values(values: str, param: str, lang: str = "en") -> list[float]:
    """'0.1, 0.5, 0.9' or 'start:stop:step' (stop included)."""
    values = (values or "").strip()
    name = text(lang, f"compare.sweep.param.{param}") if param in SWEEP_PARAMS else str(param)
    try:
        if ":" in values:
            start, stop, step = (float(v) for v in values.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step)) + 1
            parsed = [round(start + i * step, 6) for i in range(max(count, 0))]
        else:
            parsed = parse_number_list(values, name, float)
    except (ValueError, PlaygroundError):
        raise PlaygroundError(
            text(lang, "compare.sweep.unreadable", param=name, values=repr(values))
        ) from None
    if not parsed:
        raise PlaygroundError(text(lang, "compare.sweep.empty", param=name))
    return parsed
