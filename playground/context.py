"""The services one running app shares between its tabs (no UI code here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.models import ModelManager


@dataclass
class AppContext:
    models: ModelManager = field(default_factory=ModelManager)
