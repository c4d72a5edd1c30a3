"""The /v1 routes on the app's own server: authentication, body checks, and a worker thread per
request that owns the generation (so a closed connection stops it and releases the model)."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from playground.api.auth import ApiKeys, api_caller
from playground.api.chat import chat_chunks, chat_response, chat_updates
from playground.api.completions import completion_chunks, completion_response
from playground.api.errors import ApiError, as_api_error, bad_request
from playground.api.gate import RequestGate
from playground.api.models import chosen_model, model_ids
from playground.api.params import chat_params, completion_params
from playground.api.responses import model_list
from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.login_throttle import LoginThrottle

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
_END = object()

# A request's work: given the caller and a stop flag, the response (one dict, or chunks to stream).
Work = Callable[[Owner, threading.Event], Iterator[Any]]


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


async def read_json(request: Request) -> dict:
    body = b""
    async for part in request.stream():
        body += part
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"The request body is over {MAX_BODY_BYTES // 2**20} MB.", "body_too_large")
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise bad_request("The body is not valid JSON.", "invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.", "invalid_json")
    return data


def _sse(item: Any) -> bytes:
    return f"data: {json.dumps(item, ensure_ascii=False)}\n\n".encode()


class ApiServer:
    """The API of one app: its context (models, deployment), keys, failed-key throttle and gate."""

    def __init__(self, ctx: Any, keys: ApiKeys | None = None, throttle: LoginThrottle | None = None) -> None:
        self.ctx = ctx
        self.keys = keys if keys is not None else ApiKeys.from_env()
        self.throttle = throttle or LoginThrottle()
        self.gate = RequestGate()

    def routes(self) -> list[BaseRoute]:
        return [
            Mount(
                "/v1",
                routes=[
                    Route("/models", self.models, methods=["GET"]),
                    Route("/chat/completions", self.chat, methods=["POST"]),
                    Route("/completions", self.completions, methods=["POST"]),
                ],
            )
        ]

    def caller(self, request: Request) -> Owner:
        address = request.client.host if request.client else "?"
        return api_caller(
            request.headers.get("authorization"), address, self.ctx.deployment, self.keys, self.throttle
        )

    async def models(self, request: Request) -> Response:
        try:
            caller = self.caller(request)
        except ApiError as error:
            return error_response(error)
        ids = await anyio.to_thread.run_sync(model_ids, self.ctx, caller)
        return JSONResponse(model_list(ids, "playground"))

    async def chat(self, request: Request) -> Response:
        async def work(body: dict) -> Work:
            def run(caller: Owner, stop: threading.Event) -> Iterator[Any]:
                with self.gate.held(caller.id), chosen_model(self.ctx, body.get("model"), caller) as choice:
                    params = chat_params(body, choice.loaded.context_length)
                    updates = chat_updates(choice, params, caller.id, stop)
                    if params.sampling.stream:
                        yield from chat_chunks(choice, updates, params.sampling.include_usage)
                    else:
                        *_, final = updates
                        yield chat_response(choice, final)

            return run

        return await self._answer(request, work)

    async def completions(self, request: Request) -> Response:
        async def work(body: dict) -> Work:
            def run(caller: Owner, stop: threading.Event) -> Iterator[Any]:
                with self.gate.held(caller.id), chosen_model(self.ctx, body.get("model"), caller) as choice:
                    loaded = choice.loaded
                    params = completion_params(body, loaded.context_length, len(loaded.tokenizer))
                    if params.sampling.stream:
                        yield from completion_chunks(choice, params, caller.id, stop)
                    else:
                        yield completion_response(choice, params, caller.id, stop)

            return run

        return await self._answer(request, work)

    async def _answer(self, request: Request, make: Callable[[dict], Any]) -> Response:
        """Run a request's work in its own thread; its first item decides: an error, one JSON
        answer, or the first of a stream of server-sent events."""
        try:
            caller = self.caller(request)
            body = await read_json(request)
            run = await make(body)
        except ApiError as error:
            return error_response(error)
        stop = threading.Event()
        items: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(run(caller, stop), items, stop), daemon=True).start()
        first = await anyio.to_thread.run_sync(items.get)
        if isinstance(first, BaseException):
            return error_response(as_api_error(first))
        if not body.get("stream"):
            return JSONResponse(first)
        return StreamingResponse(_events(first, items, stop), media_type="text/event-stream")


def _pump(work: Iterator[Any], items: queue.Queue, stop: threading.Event) -> None:
    """Runs in the request's thread: moves the work's items to the queue, ends with _END."""
    try:
        for item in work:
            items.put(item)
            if stop.is_set():
                break
    except BaseException as exc:  # noqa: BLE001 - handed to the caller as its error
        if not isinstance(exc, PlaygroundError):
            log.exception("API request failed")
        items.put(exc)
    finally:
        work.close()
        items.put(_END)


async def _events(first: Any, items: queue.Queue, stop: threading.Event) -> AsyncIterator[bytes]:
    """The stream: every chunk as `data: {...}`, a failure as an error event, then `data: [DONE]`."""
    try:
        item = first
        while item is not _END:
            if isinstance(item, BaseException):
                yield _sse(as_api_error(item).body())
            else:
                yield _sse(item)
            item = await anyio.to_thread.run_sync(items.get)
        yield b"data: [DONE]\n\n"
    finally:
        # The client went away (or the stream ended): the engine drops the row at its next step.
        stop.set()
