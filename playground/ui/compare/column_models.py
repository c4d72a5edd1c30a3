"""A decoding column's model, adapter and precision: the pickers' choices for this user, and what
the column shows after a run (its answer and stats, or why it did not run)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.generation.column_models import COLUMN_PRECISIONS, ColumnOutcome
from playground.models.adapter_access import ChoiceRefused, usable_adapters
from playground.ui.compare.decoding_views import column_stats, column_text
from playground.ui.i18n import t, text
from playground.ui.model_choice import BAR_MODEL
from playground.ui.session import owner_of

NO_ADAPTER = "(none)"  # not a valid adapter name, so no adapter can be called this


def adapter_choices(ctx: AppContext, request: gr.Request | None, model: str | None) -> list[tuple[Any, str]]:
    """None, then the adapters this user may run on the column's model (resident, or a preset an
    admin would load)."""
    loaded = ctx.models.current if not model or model == BAR_MODEL else ctx.models.find(model)
    name, source = (loaded.name, loaded.source) if loaded is not None else (model or "", "")
    names = usable_adapters(owner_of(ctx, request), name, source) if name else []
    return [(t("compare.column_adapter.none"), NO_ADAPTER)] + [(n, n) for n in names]


def adapter_dropdown_update(ctx: AppContext, request: gr.Request | None, model: str | None) -> dict:
    return gr.update(choices=adapter_choices(ctx, request, model), value=NO_ADAPTER)


def precision_choices() -> list[tuple[str, str]]:
    return [(p, p) for p in COLUMN_PRECISIONS]


def precision_update(ctx: AppContext, request: gr.Request | None) -> dict:
    """Only admins load models, so only they see the precision."""
    return gr.update(visible=owner_of(ctx, request).is_admin)


def picked_adapter(value: str | None) -> str | None:
    return None if not value or value == NO_ADAPTER else value


def refusal_text(error: PlaygroundError, lang: str) -> str:
    """The message in the page's language where the service says why in words of ours."""
    message = str(error)
    if isinstance(error, ChoiceRefused):
        message = text(lang, f"compare.refused.{error.reason}", **error.refusal_values)
    return text(lang, "compare.column_refused", message=message)


def ran_on(outcome: ColumnOutcome, lang: str) -> str:
    adapter = outcome.adapter or text(lang, "compare.column_adapter.none")
    return text(
        lang, "compare.column_ran_on", model=outcome.model, adapter=adapter, precision=outcome.precision
    )


def outcome_values(outcome: ColumnOutcome, samples: int, lang: str) -> list[str]:
    """The column's output box and stats line."""
    if outcome.error is not None or outcome.result is None:
        refused = refusal_text(outcome.error or PlaygroundError("?"), lang)
        return ["", f"{ran_on(outcome, lang)}\n\n{refused}" if outcome.precision else refused]
    stats = column_stats(outcome.result, lang)
    return [column_text(outcome.result, samples, lang), f"{ran_on(outcome, lang)} · {stats}"]
