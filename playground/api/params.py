"""Request bodies of the HTTP API, checked and turned into the playground's own settings.

Each field is checked where it is read (types, ranges via bounds.py), so a bad value is refused
with a 400 that names it; what OpenAI offers and the playground does not (n > 1, frequency and
presence penalties) is refused, not ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.api.errors import bad_request
from playground.bounds import bounded, bounded_int
from playground.errors import PlaygroundError
from playground.generation.settings import DecodingSettings
from playground.limits import current_limits

MAX_PROMPTS = 64  # prompts in one completions request
MAX_STOPS = 4
MAX_STOP_CHARS = 200
MAX_TOP_LOGPROBS = 20
MAX_MESSAGES = 512
MAX_SEED = 2**63 - 1
ROLES = ("system", "user", "assistant")

# OpenAI's defaults; vLLM's extras (top_k, min_p, repetition_penalty) are accepted too.
DEFAULT_COMPLETION_TOKENS = 16
DEFAULT_CHAT_TOKENS = 512


@dataclass(frozen=True)
class Sampling:
    """What both endpoints take from a body: the model's name, decoding settings and streaming."""

    model: Any
    settings: DecodingSettings
    max_tokens: int  # as asked: 0 scores an echoed prompt without generating
    stream: bool
    include_usage: bool
    max_tokens_given: bool = True  # False: the default, shortened to what the context leaves

    def settings_for(self, prompt_tokens: int, context_length: int) -> DecodingSettings:
        """The settings for one prompt: a default max_tokens never overflows the context."""
        if self.max_tokens_given:
            return self.settings
        room = max(1, context_length - prompt_tokens)
        return self.settings.with_(max_new_tokens=min(self.settings.max_new_tokens, room))


@dataclass(frozen=True)
class ChatParams:
    """A chat request: the conversation, its system text (None: the template's own) and sampling."""

    sampling: Sampling
    system: str | None
    history: list[dict[str, str]]
    message: str


@dataclass(frozen=True)
class CompletionParams:
    """A completions request: one or more prompts (text or token ids), logprobs and echo."""

    sampling: Sampling
    prompts: list[str | list[int]]
    logprobs: int | None
    echo: bool


def _check(value: Any, name: str, low: float, high: float, integer: bool = False) -> Any:
    try:
        return bounded_int(value, name, low, high) if integer else bounded(value, name, low, high)
    except PlaygroundError as exc:
        raise bad_request(str(exc)) from None


def _optional(body: dict, name: str, default: Any) -> Any:
    value = body.get(name)
    return default if value is None else value


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false.")
    return value


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad_request("'stop' must be a string or a list of strings.")
    stops = [s for s in stops if s]
    if len(stops) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in stops):
        raise bad_request(f"'stop' takes up to {MAX_STOPS} strings of up to {MAX_STOP_CHARS} characters.")
    return tuple(stops)


def sampling(body: dict, context_length: int, default_tokens: int, min_tokens: int = 1) -> Sampling:
    """Decoding settings from a body; max_tokens is refused beyond the context or the limits."""
    if _optional(body, "n", 1) != 1:
        raise bad_request("'n' must be 1 here: send one request per sample (each may have its own seed).")
    for name in ("frequency_penalty", "presence_penalty"):
        if _check(_optional(body, name, 0), name, -2, 2) != 0:
            raise bad_request(f"'{name}' is not supported; use 'repetition_penalty' (1 = off).")
    requested = body.get("max_completion_tokens", body.get("max_tokens"))
    limit = current_limits().new_tokens
    if requested is None:
        max_tokens = min(default_tokens, context_length, limit or default_tokens)
    else:
        max_tokens = _check(requested, "max_tokens", min_tokens, context_length, integer=True)
    try:
        current_limits().check_new_tokens(max_tokens)
    except PlaygroundError as exc:
        raise bad_request(str(exc)) from None
    temperature = _check(_optional(body, "temperature", 1.0), "temperature", 0, 2)
    seed = body.get("seed")
    settings = DecodingSettings(
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else 1.0,
        top_p=_check(_optional(body, "top_p", 1.0), "top_p", 1e-6, 1),
        top_k=_check(_optional(body, "top_k", 0), "top_k", 0, 1_000_000, integer=True),
        min_p=_check(_optional(body, "min_p", 0.0), "min_p", 0, 0.999),
        repetition_penalty=_check(_optional(body, "repetition_penalty", 1.0), "repetition_penalty", 0.01, 10),
        # At least one token is generated: max_tokens 0 (scoring an echoed prompt) generates none.
        max_new_tokens=max(1, max_tokens),
        seed=None if seed is None else _check(seed, "seed", -MAX_SEED, MAX_SEED, integer=True),
        stop=_stops(body.get("stop")),
    )
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.")
    stream, usage = _flag(body, "stream"), bool(options.get("include_usage"))
    return Sampling(body.get("model"), settings, max_tokens, stream, usage, requested is not None)


def _content(message: Any, n: int) -> tuple[str, str]:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise bad_request(f"messages[{n}] must be an object with a role of {', '.join(ROLES)}.")
    content = message.get("content")
    if isinstance(content, list):  # the parts form: only text parts are understood
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            raise bad_request(f"messages[{n}]: only text content is supported.")
        content = "".join(str(p.get("text", "")) for p in content)
    if not isinstance(content, str):
        raise bad_request(f"messages[{n}] needs text content.")
    return message["role"], content


def chat_params(body: dict, context_length: int) -> ChatParams:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise bad_request(f"'messages' must be a list of 1 to {MAX_MESSAGES} messages.")
    if body.get("logprobs") or body.get("tools"):
        raise bad_request("Chat logprobs and tools are not supported here; /v1/completions has logprobs.")
    turns = [_content(m, n) for n, m in enumerate(messages)]
    system = "\n\n".join(c for r, c in turns if r == "system") or None
    rest = [{"role": r, "content": c} for r, c in turns if r != "system"]
    if not rest or rest[-1]["role"] != "user":
        raise bad_request("The last message must be the user's: the answer is the assistant's next turn.")
    return ChatParams(
        sampling(body, context_length, DEFAULT_CHAT_TOKENS), system, rest[:-1], rest[-1]["content"]
    )


def _prompt_list(value: Any, vocabulary: int) -> list[str | list[int]]:
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(isinstance(t, int) for t in value)
    ):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > MAX_PROMPTS:
        raise bad_request(f"'prompt' must be a string, token ids, or a list of 1 to {MAX_PROMPTS} of them.")
    for prompt in value:
        if isinstance(prompt, str):
            continue
        if not isinstance(prompt, list) or not prompt or not all(isinstance(t, int) for t in prompt):
            raise bad_request("Each prompt must be a non-empty string or a non-empty list of token ids.")
        if any(isinstance(t, bool) or not 0 <= t < vocabulary for t in prompt):
            raise bad_request(f"Token ids must be from 0 to {vocabulary - 1}.")
    return value


def completion_params(body: dict, context_length: int, vocabulary: int) -> CompletionParams:
    echo = _flag(body, "echo")
    logprobs = body.get("logprobs")
    if logprobs is not None:
        logprobs = _check(logprobs, "logprobs", 0, MAX_TOP_LOGPROBS, integer=True)
    chosen = sampling(body, context_length, DEFAULT_COMPLETION_TOKENS, min_tokens=0 if echo else 1)
    if chosen.stream and logprobs is not None:
        raise bad_request("'logprobs' is not available with 'stream' here; ask without streaming.")
    return CompletionParams(chosen, _prompt_list(body.get("prompt"), vocabulary), logprobs, echo)
