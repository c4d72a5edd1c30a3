"""The Arena tab's sections: contestants and question, the two anonymous answers, the vote."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.arena.battles import MAX_NEW_TOKENS
from playground.arena.ratings import OUTCOMES
from playground.ui.i18n import t


@dataclass
class AskSection:
    contestants: gr.CheckboxGroup
    refresh: gr.Button
    test_set: gr.Dropdown
    draw: gr.Button
    prompt: gr.Textbox
    max_new: gr.Slider
    ask: gr.Button
    drawn: gr.State  # (test set, prompt) of the last drawn prompt


@dataclass
class BattleSection:
    answer_a: gr.Textbox
    answer_b: gr.Textbox
    votes: dict[str, gr.Button]  # outcome -> its button
    status: gr.Markdown
    battle: gr.State  # this session's battle (arena.battles.Battle), None before the first question


def build_ask_section() -> AskSection:
    gr.Markdown(t("arena.intro"))
    with gr.Row(equal_height=True):
        contestants = gr.CheckboxGroup([], label=t("arena.contestants"), scale=5, elem_id="arena-contestants")
        refresh = gr.Button(t("arena.refresh"), scale=1, elem_id="arena-refresh")
    with gr.Row(equal_height=True):
        test_set = gr.Dropdown([], label=t("arena.test_set"), scale=3, elem_id="arena-test-set")
        draw = gr.Button(t("arena.draw"), scale=1, elem_id="arena-draw")
        max_new = gr.Slider(
            1, MAX_NEW_TOKENS, value=96, step=1, label=t("arena.max_new"), elem_id="arena-max-new"
        )
    prompt = gr.Textbox(label=t("arena.prompt"), lines=3, elem_id="arena-prompt")
    ask = gr.Button(t("arena.ask"), variant="primary", elem_id="arena-ask")
    return AskSection(contestants, refresh, test_set, draw, prompt, max_new, ask, gr.State(None))


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
