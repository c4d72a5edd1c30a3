"""What the token explorer shows, made from service data: clickable answers and two charts."""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.graph_objects as go

from playground.explorer.candidates import Candidate
from playground.explorer.explore import Exploration, answer_pieces
from playground.ui.i18n import text

# The answers' clicks reach the server as a `click` event carrying {answer, step}.
CLICK_JS = """
element.addEventListener('click', (event) => {
  const token = event.target.closest('[data-step]');
  if (!token) return;
  element.querySelectorAll('.xp-selected').forEach((el) => el.classList.remove('xp-selected'));
  token.classList.add('xp-selected');
  trigger('click', {answer: Number(token.dataset.answer), step: Number(token.dataset.step)});
});
"""
CSS = """
.xp-answers { display: flex; gap: 16px; flex-wrap: wrap; }
.xp-answer { flex: 1 1 300px; min-width: 260px; }
.xp-text { white-space: pre-wrap; line-height: 2; font-size: 15px; }
.xp-tok { cursor: pointer; border-radius: 3px; padding: 1px 0; }
.xp-tok.xp-shared { text-decoration: underline dotted; }
.xp-tok.xp-fork { outline: 2px solid #6366f1; }
.xp-tok.xp-selected { outline: 2px solid #111827; }
"""


def probability_colour(p: float) -> str:
    """Red (a long shot) through yellow to green (the model was sure)."""
    hue = 120 * max(0.0, min(1.0, p))
    return f"hsla({hue:.0f}, 85%, 55%, 0.45)"


def answer_title(answers: list[Exploration], a: int, parents: list[int | None], lang: str) -> str:
    e = answers[a]
    if e.branched_at is None or parents[a] is None:
        return text(lang, "explorer.answer", n=a + 1)
    head = text(lang, "explorer.answer", n=a + 1)
    return f"{head}: {text(lang, 'explorer.branch_of', parent=parents[a] + 1, step=e.branched_at + 1)}"


def answers_html(tokenizer: Any, answers: list[Exploration], parents: list[int | None], lang: str) -> str:
    """Each answer as spans of whole characters: coloured by probability, raw tokens on hover."""
    blocks = []
    for a, e in enumerate(answers):
        spans = []
        for piece in answer_pieces(tokenizer, e):
            classes = ["xp-tok"]
            if e.branched_at is not None and piece.start < e.branched_at:
                classes.append("xp-shared")
            if e.branched_at is not None and piece.start <= e.branched_at < piece.start + len(
                piece.token_ids
            ):
                classes.append("xp-fork")
            raw = " ".join(piece.tokens)
            title = f"{raw} · p={piece.probability:.3f}"
            spans.append(
                f"<span class='{' '.join(classes)}' data-answer='{a}' data-step='{piece.start}' "
                f"title='{html.escape(title, quote=True)}' style='background:{probability_colour(piece.probability)}'>"
                f"{html.escape(piece.text) or '&#9251;'}</span>"
            )
        stats = text(lang, "explorer.stats", tokens=len(e.ids), reason=e.reason, seed=e.settings.seed)
        blocks.append(
            f"<div class='xp-answer' id='xp-answer-{a}'><b>{html.escape(answer_title(answers, a, parents, lang))}</b>"
            f"<div class='xp-text'>{''.join(spans)}</div><small>{html.escape(stats)}</small></div>"
        )
    return f"<div class='xp-answers'>{''.join(blocks)}</div>"


def candidate_label(c: Candidate) -> str:
    shown = c.text if c.text and "\ufffd" not in c.text else c.token
    return shown.replace("\n", "\\n") or repr(c.token)


def candidates_figure(candidates: list[Candidate], lang: str) -> go.Figure:
    """Two bars per candidate (raw, after the processors); removed ones marked, the taken one outlined."""
    labels = [f"{i + 1}. {candidate_label(c)}" for i, c in enumerate(candidates)]
    removed = text(lang, "explorer.removed")
    taken = text(lang, "explorer.sampled")
    line = [3 if c.chosen else 0 for c in candidates]
    fig = go.Figure()
    fig.add_bar(
        name=text(lang, "explorer.series.raw"),
        x=labels,
        y=[c.raw for c in candidates],
        marker=dict(color="#94a3b8", line=dict(width=line, color="#111827")),
    )
    fig.add_bar(
        name=text(lang, "explorer.series.after"),
        x=labels,
        y=[c.after for c in candidates],
        marker=dict(
            color=["#e5e7eb" if c.removed else "#6366f1" for c in candidates],
            line=dict(width=line, color="#111827"),
        ),
        text=[removed if c.removed else (taken if c.chosen else "") for c in candidates],
        textposition="outside",
    )
    fig.update_layout(
        barmode="group",
        height=360,
        margin=dict(l=40, r=10, t=30, b=90),
        yaxis=dict(title=text(lang, "explorer.axis.probability"), rangemode="tozero"),
        legend=dict(orientation="h", y=1.12),
    )
    return fig


def entropy_figure(answers: list[Exploration], lang: str) -> go.Figure:
    """Per-step entropy (left axis) and chosen-token probability (right axis), one pair per answer."""
    fig = go.Figure()
    for a, e in enumerate(answers):
        steps = list(range(1, len(e.steps) + 1))
        fig.add_scatter(
            x=steps, y=e.entropies, mode="lines", name=text(lang, "explorer.series.entropy", n=a + 1)
        )
        fig.add_scatter(
            x=steps,
            y=e.chosen_probabilities,
            mode="lines",
            line=dict(dash="dot"),
            yaxis="y2",
            name=text(lang, "explorer.series.chosen", n=a + 1),
        )
    top = max((max(e.entropies, default=0.0) for e in answers), default=1.0)
    fig.update_layout(
        height=300,
        margin=dict(l=40, r=40, t=30, b=40),
        xaxis=dict(title=text(lang, "explorer.axis.step")),
        yaxis=dict(title=text(lang, "explorer.axis.entropy"), range=[0, max(1.0, math.ceil(top))]),
        yaxis2=dict(title="p", overlaying="y", side="right", range=[0, 1]),
        legend=dict(orientation="h", y=1.15),
    )
    return fig
