"""The page's words in English and Traditional Chinese (台灣用語), from one catalogue.

Labels, info texts and fixed messages are keys, `t("chat.send")`, which the browser translates
(gradio's I18n) into the page's language. Messages made on the server with values in them,
errors included, are formatted here with `tr(request, key, **values)` in the language the
request asks for. The language is the browser's, unless the page's switch chose one
(`language.py`: a cookie that the server turns into the request's Accept-Language).

Each area of the page keeps its words in `catalogue/<area>.py` as two dicts, EN and ZH_TW,
with the same keys; `tests/test_i18n.py` holds them to that. The services' error messages are
areas too, in playground/messages/catalogue (services read them without gradio).
"""

from __future__ import annotations

import string
from typing import Any

import gradio as gr

from playground import messages
from playground.messages import DEFAULT, LANGUAGES, fill, load_catalogue
from playground.ui.i18n import catalogue

# The services' messages (errors with a key) are part of the one catalogue.
WORDS = load_catalogue(catalogue, messages.catalogue)
I18N = gr.I18n(**{"en": WORDS["en"], "zh-TW": WORDS["zh-TW"]})


def t(key: str) -> Any:
    """A label the browser shows in its language (a gradio I18nData)."""
    if key not in WORDS[DEFAULT]:
        raise KeyError(f"no such key in the catalogue: {key}")
    return I18N(key)


def language_of(request: Any) -> str:
    """The language a request asks for: its Accept-Language, best first, among LANGUAGES."""
    header = ""
    headers = getattr(request, "headers", None)
    if headers is not None:
        header = headers.get("accept-language", "") or ""
    for part in header.split(","):
        tag = part.split(";")[0].strip()
        if not tag:
            continue
        if tag in LANGUAGES:
            return tag
        if tag.lower().startswith("zh"):
            # Simplified-Chinese browsers still read Traditional more easily than English.
            return "zh-TW"
        if tag.lower().startswith("en"):
            return "en"
    return DEFAULT


def text(lang: str, key: str, **values: Any) -> str:
    """The words for `key` in `lang` (English where that language lacks them), filled in."""
    return fill(WORDS, lang, key, values)


def tr(request: Any, key: str, **values: Any) -> str:
    """`text` in the language of `request` (a gr.Request, or None for English)."""
    return text(language_of(request), key, **values)


def placeholders(words: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(words) if name}
