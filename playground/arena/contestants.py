"""Who can fight in the arena: a resident model, with an adapter or not, under a decoding preset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playground.errors import PlaygroundError
from playground.generation.settings import PRESETS
from playground.identity import Owner
from playground.models import ModelManager
from playground.models.adapter_access import usable_adapters

SEPARATOR = " | "
BASE = "base"
# Beam presets run alone on generate(); the arena keeps to what streams in the engine's batch.
ARENA_PRESETS = tuple(name for name, s in PRESETS.items() if s.num_beams == 1 and name != "beams 1")


@dataclass(frozen=True)
class Contestant:
    """model: a resident model's key; adapter: a trained adapter's name (None: the base model);
    preset: a decoding preset's name (generation/settings.PRESETS)."""

    model: str
    adapter: str | None
    preset: str

    @property
    def label(self) -> str:
        return SEPARATOR.join((self.model, self.adapter or BASE, self.preset))

    @classmethod
    def parse(cls, label: str) -> Contestant:
        parts = str(label).rsplit(SEPARATOR, 2)
        if len(parts) != 3 or parts[2] not in ARENA_PRESETS or not parts[0].strip():
            raise PlaygroundError(f"{str(label)[:80]!r} is not one of the arena's contestants.")
        model, adapter, preset = parts
        return cls(model, None if adapter == BASE else adapter, preset)


def contestants(manager: ModelManager, owner: Owner) -> list[Contestant]:
    """Every resident model x (base + the adapters trained on it that `owner` may use) x every
    streaming preset.

    With an external engine the models hold no weights here, so no adapters are offered."""
    out = []
    for info in manager.resident():
        fitting = usable_adapters(owner, info.name) if manager.remote is None else []
        for adapter in [None, *fitting]:
            out += [Contestant(info.key, adapter, preset) for preset in ARENA_PRESETS]
    return out


def check_contestants(manager: ModelManager, owner: Owner, picked: Sequence[str]) -> list[Contestant]:
    """The ticked contestants, each one still on offer to `owner`; at least two different ones."""
    offered = {c.label: c for c in contestants(manager, owner)}
    chosen = []
    for label in dict.fromkeys(picked or []):
        contestant = Contestant.parse(label)
        if contestant.label not in offered:
            raise PlaygroundError(
                f"{contestant.label} is not available now (its model left memory or its adapter is "
                "gone). Refresh the list."
            )
        chosen.append(contestant)
    if len(chosen) < 2:
        raise PlaygroundError("Tick at least two contestants: a battle needs two.")
    return chosen
