"""One turn of the chat: the answer to the last message, or more of the last answer (Continue)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from playground.generation import DecodingSettings, stream_generate
from playground.generation.stops import parse_stop_lines
from playground.generation.stream import GenerationUpdate
from playground.prompts.templates import resolve_template
from playground.ui.chat.decoding import decoding_from_ui, with_drawn_seed
from playground.ui.chat.session import ChatSession
from playground.ui.i18n import tr

ANSWER, CONTINUE = "answer", "continue"

# What one turn yields: the chat shown, the stats line, the prompt sent.
Shown = tuple[list[dict[str, Any]], str, str]


@dataclass
class TurnSettings:
    """What the page sent with the click; `knobs` are the decoding inputs in the layout's order."""

    system_text: str
    template_name: str
    custom_text: str
    knobs: tuple[Any, ...]
    session_key: str
    adapter: str | None
    request: Any = None

    def decoding(self, template_stops: tuple[str, ...]) -> DecodingSettings:
        temp, tp, tk, mp, typ, mx, rp, sd, extra = self.knobs
        stops = template_stops + parse_stop_lines(extra)
        return with_drawn_seed(decoding_from_ui(temp, tp, tk, mx, rp, sd, mp, typ, stops))


def stats_text(request: Any, update: GenerationUpdate, settings: DecodingSettings) -> str:
    """The line under the chat: tokens, speed, state, the seed used and the stop strings."""
    state = "stopped" if update.stopped else ("done" if update.finished else "generating")
    line = tr(
        request,
        "chat.stats",
        prompt=update.prompt_tokens,
        new=update.new_tokens,
        rate=f"{update.tokens_per_s:.1f}",
        seconds=f"{update.seconds:.1f}",
        state=tr(request, f"chat.stats.{state}"),
    )
    if update.queue:
        line += f" · {update.queue}"
    line += tr(request, "chat.stats.seed", seed=settings.seed)
    if settings.stop:
        line += tr(request, "chat.stats.ends", stops=", ".join(repr(s) for s in settings.stop))
    return line


def answer_turn(
    loaded: Any, history: list[dict[str, Any]], turn: TurnSettings, session: ChatSession, extend_last: bool
) -> Iterator[Shown]:
    """Stream one answer into `history`: to its last user message, or more of its last answer."""
    stop_flag = session.new_stop()
    template = resolve_template(turn.template_name, turn.custom_text, loaded.default_template)
    settings = turn.decoding(template.stop_strings)
    system = turn.system_text if turn.system_text.strip() else None
    question_at = len(history) - (2 if extend_last else 1)
    prompt = template.render_conversation(
        history[:question_at], history[question_at]["content"], system, loaded.tokenizer
    )
    start = history[-1]["content"] if extend_last else ""
    prompt += start
    if not extend_last:
        history.append({"role": "assistant", "content": ""})
    for update in stream_generate(loaded, prompt, settings, stop_flag, turn.adapter, turn.session_key):
        history[-1]["content"] = start + update.text
        shown = history + [{"role": "user", "content": text} for text in session.peek()]
        yield shown, stats_text(turn.request, update, settings), prompt


def run_turns(
    loaded: Any, history: list[dict[str, Any]], mode: str, turn: TurnSettings, session: ChatSession
) -> Iterator[Shown]:
    """Continue the last answer if asked, then answer the last message and every one queued."""
    if mode == CONTINUE and history and history[-1]["role"] == "assistant":
        yield from answer_turn(loaded, history, turn, session, True)
    while True:
        queued = session.next_messages(bool(history) and history[-1]["role"] == "user")
        if queued is None:
            return
        history += [{"role": "user", "content": text} for text in queued]
        yield from answer_turn(loaded, history, turn, session, False)
