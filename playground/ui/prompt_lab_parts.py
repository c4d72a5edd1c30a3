"""Prompt lab helpers without layout: data choices, the prompt preview, the k-sweep chart and table."""

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
from playground.prompts.fewshot import BM25, FewShotBuilder, FewShotConfig, select_examples
from playground.prompts.templates import PromptTemplate
from playground.ui.prompt_lab_controls import LabControls

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

_bm25_cache: dict[tuple[str, str, int], BM25] = {}


class _PreviewBuilder(FewShotBuilder):
    """Reuses one BM25 index per pool: the preview reruns on every keystroke, a 5000-row index does not."""

    def __init__(self, template: PromptTemplate, config: FewShotConfig, pool: Dataset):
        super().__init__(template, config, pool.examples)
        self.key = (pool.name, pool.sha256, len(pool.examples))

    def select(self, query: Example) -> list[Example]:
        index = None
        if self.config.selection == "similar" and self.config.k > 0:
            index = _bm25_cache.get(self.key)
            if index is None:
                if len(_bm25_cache) >= 4:
                    _bm25_cache.clear()
                index = _bm25_cache[self.key] = BM25([f"{e.instruction}\n{e.input}" for e in self.pool])
        return select_examples(self.pool, query, self.config, index=index)


def build_preview(
    controls: LabControls,
    test: Dataset | None,
    pool: Dataset | None,
    query_index: Any,
    loaded: LoadedModel | None,
    max_new_tokens: int = 0,
) -> tuple[str, str]:
    """(exact prompt text, a line on its size): token count and warning only when a model is loaded."""
    query = _query(test, query_index)
    builder = _PreviewBuilder(
        controls.resolve(loaded), controls.fewshot(), pool if pool is not None else test
    )
    if loaded is None:
        text = builder.build(query, None)
        return text, (
            f"{len(text)} characters · **no model loaded**, so no token count "
            "(and the chat template is shown as plain text). Load one at the top of the page."
        )
    p = builder.preview(query, loaded.tokenizer, loaded.context_length, int(max_new_tokens))
    shown = ", ".join(p.example_ids) if p.example_ids else "none"
    info = (
        f"**{p.n_tokens} tokens** (+ {int(max_new_tokens)} new) of {p.context_length} · "
        f"{len(p.example_ids)} example(s): {shown}"
    )
    if p.warning:
        info += f"\n\n⚠️ {p.warning}"
    return p.text, info


def try_stop_strings(controls: LabControls, loaded: LoadedModel | None) -> tuple[str, ...]:
    """Where "Try" ends the answer: at the next user turn of the template or of the examples."""
    return FewShotBuilder(controls.resolve(loaded), controls.fewshot(), []).stop_strings()


def query_line(test: Dataset | None, index: Any) -> str:
    try:
        query = _query(test, index)
    except PlaygroundError:
        return ""
    ref = query.answers[0] if query.answers else "(none)"
    return f"**Question id {query.id}** · reference answer: {_short(ref, 300)}"


def model_line(ctx: AppContext) -> str:
    cur = ctx.models.current
    if cur is None:
        return "**No model loaded.** Load one at the top of the page (the preview works without it)."
    return f"Model: **{cur.name}** · context {cur.context_length} tokens (change it at the top of the page)"


def sweep_chart(result: SweepResult | None, metric: str | None) -> go.Figure:
    fig = go.Figure()
    title = "Run an evaluation to see the metric against k"
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
        better = "lower is better" if lower_is_better(metric) else "higher is better"
        title = f"{metric} against k ({better}), mean ± std over seeds; k=0 is zero-shot"
    fig.update_layout(
        title=title,
        height=380,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        xaxis={"title": "k (in-context examples)", "dtick": 1},
        yaxis_title=metric or "",
    )
    return fig


def summary_frame(result: SweepResult | None) -> pd.DataFrame:
    rows = result.rows() if result is not None else []
    return pd.DataFrame(rows).round(4) if rows else pd.DataFrame({"": ["No runs yet."]})
