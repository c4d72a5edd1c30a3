"""Which model a request names: a resident model, or `model+adapter` for an adapter the caller may use.

`resident_model` is the one place that turns a requested name into a resident model (any of
the manager's, by key or name); the API never loads one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from playground.api.errors import ApiError
from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.models.adapters import attach_adapter, list_adapters, read_adapter
from playground.models.loader import LoadedModel
from playground.names import named_path
from playground.paths import adapters_dir
from playground.prompts.templates import PromptTemplate, adapter_template
from playground.training.adapters import adapter_owner

ADAPTER_SEPARATOR = "+"


@dataclass(frozen=True)
class ModelChoice:
    """The resident model a request runs on, with its adapter (None: the base) and chat template."""

    loaded: LoadedModel
    adapter: str | None
    template: PromptTemplate
    name: str  # as the caller wrote it, echoed back in responses


@contextmanager
def resident_model(ctx: Any, name: str) -> Iterator[LoadedModel]:
    """The resident model called `name`, held (no load evicts it) for the block."""
    missing = ApiError(
        404, f"No model {name[:80]!r} is loaded here; GET /v1/models lists them.", "model_not_found"
    )
    if ctx.models.find(name) is None:
        raise missing
    try:
        with ctx.models.use_model(name, may_load=False) as loaded:
            yield loaded
    except PlaygroundError as exc:
        if ctx.models.find(name) is None:  # evicted between the look and the hold
            raise missing from exc
        raise


@contextmanager
def chosen_model(ctx: Any, requested: Any, caller: Owner) -> Iterator[ModelChoice]:
    """The model (and adapter) `requested` names, attached and held for the block."""
    if not isinstance(requested, str) or not requested.strip():
        raise ApiError(400, "'model' must name a model; GET /v1/models lists them.", "model_not_found")
    base, sep, adapter = requested.strip().rpartition(ADAPTER_SEPARATOR)
    base = base if sep else adapter
    with resident_model(ctx, base) as loaded:
        if not sep:
            yield ModelChoice(loaded, None, loaded.default_template, requested)
            return
        folder = _adapter_folder(adapter, caller)
        info = read_adapter(folder)
        attached = attach_adapter(loaded, folder)
        template = adapter_template(info.settings if info else {}, loaded.default_template)
        yield ModelChoice(loaded, attached, template, requested)


def _adapter_folder(name: str, caller: Owner) -> Any:
    try:
        folder = named_path(adapters_dir(), name, "adapter")
    except PlaygroundError as exc:
        raise ApiError(404, str(exc), "model_not_found") from None
    if read_adapter(folder) is None:
        raise ApiError(
            404, f"No adapter {name!r}; GET /v1/models lists the ones you may use.", "model_not_found"
        )
    if not caller.can_use(adapter_owner(folder)):
        raise ApiError(
            403,
            f"Adapter {name!r} belongs to another user: only its owner or an admin may use it.",
            "adapter_not_yours",
        )
    return folder


def model_ids(ctx: Any, caller: Owner) -> list[str]:
    """The names a caller may send as `model`: each resident model, and it with each usable adapter."""
    usable = sorted(a.name for a in list_adapters() if caller.can_use(adapter_owner(a.path)))
    ids = []
    for info in ctx.models.resident():
        ids += [info.key] + [f"{info.key}{ADAPTER_SEPARATOR}{a}" for a in usable]
    return ids
