"""Picking a model besides the bar's (Side by side columns, the arena): the resident ones for
everyone, presets to load for admins (generation/column_models.py holds the picked one)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.models import PRESETS
from playground.ui.i18n import t
from playground.ui.session import owner_of

BAR_MODEL = "(model bar)"


def model_choices(
    ctx: AppContext, request: gr.Request | None, with_bar: bool = True
) -> list[tuple[Any, str]]:
    """The resident models (with their memory), then for admins the presets that would load."""
    resident = ctx.models.resident()
    choices: list[tuple[Any, str]] = [(t("model_choice.bar"), BAR_MODEL)] if with_bar else []
    choices += [(f"{i.key} ({i.memory})", i.key) for i in resident]
    if owner_of(ctx, request).is_admin:
        names = {i.key for i in resident} | {i.name for i in resident}
        choices += [(f"{key} ({p.size}) *", key) for key, p in PRESETS.items() if key not in names]
    return choices


def model_dropdown_update(ctx: AppContext, request: gr.Request | None) -> dict:
    return gr.update(choices=model_choices(ctx, request))
