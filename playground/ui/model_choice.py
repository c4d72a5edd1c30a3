"""Picking a model besides the bar's (Side by side columns, the arena): the resident ones for
everyone, presets to load for admins, and holding the picked one while it works."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.models import PRESETS, LoadedModel, LoadOptions
from playground.models.sources import check_model_source, trust_remote_code_allowed
from playground.ui.common import progress_callback
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


@contextmanager
def holding_model(
    ctx: AppContext, request: gr.Request | None, key: str | None, progress: gr.Progress | None = None
) -> Iterator[LoadedModel]:
    """The picked model, held while the block runs; one that is not resident loads (admins only)."""
    if not key or key == BAR_MODEL:
        with ctx.models.use() as loaded:
            yield loaded
        return
    admin = owner_of(ctx, request).is_admin
    if admin and ctx.models.find(key) is None:
        key = check_model_source(key, shared=ctx.deployment.shared)
    options = LoadOptions(trust_remote_code=trust_remote_code_allowed())
    report = progress_callback(progress) if progress is not None else None
    with ctx.models.use_model(key, options, report, may_load=admin) as loaded:
        yield loaded
