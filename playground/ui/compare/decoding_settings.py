"""A decoding column's settings: its controls' values to DecodingSettings and back, and its label."""

from __future__ import annotations

from typing import Any

from playground.generation.settings import PRESETS, DecodingSettings
from playground.ui.compare.shared import seed_or_none
from playground.ui.i18n import t, text
from playground.ui.i18n.catalogue.compare import PRESET_KEYS

MAX_COLUMNS = 6
DEFAULT_COLUMNS = 3
MAX_NEW_TOKENS = 1024
DEFAULT_MAX_NEW = 64
# The homework's cases first, so the default three columns are greedy / focused / creative.
COLUMN_PRESETS = [
    "greedy",
    "focused (T 0.1, top-p 0.3, no-repeat 3)",
    "creative (T 1.2, top-k 10, top-p 0.9)",
    "beams 3",
    "beams 5",
    "default sampling (T 0.7, top-p 0.9)",
]
MODES = ["greedy", "sample", "beam"]
# Per-column knobs, in the order the handlers receive them.
KNOBS = (
    "mode",
    "temperature",
    "top_p",
    "top_k",
    "num_beams",
    "length_penalty",
    "no_repeat",
    "rep",
    "max_new",
)


def preset_choices() -> list[tuple[Any, str]]:
    return [(t(PRESET_KEYS[name]) if name in PRESET_KEYS else name, name) for name in PRESETS]


def mode_choices() -> list[tuple[Any, str]]:
    return [(t(f"compare.mode.{mode}"), mode) for mode in MODES]


def settings_from_knobs(
    mode: str,
    temperature: float,
    top_p: float,
    top_k: float,
    num_beams: float,
    length_penalty: float,
    no_repeat: float,
    rep: float,
    max_new: float,
    seed: float | None = 0,
) -> DecodingSettings:
    return DecodingSettings(
        do_sample=mode == "sample",
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        num_beams=int(num_beams) if mode == "beam" else 1,
        length_penalty=float(length_penalty),
        no_repeat_ngram_size=int(no_repeat),
        repetition_penalty=float(rep),
        max_new_tokens=int(max_new),
        seed=seed_or_none(seed),
    )


def knobs_from_settings(s: DecodingSettings) -> list[Any]:
    """The values of a column's knobs for `s`, all but max new tokens (a preset leaves it as it is)."""
    mode = "beam" if s.num_beams > 1 else ("sample" if s.do_sample else "greedy")
    return [
        mode,
        s.temperature,
        s.top_p,
        s.top_k,
        s.num_beams,
        s.length_penalty,
        s.no_repeat_ngram_size,
        s.repetition_penalty,
    ]


def preset_knobs(name: str) -> list[Any]:
    return knobs_from_settings(PRESETS[name])


def decoding_label(s: DecodingSettings, lang: str = "en") -> str:
    """A short label for a column: only the settings that matter in its mode."""
    if s.mode == "beam":
        parts = [
            text(lang, "compare.label.beams", beams=s.num_beams),
            text(lang, "compare.label.length_penalty", value=f"{s.length_penalty:g}"),
        ]
    elif s.mode == "sample":
        parts = [
            text(lang, "compare.label.temperature", value=f"{s.temperature:g}"),
            text(lang, "compare.label.top_p", value=f"{s.top_p:g}"),
            text(lang, "compare.label.top_k", value=s.top_k or text(lang, "compare.label.off")),
        ]
    else:
        parts = [text(lang, "compare.label.greedy")]
    if s.no_repeat_ngram_size:
        parts.append(text(lang, "compare.label.no_repeat", size=s.no_repeat_ngram_size))
    if s.repetition_penalty != 1.0:
        parts.append(text(lang, "compare.label.repetition_penalty", value=f"{s.repetition_penalty:g}"))
    return text(lang, "compare.label.separator").join(parts)


def settings_summary(s: DecodingSettings, lang: str = "en") -> str:
    return text(lang, "compare.summary", label=decoding_label(s, lang), max_new=s.max_new_tokens)


def default_summary(column: int, lang: str = "en") -> str:
    """The summary of a column as the page first shows it."""
    return settings_summary(PRESETS[COLUMN_PRESETS[column]].with_(max_new_tokens=DEFAULT_MAX_NEW), lang)
