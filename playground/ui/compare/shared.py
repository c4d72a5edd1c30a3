"""What both side-by-side sub-tabs share: the prompt from the shared controls, and the seed."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.errors import PlaygroundError
from playground.models.loader import LoadedModel
from playground.prompts.templates import PromptTemplate, resolve_template
from playground.ui.i18n import t, text

MODEL_DEFAULT = "model default"
# The homework's Tang-poem continuation, what every instruction box starts with.
TANG_INSTRUCTION = "以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。"


@dataclass
class SharedControls:
    """The template, custom template and system prompt controls that sit above both sub-tabs,
    and the session's running work, which both sub-tabs' Stop buttons stop."""

    template: gr.Dropdown
    custom: gr.Textbox
    system: gr.Textbox
    runs: gr.State

    @property
    def prompt(self) -> tuple[gr.Dropdown, gr.Textbox, gr.Textbox]:
        return (self.template, self.custom, self.system)


def build_instruction_row(prefix: str, lines: int, first_line: str) -> tuple[gr.Textbox, gr.Textbox]:
    """The instruction and input boxes side by side; `prefix` ("compare", "explorer") names their
    labels (`<prefix>.instruction`, `<prefix>.input`) and element ids."""
    with gr.Row():
        instruction = gr.Textbox(
            label=t(f"{prefix}.instruction"),
            lines=lines,
            scale=3,
            elem_id=f"{prefix}-instruction",
            value=TANG_INSTRUCTION,
        )
        extra = gr.Textbox(
            label=t(f"{prefix}.input"), lines=lines, scale=2, elem_id=f"{prefix}-input", value=first_line
        )
    return instruction, extra


def seed_or_none(seed: float | None) -> int | None:
    return None if seed is None or seed < 0 else int(seed)


def pick_template(loaded: LoadedModel, name: str, custom: str) -> PromptTemplate:
    """MODEL_DEFAULT is the loaded model's own template; "chat" here is the tokenizer's chat template."""
    if name == MODEL_DEFAULT:
        return loaded.default_template
    return resolve_template(name, custom)


def prompt_text(
    loaded: LoadedModel,
    instruction: str,
    input: str,
    template_name: str,
    custom: str,
    system: str,
    lang: str = "en",
) -> str:
    if not instruction.strip():
        raise PlaygroundError(text(lang, "compare.instruction_missing"))
    return render_prompt(loaded, pick_template(loaded, template_name, custom), system, instruction, input)


def render_prompt(
    loaded: LoadedModel, template: PromptTemplate, system: str, instruction: str, input: str = ""
) -> str:
    return template.render(instruction, input, system if system.strip() else None, loaded.tokenizer)
