"""Prompt lab helpers without layout: data choices, the prompt preview, the k-sweep chart and table.

Lines shown to the user take the request, for its language (None: English)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from playground.context import AppContext
from playground.data import list_examples
from playground.data_types import Dataset, Example
from playground.errors import PlaygroundError
from playground.evaluation.sweep import SweepResult
from playground.leaderboard import lower_is_better
from playground.models.loader import LoadedModel
from playground.prompts.fewshot import FewShotBuilder
from playground.ui.i18n import tr
from playground.ui.prompt_lab.controls import LabControls

# --------------------------------------------------------------------------- data


def matching_train(test_name: str | None) -> str | None:
    """The demo training file that goes with a demo test file (x_test.json -> x_train.json)."""
    if not test_name or "_test." not in test_name:
        return None
    candidate = test_name.replace("_test.", "_train.")
    return candidate if any(p.name == candidate for p in list_examples()) else None


def _short(text: str, n: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def query_choices(test: Dataset | None) -> list[tuple[str, int]]:
    if test is None:
        return []
    return [(f"{i + 1}. {_short(f'{e.instruction} {e.input}')}", i) for i, e in enumerate(test.examples)]


def effective_pool(test: Dataset | None, pool: Dataset | None) -> list[Example]:
    """Examples come from the training set; without one, from the test set (never the query itself)."""
    if pool is not None:
        return pool.examples
    return test.examples if test is not None else []


def pool_frame(examples: list[Example]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [e.id, _short(e.instruction, 100), _short(e.input, 60), _short(e.output or "", 100)]
            for e in examples
        ],
        columns=["id", "instruction", "input", "output"],
    )


def id_choices(examples: list[Example]) -> list[tuple[str, str]]:
    """Rows that can be hand-picked: only those with an output."""
    return [(f"{e.id}: {_short(e.instruction, 40)}", e.id) for e in examples if e.output is not None]


def _query(test: Dataset | None, index: Any) -> Example:
    if test is None or not test.examples:
        raise PlaygroundError("Pick a test set with at least one row.")
    i = int(index) if index is not None else 0
    return test.examples[min(max(i, 0), len(test.examples) - 1)]


# --------------------------------------------------------------------------- preview and chart


def build_preview(
    controls: LabControls,
    test: Dataset | None,
    pool: Dataset | None,
    query_index: Any,
    loaded: LoadedModel | None,
    max_new_tokens: int = 0,
    request: Any = None,
) -> tuple[str, str]:
    """(exact prompt text, a line on its size): token count and warning only when a model is loaded."""
    query = _query(test, query_index)
    examples_from = pool if pool is not None else test
    builder = FewShotBuilder(
        controls.resolve(loaded),
        controls.fewshot(),
        examples_from.examples,
        # The preview reruns on every keystroke: one BM25 index per pool, not per keystroke.
        index_key=(examples_from.name, examples_from.sha256, len(examples_from.examples)),
    )
    if loaded is None:
        text = builder.build(query, None)
        return text, tr(request, "prompt_lab.preview.no_model", chars=len(text))
    p = builder.preview(query, loaded.tokenizer, loaded.context_length, int(max_new_tokens))
    shown = ", ".join(p.example_ids) if p.example_ids else tr(request, "prompt_lab.preview.no_examples")
    info = tr(
        request,
        "prompt_lab.preview.tokens",
        tokens=p.n_tokens,
        new=int(max_new_tokens),
        context=p.context_length,
        count=len(p.example_ids),
        ids=shown,
    )
    if p.warning:
        info += f"\n\n⚠️ {p.warning}"
    return p.text, info


def try_stop_strings(controls: LabControls, loaded: LoadedModel | None) -> tuple[str, ...]:
    """Where "Try" ends the answer: at the next user turn of the template or of the examples."""
    return FewShotBuilder(controls.resolve(loaded), controls.fewshot(), []).stop_strings()


def query_line(test: Dataset | None, index: Any, request: Any = None) -> str:
    try:
        query = _query(test, index)
    except PlaygroundError:
        return ""
    ref = query.answers[0] if query.answers else tr(request, "prompt_lab.query.no_reference")
    return tr(request, "prompt_lab.query.line", id=query.id, reference=_short(ref, 300))


def model_line(ctx: AppContext, request: Any = None) -> str:
    cur = ctx.models.current
    if cur is None:
        return tr(request, "prompt_lab.model.none")
    return tr(request, "prompt_lab.model.line", name=cur.name, context=cur.context_length)


def sweep_chart(result: SweepResult | None, metric: str | None, request: Any = None) -> go.Figure:
    fig = go.Figure()
    title = tr(request, "prompt_lab.chart.empty")
    if result is not None and metric:
        ks, means, stds = result.series(metric)
        fig.add_scatter(
            x=ks,
            y=means,
            mode="lines+markers",
            name=metric,
            error_y={"type": "data", "array": stds, "visible": True},
            text=[f"k={k}: {m:.4g} ± {s:.2g}" for k, m, s in zip(ks, means, stds, strict=True)],
        )
        better = tr(
            request, "prompt_lab.chart.lower" if lower_is_better(metric) else "prompt_lab.chart.higher"
        )
        title = tr(request, "prompt_lab.chart.title", metric=metric, better=better)
    fig.update_layout(
        title=title,
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        xaxis={"title": tr(request, "prompt_lab.chart.x"), "dtick": 1},
        yaxis_title=metric or "",
    )
    return fig


def summary_frame(result: SweepResult | None, request: Any = None) -> pd.DataFrame:
    rows = result.rows() if result is not None else []
    return (
        pd.DataFrame(rows).round(4) if rows else pd.DataFrame({"": [tr(request, "prompt_lab.summary.empty")]})
    )
