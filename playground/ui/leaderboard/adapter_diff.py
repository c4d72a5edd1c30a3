"""A clicked example of an adapter run, scored again by the base model and by the adapter.

The run's stored prompt is the text it was scored on (its template and shots included), so the
same (prompt, reference) goes to the perplexity service twice; the model ends with the adapters it
had before, so no other tab sees this one switched on.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.explorer.adapter_diff import adapter_vs_base
from playground.generation.adapter_compare import restoring_adapters
from playground.models.adapters import attach_adapter
from playground.names import named_path
from playground.paths import adapters_dir
from playground.ui.adapter_diff_chart import adapter_diff_figure, diff_summary
from playground.ui.i18n import language_of, text
from playground.ui.session import owner_of

HIDDEN = gr.update(visible=False, value=None)


def example_adapter_diff(
    ctx: AppContext, run_id: int | None, index: int | None, request: Any
) -> tuple[Any, Any]:
    """(note, plot) for the Leaderboard's run detail; both empty unless the run used an adapter."""
    if run_id is None or index is None:
        return "", HIDDEN
    lang = language_of(request)
    record = ctx.leaderboard.run(int(run_id))
    if not record.adapter:
        return "", HIDDEN
    # The viewer's own check: another user's private run gives its usual refusal here too.
    examples = ctx.leaderboard.examples(record.id, viewer=owner_of(ctx, request))
    if not 0 <= int(index) < len(examples):
        return "", HIDDEN
    example = examples[int(index)]
    if not example.reference:
        return text(lang, "adapter_diff.no_reference"), HIDDEN
    with ctx.models.use() as loaded:
        if loaded.name != record.model:
            return text(lang, "adapter_diff.other_model", model=record.model), HIDDEN
        with restoring_adapters(loaded):
            try:
                name = attach_adapter(loaded, named_path(adapters_dir(), record.adapter, "adapter"))
            except PlaygroundError as exc:
                return text(
                    lang,
                    "adapter_diff.missing_adapter",
                    adapter=record.adapter,
                    problem=exc.in_language(lang),
                ), HIDDEN
            characters = adapter_vs_base(loaded, [(example.prompt, example.reference)], name)[0]
    heading = text(lang, "adapter_diff.heading", adapter=record.adapter)
    note = f"**{heading}** · {diff_summary(characters, lang)}"
    figure = adapter_diff_figure([(f"#{example.idx}", characters)], lang)
    return note, gr.update(visible=True, value=figure)
