"""The adapter-vs-base heatmap that the Leaderboard and Side by side both show.

One row of cells per scored reference, one cell per character (a character split over byte
tokens is one cell), its colour adapter NLL - base NLL on a diverging scale centred on zero:
blue where the adapter made the reference more likely, red where less.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.explorer.adapter_diff import CharacterDiff
from playground.ui.i18n import text

# Explicit ends, not a named scale: plotly.py's "RdBu" and plotly.js's run in opposite directions.
DIVERGING = [[0.0, "#1d4ed8"], [0.5, "#f8fafc"], [1.0, "#b91c1c"]]
ROW_HEIGHT = 64


def cell_label(character: str) -> str:
    """What an x label shows: white space made visible."""
    return character.replace("\n", "\\n").replace(" ", "␣") or "∅"


def diff_summary(characters: Sequence[CharacterDiff], lang: str = "en") -> str:
    """One line: the total change and how many characters got more likely."""
    return text(
        lang,
        "adapter_diff.summary",
        total=f"{sum(c.difference for c in characters):+.2f}",
        more=sum(c.difference < 0 for c in characters),
        count=len(characters),
    )


def adapter_diff_figure(rows: Sequence[tuple[str, Sequence[CharacterDiff]]], lang: str = "en") -> go.Figure:
    """A heatmap row per (title, characters); one colour scale for all, symmetric around zero."""
    rows = [(title, list(chars)) for title, chars in rows if chars]
    fig = make_subplots(
        rows=max(1, len(rows)),
        cols=1,
        subplot_titles=[html.escape(title) for title, _ in rows] or None,
        vertical_spacing=min(0.3, 0.9 / max(1, len(rows))),
    )
    top = max((abs(c.difference) for _, chars in rows for c in chars), default=1.0) or 1.0
    hover = text(lang, "adapter_diff.hover")
    for r, (_, chars) in enumerate(rows, start=1):
        fig.add_heatmap(
            z=[[c.difference for c in chars]],
            x=list(range(len(chars))),
            customdata=[[[cell_label(c.text), c.base_nll, c.adapter_nll] for c in chars]],
            hovertemplate=hover + "<extra></extra>",
            coloraxis="coloraxis",
            xgap=1,
            row=r,
            col=1,
        )
        fig.update_xaxes(
            tickvals=list(range(len(chars))),
            ticktext=[cell_label(c.text) for c in chars],
            tickangle=0,
            row=r,
            col=1,
        )
        fig.update_yaxes(showticklabels=False, row=r, col=1)
    fig.update_layout(
        coloraxis=dict(
            colorscale=DIVERGING,
            cmin=-top,
            cmax=top,
            colorbar=dict(title=dict(text=text(lang, "adapter_diff.colour_title"), side="right")),
        ),
        height=110 + ROW_HEIGHT * max(1, len(rows)) * 1.5,
        margin=dict(l=20, r=20, t=60, b=30),
        title=dict(text=text(lang, "adapter_diff.title"), font=dict(size=14)),
    )
    return fig
