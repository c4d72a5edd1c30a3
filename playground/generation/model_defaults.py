"""Each model's default chat decoding: its preset's, else its own generation_config, else ours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from playground.generation.settings import DecodingSettings
from playground.models.presets import find_preset

CHAT_DEFAULT = DecodingSettings(temperature=0.7, top_p=0.9, top_k=50, max_new_tokens=256, seed=None)
_FROM_CONFIG = ("temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty")


@dataclass(frozen=True)
class ModelDecoding:
    settings: DecodingSettings
    source: str  # where the values come from, said on the page
    origin: Literal["card", "config", "playground"]  # the same, as a key the page translates


def model_decoding(name: str, generation_config: Any = None) -> ModelDecoding:
    """The decoding a student starts from with model `name` (a preset key, HF id or folder)."""
    preset = find_preset(name or "")
    if preset is not None and preset.decoding:
        return ModelDecoding(CHAT_DEFAULT.with_(**preset.decoding).validate(), "the model card", "card")
    if generation_config is not None and getattr(generation_config, "do_sample", False):
        values = {k: getattr(generation_config, k, None) for k in _FROM_CONFIG}
        kept = {k: type(getattr(CHAT_DEFAULT, k))(v) for k, v in values.items() if v is not None}
        try:
            settings = CHAT_DEFAULT.with_(**kept).validate()
            return ModelDecoding(settings, "the model's generation_config", "config")
        except Exception:  # noqa: BLE001 - odd values in a downloaded config: fall back to ours
            pass
    return ModelDecoding(CHAT_DEFAULT, "the playground's defaults", "playground")
