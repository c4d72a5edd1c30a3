"""Service messages with a key and values, so the page can show them in the reader's language.

A service raises `PlaygroundError(Message("data.empty"))`; `str(error)` is the English text (logs,
CLI, API), and the page shows `error.in_language(lang)`. The words live in `catalogue/<area>.py`
(EN and ZH_TW, the same keys), which the UI merges into its own catalogue (playground.ui.i18n):
one catalogue, readable here without gradio.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

LANGUAGES = ("en", "zh-TW")
DEFAULT = "en"


def load_catalogue(*packages: ModuleType) -> dict[str, dict[str, str]]:
    """Every area module's EN and ZH_TW of `packages`, merged; a key defined twice is an error."""
    merged: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for package in packages:
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for lang, words in (("en", module.EN), ("zh-TW", module.ZH_TW)):
                clash = merged[lang].keys() & words.keys()
                if clash:
                    raise RuntimeError(f"keys defined twice in the catalogue: {sorted(clash)}")
                merged[lang].update(words)
    return merged


def fill(words_by_lang: dict[str, dict[str, str]], lang: str, key: str, values: dict[str, Any]) -> str:
    """The words for `key` in `lang` (English where that language lacks them), filled in.

    A value that is itself a Message is put in the same language first.
    """
    words = words_by_lang.get(lang, {}).get(key) or words_by_lang[DEFAULT][key]
    if not values:
        return words
    shown = {
        name: value.in_language(lang, words_by_lang) if isinstance(value, Message) else value
        for name, value in values.items()
    }
    return words.format(**shown)


class Message:
    """A catalogue key and the values its words are filled in with."""

    def __init__(self, key: str, **values: Any) -> None:
        if key not in WORDS[DEFAULT]:
            raise KeyError(f"no such key in the service messages: {key}")
        self.key = key
        self.values = values

    def in_language(self, lang: str, words_by_lang: dict[str, dict[str, str]] | None = None) -> str:
        return fill(words_by_lang or WORDS, lang, self.key, self.values)

    def __str__(self) -> str:
        return self.in_language(DEFAULT)

    def __repr__(self) -> str:
        return f"Message({self.key!r}, **{self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.key, self.values) == (other.key, other.values)

    __hash__ = None  # type: ignore[assignment]


from playground.messages import catalogue  # noqa: E402 - the area modules need nothing above

WORDS = load_catalogue(catalogue)
