"""What both side-by-side sub-tabs share: the prompt from the shared controls, the seed, and Stop."""

from __future__ import annotations

import threading

import gradio as gr

from playground.errors import PlaygroundError
from playground.models.loader import LoadedModel
from playground.prompts.templates import PromptTemplate, resolve_template

MODEL_DEFAULT = "model default"
# The template, custom template and system prompt controls that sit above both sub-tabs.
SharedControls = tuple[gr.Dropdown, gr.Textbox, gr.Textbox]

stop_flags: dict[str, threading.Event] = {}


def new_stop_flag(request: gr.Request | None) -> threading.Event:
    flag = threading.Event()
    stop_flags[getattr(request, "session_hash", None) or "default"] = flag
    return flag


def on_stop(request: gr.Request) -> None:
    flag = stop_flags.get(getattr(request, "session_hash", None) or "default")
    if flag:
        flag.set()


def seed_or_none(seed: float | None) -> int | None:
    return None if seed is None or seed < 0 else int(seed)


def pick_template(loaded: LoadedModel, name: str, custom: str) -> PromptTemplate:
    """MODEL_DEFAULT is the loaded model's own template; "chat" here is the tokenizer's chat template."""
    if name == MODEL_DEFAULT:
        return loaded.default_template
    return resolve_template(name, custom)


def prompt_text(
    loaded: LoadedModel, instruction: str, input: str, template_name: str, custom: str, system: str
) -> str:
    if not instruction.strip():
        raise PlaygroundError("Type an instruction first.")
    return render_prompt(loaded, pick_template(loaded, template_name, custom), system, instruction, input)


def render_prompt(
    loaded: LoadedModel, template: PromptTemplate, system: str, instruction: str, input: str = ""
) -> str:
    return template.render(instruction, input, system if system.strip() else None, loaded.tokenizer)
