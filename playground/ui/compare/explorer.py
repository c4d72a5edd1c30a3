"""Token explorer: generate, click a token for its candidates, move sliders, branch.

The answers and every step's kept candidates live in the session's gr.State, so a slider
redraws the "after processors" bars from them without running the model again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import gradio as gr

from playground.context import AppContext
from playground.errors import PlaygroundError
from playground.explorer.candidates import step_candidates
from playground.explorer.explore import Exploration, branch, explore
from playground.generation.settings import DecodingSettings
from playground.messages import Message
from playground.ui.common import GENERATION_EVENT, user_errors
from playground.ui.compare.decoding_settings import settings_from_knobs
from playground.ui.compare.explorer_layout import ExplorerControls, build_explorer_layout
from playground.ui.compare.explorer_views import (
    answers_html,
    candidate_label,
    candidates_figure,
    entropy_figure,
)
from playground.ui.compare.shared import SharedControls, prompt_text
from playground.ui.i18n import language_of, text

MAX_ANSWERS = 6


@dataclass(frozen=True)
class ExplorerSession:
    """One browser session's answers (the first generated, the rest branches) and its selection."""

    answers: tuple[Exploration, ...]
    parents: tuple[int | None, ...]
    selected: tuple[int, int] | None = None  # (answer, step)
    choices: tuple[int, ...] = field(default=())  # the branch dropdown's token ids


def knob_settings(
    mode: str,
    temperature: float,
    top_k: float,
    top_p: float,
    min_p: float,
    repetition_penalty: float,
    max_new: float,
    seed: float | None,
) -> DecodingSettings:
    # The columns' rule for knob values (greedy or sampling here: one beam, no length penalty), plus min-p.
    columns = settings_from_knobs(
        mode, temperature, top_p, top_k, 1, 1.0, 0, repetition_penalty, max_new, seed
    )
    return replace(columns, min_p=float(min_p)).validate()


class ExplorerHandlers:
    """Inputs come as one {component: value} dict (the knobs are many)."""

    def __init__(self, ctx: AppContext, shared: SharedControls, controls: ExplorerControls) -> None:
        self.ctx = ctx
        self.shared = shared
        self.c = controls

    def _settings(self, v: dict[Any, Any]) -> DecodingSettings:
        return knob_settings(*(v[k] for k in self.c.knobs))

    @user_errors
    def generate(self, v: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        lang = language_of(request)
        settings = self._settings(v)
        with v[self.shared.runs].run() as stop, self.ctx.models.use() as loaded:
            parts = (v[self.c.instruction], v[self.c.extra], *(v[x] for x in self.shared.prompt))
            prompt = prompt_text(loaded, *parts, lang=lang)
            answer = explore(loaded, prompt, settings, owner=request.session_hash or "", stop=stop)
            session = ExplorerSession((answer,), (None,))
            page = answers_html(loaded.tokenizer, list(session.answers), list(session.parents), lang)
        empty = gr.update(choices=[], value=None)
        note = engine_note(answer, lang)
        return session, page, entropy_figure(list(session.answers), lang), None, note, empty

    @user_errors
    def select(self, v: dict[Any, Any], evt: gr.EventData, request: gr.Request) -> tuple[Any, ...]:
        lang = language_of(request)
        session: ExplorerSession | None = v[self.c.state]
        if session is None:
            raise PlaygroundError(text(lang, "explorer.nothing"))
        answer, step = _int(getattr(evt, "answer", None)), _int(getattr(evt, "step", None))
        if answer is None or not 0 <= answer < len(session.answers):
            raise PlaygroundError(text(lang, "explorer.no_such_answer"))
        e = session.answers[answer]
        tok = self._tokenizer()
        candidates = step_candidates(tok, e, -1 if step is None else step, self._settings(v))
        kept = e.steps[step]
        chosen = next((c for c in candidates if c.chosen), None)
        info = text(
            lang,
            "explorer.step_info",
            answer=answer + 1,
            step=step + 1,
            token=candidate_label(chosen) if chosen else str(tok.convert_ids_to_tokens(kept.chosen)),
            prob=math.exp(kept.chosen_logprob),
            entropy=kept.entropy,
            kept=len(kept.ids),
            mass=kept.kept_mass,
        )
        info = "\n\n".join(part for part in (info, engine_note(e, lang)) if part)
        labels = [(f"{candidate_label(c)}  (p={c.raw:.3f})", c.token_id) for c in candidates if not c.chosen]
        session = replace(session, selected=(answer, step), choices=tuple(v for _, v in labels))
        dropdown = gr.update(choices=labels, value=labels[0][1] if labels else None)
        return session, candidates_figure(candidates, lang), info, dropdown

    @user_errors
    def redraw(self, v: dict[Any, Any], request: gr.Request) -> Any:
        """A slider moved: the selected step's bars again, from the kept logits (no model run)."""
        session: ExplorerSession | None = v[self.c.state]
        if session is None or session.selected is None:
            return gr.update()
        answer, step = session.selected
        candidates = step_candidates(self._tokenizer(), session.answers[answer], step, self._settings(v))
        return candidates_figure(candidates, language_of(request))

    def _tokenizer(self) -> Any:
        """The bar's model's tokenizer, to name kept tokens: no model runs, so nothing is held."""
        loaded = self.ctx.models.current
        if loaded is None:
            raise PlaygroundError(Message("models.none_loaded"))
        return loaded.tokenizer

    @user_errors
    def branch(self, v: dict[Any, Any], request: gr.Request) -> tuple[Any, ...]:
        lang = language_of(request)
        session: ExplorerSession | None = v[self.c.state]
        token = v[self.c.branch_token]
        if session is None or session.selected is None or token is None:
            raise PlaygroundError(text(lang, "explorer.pick_token"))
        if len(session.answers) >= MAX_ANSWERS:
            raise PlaygroundError(text(lang, "explorer.too_many_branches", most=MAX_ANSWERS))
        answer, step = session.selected
        owner = request.session_hash or ""
        with v[self.shared.runs].run() as stop, self.ctx.models.use() as loaded:
            new = branch(loaded, session.answers[answer], step, int(token), owner=owner, stop=stop)
            session = replace(session, answers=(*session.answers, new), parents=(*session.parents, answer))
            page = answers_html(loaded.tokenizer, list(session.answers), list(session.parents), lang)
        return session, page, entropy_figure(list(session.answers), lang)


def engine_note(answer: Exploration, lang: str) -> str:
    """What an answer from the external engine's logprobs cannot show ("" for a local one)."""
    return text(lang, "explorer.engine_note", url=answer.engine) if answer.engine else ""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def build_explorer_tab(ctx: AppContext, shared: SharedControls) -> ExplorerControls:
    c = build_explorer_layout()
    handlers = ExplorerHandlers(ctx, shared, c)
    knobs = {c.state, *c.knobs}
    c.run.click(
        handlers.generate,
        {c.instruction, c.extra, *shared.prompt, shared.runs, *knobs},
        [c.state, c.answers, c.entropy, c.chart, c.info, c.branch_token],
        **GENERATION_EVENT,
    )
    c.answers.click(handlers.select, knobs, [c.state, c.chart, c.info, c.branch_token])
    gr.on([k.change for k in c.knobs[:6]], handlers.redraw, knobs, c.chart)
    branch_inputs = {c.state, c.branch_token, shared.runs}
    c.branch.click(handlers.branch, branch_inputs, [c.state, c.answers, c.entropy], **GENERATION_EVENT)
    return c
