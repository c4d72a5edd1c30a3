"""Which trained adapters a person may run on a model: theirs (or the operator's, or any for an
admin), trained on that model's base; and the checks a typed adapter name goes through."""

from __future__ import annotations

from pathlib import Path

from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.models.adapters import base_matches, list_adapters, read_adapter
from playground.models.loader import LoadedModel
from playground.names import named_path
from playground.paths import adapters_dir


class ChoiceRefused(PlaygroundError):
    """A model, adapter or precision this person may not run where they picked it.

    `reason` names the refusal ("adapter_name", "adapter_missing", "adapter_owner", "adapter_base",
    "precision") so that a page can say it in its own language, with `refusal_values` filled in."""

    def __init__(self, reason: str, message: str, **values: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.refusal_values = values


def _owner_of(folder: Path) -> str | None:
    # Training imports the models package, so its owner lookup is imported late.
    from playground.training.adapters import adapter_owner

    return adapter_owner(folder)


def usable_adapters(owner: Owner, model_name: str, model_source: str = "") -> list[str]:
    """The adapters `owner` may run on the model called `model_name`, alphabetically."""
    return sorted(
        a.name
        for a in list_adapters()
        if a.base_model
        and base_matches(a.base_model, model_name, model_source)
        and owner.can_use(_owner_of(a.path))
    )


def usable_adapter_folder(owner: Owner, name: str, loaded: LoadedModel, check_base: bool = True) -> Path:
    """The folder of the adapter `name`, once it is known to exist, to be `owner`'s to use and
    (with `check_base`) to belong to `loaded`'s base model; a ChoiceRefused saying which check
    failed otherwise. Without `check_base`, attaching it checks its weights against the model."""
    shown = str(name)[:80]
    try:
        folder = named_path(adapters_dir(), name, "adapter")
    except PlaygroundError:
        raise ChoiceRefused(
            "adapter_name", f"{shown!r} is not an adapter's name: pick one from the list.", adapter=shown
        ) from None
    info = read_adapter(folder)
    if info is None:
        raise ChoiceRefused(
            "adapter_missing",
            f"There is no adapter {shown!r} (deleted?): pick one from the list.",
            adapter=shown,
        )
    if not owner.can_use(_owner_of(folder)):
        raise ChoiceRefused(
            "adapter_owner",
            f"Adapter {shown!r} belongs to another user: only its owner or an admin may use it.",
            adapter=shown,
        )
    if check_base and not (info.base_model and base_matches(info.base_model, loaded.name, loaded.source)):
        base = info.base_model or "an unknown model"
        raise ChoiceRefused(
            "adapter_base",
            f"Adapter {shown!r} was trained on {base}, not on {loaded.name}: pick an adapter of this "
            "column's model, or the model it was trained on.",
            adapter=shown,
            base=base,
            model=loaded.name,
        )
    return folder
