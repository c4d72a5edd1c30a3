"""An external OpenAI-compatible engine (vLLM, TGI, `transformers serve`, another playground) that
generates instead of the in-process model: PLAYGROUND_ENGINE_URL=http://host:8000/v1.

The playground still renders every prompt itself (templates, few-shot, stop strings) and sends
the exact text to the engine's /completions endpoint, streaming; stop strings are also applied
here, since not every engine honours them. PLAYGROUND_ENGINE_MODEL names the model there
(default: the loaded model's source, which is what `transformers serve FOLDER` calls it), and
PLAYGROUND_ENGINE_KEY is sent as the Bearer key. Only the model's tokenizer and config load
here (models/weightless.py); work that needs the weights (perplexity, training, adapters) is
refused with a message. The token explorer asks for `logprobs` (complete_with_logprobs).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.errors import PlaygroundError
from playground.generation.settings import DecodingSettings
from playground.generation.stops import cut_at_stop, held_back

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RemoteEngine:
    """Where generation goes: the engine's base URL (…/v1), its model name and key."""

    url: str
    model: str | None = None
    key: str | None = None
    # Most candidates per token asked of the engine (vLLM's default max_logprobs and OpenAI's
    # own cap are 20 and 5); PLAYGROUND_ENGINE_LOGPROBS lowers it for an engine that caps lower.
    top_logprobs: int = 20

    @classmethod
    def from_env(cls) -> RemoteEngine | None:
        url = os.environ.get("PLAYGROUND_ENGINE_URL", "").strip().rstrip("/")
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            raise PlaygroundError(
                f"PLAYGROUND_ENGINE_URL must start with http:// or https:// (got {url[:60]!r})."
            )
        model = os.environ.get("PLAYGROUND_ENGINE_MODEL", "").strip() or None
        key = os.environ.get("PLAYGROUND_ENGINE_KEY", "").strip() or None
        top = os.environ.get("PLAYGROUND_ENGINE_LOGPROBS", "").strip() or "20"
        if not top.isdigit() or not 1 <= int(top) <= 100:
            raise PlaygroundError(
                f"PLAYGROUND_ENGINE_LOGPROBS must be a whole number from 1 to 100 (got {top[:20]!r})."
            )
        return cls(url, model, key, int(top))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def payload(self, loaded: Any, prompt: str, settings: DecodingSettings) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model or loaded.source,
            "prompt": prompt,
            "max_tokens": int(settings.max_new_tokens),
            "temperature": float(settings.temperature) if settings.do_sample else 0.0,
            "top_p": float(settings.top_p) if settings.do_sample else 1.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if settings.seed is not None:
            body["seed"] = int(settings.seed)
        if settings.stop:
            body["stop"] = list(settings.stop[:4])
        # vLLM's extras, sent only when they change something (other engines may refuse them).
        if settings.do_sample and settings.top_k > 0:
            body["top_k"] = int(settings.top_k)
        if settings.do_sample and settings.min_p > 0:
            body["min_p"] = float(settings.min_p)
        if settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = float(settings.repetition_penalty)
        return body


def remote_engine(loaded: Any) -> RemoteEngine | None:
    """The external engine a loaded model's generation goes to (set by its manager), or None."""
    return loaded.__dict__.get("_remote") if loaded is not None else None


