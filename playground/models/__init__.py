"""Model service: presets, loading, and the one resident model."""

from playground.models.loader import LoadedModel, LoadOptions, load_model
from playground.models.manager import ModelManager
from playground.models.presets import EMBEDDED_KEY, PRESETS, ModelPreset, find_preset

__all__ = [
    "EMBEDDED_KEY",
    "PRESETS",
    "LoadOptions",
    "LoadedModel",
    "ModelManager",
    "ModelPreset",
    "find_preset",
    "load_model",
]
