"""The UI catalogue: every key in both languages with the same placeholders, and the switch."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from playground.ui.i18n import LANGUAGES, WORDS, language_of, placeholders, t, text, tr
from playground.ui.i18n.language import COOKIE, LanguageMiddleware, cookie_language


def test_every_key_is_in_both_languages_with_the_same_placeholders():
    en, zh = WORDS["en"], WORDS["zh-TW"]
    assert en.keys() == zh.keys()
    for key in en:
        assert placeholders(en[key]) == placeholders(zh[key]), key
        assert zh[key].strip(), key


def test_chinese_words_are_traditional_not_simplified():
    # Characters whose simplified forms a careless translation would leave in.
    simplified = set("这个们为设练语发处检储载记数据问题对时间")
    for key, words in WORDS["zh-TW"].items():
        assert not simplified & set(words), f"{key}: {words}"


def test_language_of_a_request_follows_accept_language():
    def req(header: str | None) -> SimpleNamespace:
        return SimpleNamespace(headers={} if header is None else {"accept-language": header})

    assert language_of(req("zh-TW,zh;q=0.9,en;q=0.8")) == "zh-TW"
    assert language_of(req("zh-CN")) == "zh-TW"
    assert language_of(req("en-US,en;q=0.9")) == "en"
    assert language_of(req("fr-FR")) == "en"
    assert language_of(req(None)) == "en"
    assert language_of(None) == "en"


def test_messages_are_filled_in_in_the_request_language():
    zh = SimpleNamespace(headers={"accept-language": "zh-TW"})
    assert tr(zh, "error.unexpected", kind="ValueError") == text(
        "zh-TW", "error.unexpected", kind="ValueError"
    )
    assert "ValueError" in tr(zh, "error.unexpected", kind="ValueError")
    assert tr(None, "error.unexpected", kind="X").startswith("Unexpected error")


def test_an_unknown_key_is_an_error_not_a_blank_label():
    with pytest.raises(KeyError):
        t("no.such.key")


def _run(app, scope):
    sent = []

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    # A thread of its own: the browser tests' Playwright may hold an event loop in this one.
    worker = threading.Thread(target=asyncio.run, args=(LanguageMiddleware(app)(scope, receive, send),))
    worker.start()
    worker.join()
    return sent


def test_the_switch_cookie_becomes_the_request_language_and_the_page_navigator_language():
    seen = {}

    async def app(scope, receive, send):
        seen["accept"] = dict(scope["headers"]).get(b"accept-language")
        body = b"<html><head><title>x</title></head></html>"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    headers = [(b"accept-language", b"en-US"), (b"cookie", f"a=1; {COOKIE}=zh-TW".encode())]
    sent = _run(app, {"type": "http", "path": "/", "headers": headers})
    assert seen["accept"] == b"zh-TW"
    body = sent[1]["body"]
    assert body.startswith(b"<html><head><script>") and b'"zh-TW"' in body
    assert dict(sent[0]["headers"])[b"content-length"] == str(len(body)).encode()


def test_without_the_cookie_or_with_a_bad_value_nothing_changes():
    assert cookie_language([(b"cookie", f"{COOKIE}=<script>".encode())]) is None
    seen = {}

    async def app(scope, receive, send):
        seen["headers"] = scope["headers"]

    headers = [(b"accept-language", b"en-US"), (b"cookie", f"{COOKIE}=xx".encode())]
    _run(app, {"type": "http", "path": "/", "headers": headers})
    assert seen["headers"] == headers
    assert set(LANGUAGES) == {"en", "zh-TW"}
