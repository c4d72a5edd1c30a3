"""The Arena tab's sections: contestants and question, the two anonymous answers, the vote, and
scoring a test set automatically."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.arena.battles import MAX_NEW_TOKENS
from playground.arena.pairwise import MAX_EXAMPLES, PAIRWISE_METRICS
from playground.arena.ratings import OUTCOMES
from playground.ui.common import catalogue_dropdown
from playground.ui.data_picker import DataPicker, build_data_picker
from playground.ui.i18n import t, text


@dataclass
class AskSection:
    contestants: gr.CheckboxGroup
    refresh: gr.Button
    test_set: DataPicker  # a demo set or an upload: prompts to draw, and what automatic scoring uses
    draw: gr.Button
    prompt: gr.Textbox
    max_new: gr.Slider
    ask: gr.Button
    stop: gr.Button
    drawn: gr.State  # (test set, prompt) of the last drawn prompt


@dataclass
class BattleSection:
    answer_a: gr.Textbox
    answer_b: gr.Textbox
    votes: dict[str, gr.Button]  # outcome -> its button
    status: gr.Markdown
    battle: gr.State  # this session's battle (arena.battles.Battle), None before the first question


@dataclass
class ScoreSection:
    metric: gr.Dropdown
    limit: gr.Number
    start: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    scores: gr.Dataframe


def build_ask_section() -> AskSection:
    gr.Markdown(t("arena.intro"))
    with gr.Row(equal_height=True):
        contestants = gr.CheckboxGroup([], label=t("arena.contestants"), scale=5, elem_id="arena-contestants")
        refresh = gr.Button(t("arena.refresh"), scale=1, elem_id="arena-refresh")
    with gr.Row(equal_height=True):
        with gr.Column(scale=3):
            test_set = build_data_picker(
                "", elem_id="arena-test-set", labels=(t("arena.test_set"), t("arena.test_set.upload"))
            )
        with gr.Column(scale=1):
            draw = gr.Button(t("arena.draw"), elem_id="arena-draw")
            max_new = gr.Slider(
                1, MAX_NEW_TOKENS, value=96, step=1, label=t("arena.max_new"), elem_id="arena-max-new"
            )
    prompt = gr.Textbox(label=t("arena.prompt"), lines=3, elem_id="arena-prompt")
    with gr.Row():
        ask = gr.Button(t("arena.ask"), variant="primary", scale=3, elem_id="arena-ask")
        stop = gr.Button(t("arena.stop"), variant="stop", scale=1, elem_id="arena-stop")
    return AskSection(contestants, refresh, test_set, draw, prompt, max_new, ask, stop, gr.State(None))


def build_battle_section() -> BattleSection:
    with gr.Row():
        answer_a = gr.Textbox(label=t("arena.answer_a"), lines=8, interactive=False, elem_id="arena-answer-a")
        answer_b = gr.Textbox(label=t("arena.answer_b"), lines=8, interactive=False, elem_id="arena-answer-b")
    with gr.Row():
        votes = {
            outcome: gr.Button(t(f"arena.vote_{outcome}"), interactive=False, elem_id=f"arena-vote-{outcome}")
            for outcome in OUTCOMES
        }
    status = gr.Markdown(elem_id="arena-status")
    return BattleSection(answer_a, answer_b, votes, status, gr.State(None))


def build_score_section() -> ScoreSection:
    gr.Markdown(t("arena.auto.heading"))
    gr.Markdown(t("arena.auto.intro"))
    with gr.Row(equal_height=True):
        metric = catalogue_dropdown("arena.auto.metric", PAIRWISE_METRICS, "rougeL", "arena-auto-metric")
        limit = gr.Number(
            20,
            minimum=1,
            maximum=MAX_EXAMPLES,
            precision=0,
            label=t("arena.auto.limit"),
            elem_id="arena-auto-limit",
        )
        start = gr.Button(t("arena.auto.start"), variant="primary", elem_id="arena-auto-start")
        cancel = gr.Button(t("arena.auto.cancel"), variant="stop", elem_id="arena-auto-cancel")
    status = gr.Markdown(elem_id="arena-auto-status")
    scores = gr.Dataframe(
        headers=[text("en", "arena.auto.col.contestant"), text("en", "arena.auto.col.score")],
        label=t("arena.auto.scores"),
        interactive=False,
        elem_id="arena-auto-scores",
    )
    return ScoreSection(metric, limit, start, cancel, status, scores)
