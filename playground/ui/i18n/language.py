"""The page's language switch: a cookie that the server makes the request's language.

gradio's frontend picks its language from the browser (navigator.language), and the server reads
a request's Accept-Language. With the cookie set, this ASGI middleware rewrites Accept-Language on
every request and puts a tiny script at the top of the page that makes navigator.language say
the same, before gradio's own scripts read it: the whole page, server messages included,
follows the switch.
"""

from __future__ import annotations

import json
from typing import Any

from playground.ui.i18n import LANGUAGES

COOKIE = "playground_lang"

# Called by the switch's links; a reload lets gradio start again in the chosen language.
SWITCH_SCRIPT = (
    "<script>function playgroundLanguage(lang) {"
    f'document.cookie = "{COOKIE}=" + lang + "; path=/; max-age=31536000; SameSite=Lax";'
    "location.reload(); }</script>"
)


def switch_html() -> str:
    links = " · ".join(
        f'<a href="#" id="lang-{lang}" onclick="playgroundLanguage(\'{lang}\'); return false;">{name}</a>'
        for lang, name in (("zh-TW", "中文"), ("en", "English"))
    )
    return f'<div class="language-switch">{links}</div>'


def cookie_language(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, chosen = part.strip().partition("=")
            if key == COOKIE and chosen in LANGUAGES:
                return chosen
    return None


class LanguageMiddleware:
    """ASGI middleware: the cookie's language as Accept-Language, and in the page's navigator."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        lang = cookie_language(scope.get("headers") or []) if scope["type"] in ("http", "websocket") else None
        if lang is None:
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"accept-language"]
        scope = dict(scope, headers=[*headers, (b"accept-language", lang.encode())])
        if scope["type"] != "http" or scope.get("path") != "/":
            await self.app(scope, receive, send)
            return
        quoted = json.dumps(lang)
        script = (
            f"<script>Object.defineProperty(navigator, 'language', {{get: () => {quoted}}});"
            f"Object.defineProperty(navigator, 'languages', {{get: () => [{quoted}]}});</script>"
        ).encode()
        await self.app(scope, receive, _inject_after_head(send, script))


def _inject_after_head(send: Any, script: bytes) -> Any:
    """A `send` that puts `script` right after the page's <head> (the page is one body message)."""
    start: dict = {}

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] == "http.response.body" and start:
            body = message.get("body", b"")
            if message.get("more_body") or b"<head>" not in body:
                await send(dict(start))  # streamed or not a page: passed on untouched
            else:
                body = body.replace(b"<head>", b"<head>" + script, 1)
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                await send(dict(start, headers=[*headers, (b"content-length", str(len(body)).encode())]))
            start.clear()
            await send(dict(message, body=body))
            return
        await send(message)

    return wrapped
