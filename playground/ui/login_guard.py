"""An ASGI layer in front of gradio's routes: throttles /login, and gives a logged-out visitor
of `/` the login page without the API description gradio embeds in it.

Gradio's own auth callable sees neither the address nor the response, so the throttle sits here,
where both are known.
"""

from __future__ import annotations

import json
import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from playground.login_throttle import LoginThrottle, lockout_message

MAX_LOGIN_BODY = 64 * 1024
_API_INFO = re.compile(rb"(<script>window\.gradio_api_info = ).*?(;</script>)", re.DOTALL)


class LoginGuard:
    def __init__(self, app: Any, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/")
        if scope["method"] == "POST" and path == "/login":
            return await self._login(scope, receive, send)
        if scope["method"] in ("GET", "HEAD") and path == "" and _logged_out(scope):
            return await self._without_api_info(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _login(self, scope: dict, receive: Any, send: Any) -> None:
        body, too_big = b"", False
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_LOGIN_BODY:
                too_big = True
                break
            if not message.get("more_body"):
                break
        if too_big:
            return await _json(send, 413, "Login form too large.")
        fields = parse_qs(body.decode("utf-8", "replace"))
        user = (fields.get("username") or [""])[0].strip()
        address = (scope.get("client") or ("?", 0))[0]
        keys = (f"user:{user}", f"address:{address}")
        wait = self.throttle.wait_s(*keys)
        if wait > 0:
            return await _json(send, 429, lockout_message(wait))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    self.throttle.succeeded(keys[0])
                elif message["status"] in (400, 401):
                    self.throttle.failed(*keys)
            await send(message)

        await self.app(scope, replay, watch)

    async def _without_api_info(self, scope: dict, receive: Any, send: Any) -> None:
        start: dict | None = None
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = _API_INFO.sub(rb"\1{}\2", b"".join(chunks))
            assert start is not None  # noqa: S101 - ASGI sends the start before any body
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, capture)


def _logged_out(scope: dict) -> bool:
    app = scope.get("app")
    if getattr(app, "auth", None) is None:
        return False
    cookie_id = getattr(app, "cookie_id", "")
    cookies = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                cookies.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie is simply no login
                return True
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        morsel = cookies.get(name)
        if morsel is not None and morsel.value in getattr(app, "tokens", {}):
            return False
    return True


async def _json(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