def stream_remote(
    engine: RemoteEngine,
    loaded: Any,
    prompt: str,
    prompt_tokens: int,
    settings: DecodingSettings,
    stop: threading.Event,
    adapter: str | None,
) -> Iterator[Any]:
    """GenerationUpdates from the external engine, shaped as the in-process engine's."""
    import httpx

    from playground.generation.stream import GenerationUpdate

    if adapter is not None or settings.num_beams > 1:
        what = "Adapters" if adapter is not None else "Beam search"
        raise PlaygroundError(f"{what} are not available with the external engine at {engine.url}.")
    headers = engine.headers
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    started = time.perf_counter()
    text, new_tokens, reason, usage = "", 0, "eos", None
    try:
        with httpx.stream(
            "POST",
            f"{engine.url}/completions",
            json=engine.payload(loaded, prompt, settings),
            headers=headers,
            timeout=timeout,
        ) as response:
            if response.status_code != 200:
                raise PlaygroundError(
                    f"The external engine at {engine.url} answered {response.status_code}: "
                    f"{response.read().decode('utf-8', 'replace')[:300]}"
                )
            for chunk in _events(response.iter_lines()):
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    text += choice.get("text") or ""
                    new_tokens += 1 if choice.get("text") else 0
                    if choice.get("finish_reason") == "length":
                        reason = "length"
                cut, hit = cut_at_stop(text, settings.stop)
                if hit:
                    text, reason = cut, "stop string"
                    break
                if stop.is_set():
                    reason = "stopped"
                    break
                shown = text[: len(text) - held_back(text, settings.stop)] if settings.stop else text
                yield GenerationUpdate(
                    shown,
                    prompt_tokens,
                    new_tokens,
                    time.perf_counter() - started,
                    queue=f"external engine {engine.url}",
                )
    except httpx.HTTPError as exc:
        raise PlaygroundError(f"The external engine at {engine.url} cannot be reached: {exc}") from exc
    if usage:
        prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
        new_tokens = int(usage.get("completion_tokens") or new_tokens)
    if reason == "eos" and new_tokens >= settings.max_new_tokens:
        reason = "length"
    yield GenerationUpdate(
        text,
        prompt_tokens,
        new_tokens,
        time.perf_counter() - started,
        finished=True,
        stopped=reason == "stopped",
        reason=reason,
    )


@dataclass(frozen=True)
class RemoteCompletion:
    """One non-streamed answer with OpenAI's completions `logprobs`: per new token its text, its
    log-probability and the engine's top candidates ({text: logprob}; empty where none came)."""

    text: str
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    finish_reason: str


def complete_with_logprobs(
    engine: RemoteEngine, loaded: Any, prompt: str, settings: DecodingSettings, top_logprobs: int
) -> RemoteCompletion:
    """The engine's answer to `prompt` with each token's top `top_logprobs` candidates."""
    import httpx

    body = engine.payload(loaded, prompt, settings)
    body.update(stream=False, logprobs=int(top_logprobs))
    body.pop("stream_options", None)
    try:
        response = httpx.post(
            f"{engine.url}/completions",
            json=body,
            headers=engine.headers,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        )
    except httpx.HTTPError as exc:
        raise PlaygroundError(f"The external engine at {engine.url} cannot be reached: {exc}") from exc
    if response.status_code != 200:
        raise PlaygroundError(
            f"The external engine at {engine.url} answered {response.status_code} to a request for "
            f"logprobs: {response.text[:300]}"
        )
    try:
        choice = response.json()["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise PlaygroundError(f"The external engine at {engine.url} sent no completion.") from exc
    logprobs = choice.get("logprobs") or {}
    tokens = list(logprobs.get("tokens") or [])
    values = list(logprobs.get("token_logprobs") or [])
    if not tokens or len(values) != len(tokens) or any(v is None for v in values):
        raise PlaygroundError(
            f"The external engine at {engine.url} returned no per-token logprobs (OpenAI completions "
            "`logprobs`), so the token explorer has nothing to show; vLLM and another playground "
            "return them."
        )
    tops = list(logprobs.get("top_logprobs") or [])
    tops = [dict(t or {}) for t in tops] + [{}] * (len(tokens) - len(tops))
    return RemoteCompletion(
        str(choice.get("text") or ""),
        [str(t) for t in tokens],
        [float(v) for v in values],
        [{str(k): float(v) for k, v in t.items()} for t in tops[: len(tokens)]],
        str(choice.get("finish_reason") or ""),
    )


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to `data: [DONE]`."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if isinstance(event, dict) and "error" in event:
            message = event["error"].get("message") if isinstance(event["error"], dict) else event["error"]
            raise PlaygroundError(f"The external engine failed: {str(message)[:300]}")
        if isinstance(event, dict):
            yield event
