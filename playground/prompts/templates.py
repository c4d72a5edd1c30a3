"""Prompt templates: the model's own chat template, or a raw string with placeholders.

A raw template uses `{system}`, `{instruction}` and `{input}`. Placeholders are replaced
literally (not with str.format) so braces in user text or code never break a prompt, and a
template without `{system}` simply ignores the system text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from playground.errors import PlaygroundError

PLACEHOLDERS = ("{system}", "{instruction}", "{input}")


@dataclass(frozen=True)
class PromptTemplate:
    """`text=None` means "use the tokenizer's chat template"."""

    name: str
    text: str | None = None
    system: str = ""
    notes: str = ""

    @property
    def uses_chat_template(self) -> bool:
        return self.text is None

    @property
    def stop_strings(self) -> tuple[str, ...]:
        """Text that starts the next user turn, where an answer must end ("USER:" for the homework).

        It is the template's own wording before `{instruction}` (placeholders left out); a chat
        template ends its turns with an end-of-turn token instead, so it has none.
        """
        if self.text is None or "{instruction}" not in self.text:
            return ()
        before = self.text.split("{instruction}", 1)[0]
        turn = re.split(r"\{(?:system|input|examples|index|output)\}", before)[-1].strip()
        return (turn,) if turn else ()

    @property
    def sha(self) -> str:
        """Short hash that identifies the template on the leaderboard."""
        key = f"{self.text if self.text is not None else '<chat>'}\x00{self.system}"
        return hashlib.sha256(key.encode()).hexdigest()[:12]

    def render(
        self,
        instruction: str,
        input: str = "",
        system: str | None = None,
        tokenizer: Any = None,
    ) -> str:
        """The exact text sent to the model for one single-turn request."""
        system = self.system if system is None else system
        if self.text is None:
            user = f"{instruction}\n\n{input}" if input else instruction
            return render_chat([{"role": "user", "content": user}], system, tokenizer)
        return fill(self.text, {"system": system, "instruction": instruction, "input": input})

    def render_conversation(
        self,
        history: list[dict[str, str]],
        message: str,
        system: str | None = None,
        tokenizer: Any = None,
    ) -> str:
        """Prompt for the next assistant turn of a chat.

        Raw templates are single-turn (the homework ones are), so earlier turns are written
        as the template applied to each user message followed by the answer.
        """
        system = self.system if system is None else system
        if self.text is None:
            messages = [m for m in history if m["role"] in ("user", "assistant")]
            return render_chat(messages + [{"role": "user", "content": message}], system, tokenizer)
        parts = []
        pending_user = None
        for m in history:
            if m["role"] == "user":
                pending_user = m["content"]
            elif m["role"] == "assistant" and pending_user is not None:
                parts.append(self.render(pending_user, system=system) + " " + m["content"])
                pending_user = None
        parts.append(self.render(message, system=system))
        return "\n".join(parts)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` placeholders in one pass: placeholder-like text inside values stays as is."""
    if not values:
        return text
    pattern = "|".join(re.escape("{" + key + "}") for key in values)
    return re.sub(pattern, lambda m: values[m.group(0)[1:-1]], text)


def render_chat(messages: list[dict[str, str]], system: str, tokenizer: Any) -> str:
    """Apply the tokenizer's chat template; plain "User:/Assistant:" text when it has none."""
    if system:
        messages = [{"role": "system", "content": system}] + list(messages)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


def training_template(template: str, system: str | None, model_default: PromptTemplate) -> PromptTemplate:
    """The template a training job formats with (and so the one to use its adapter with).

    `template` and `system` are the job's settings ("" = the model's default template). A saved
    setting, unlike a text box, may ask for no system text at all, so "" replaces the template's own.
    """
    return _chosen_template(template or "chat", "", model_default, system)


def adapter_template(settings: Mapping[str, Any], model_default: PromptTemplate) -> PromptTemplate:
    """The template an adapter was trained with, from the settings saved beside it."""
    return training_template(settings.get("template") or "", settings.get("system"), model_default)


def default_system_text(tokenizer: Any) -> str | None:
    """The system text a chat template adds by itself when none is given (SmolLM2 has one)."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None
    marker, user = "\x00SYSTEM\x00", [{"role": "user", "content": "\x00USER\x00"}]
    try:
        without = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        with_marker = tokenizer.apply_chat_template(
            [{"role": "system", "content": marker}] + user, tokenize=False, add_generation_prompt=True
        )
    except Exception:  # noqa: BLE001 - templates without a system role raise their own errors
        return None
    if marker not in with_marker:
        return None
    head, tail = with_marker.split(marker, 1)
    if without == with_marker.replace(marker, "") or not (
        without.startswith(head) and without.endswith(tail)
    ):
        return None
    found = without[len(head) : len(without) - len(tail)].strip()
    return found or None


TAIWAN_LLAMA_SYSTEM = (
    "你是人工智慧助理，以下是用戶和人工智慧助理之間的對話。你要對用戶的問題提供有用、安全、詳細和禮貌的回答。"
)

TEMPLATES: dict[str, PromptTemplate] = {
    t.name: t
    for t in [
        PromptTemplate("chat", None, notes="The model's own chat template (from its tokenizer)."),
        PromptTemplate(
            "taiwan-llama",
            "{system}USER: {instruction}{input} ASSISTANT:",
            system=TAIWAN_LLAMA_SYSTEM,
            notes="NTU ADL homework template for Taiwan-LLaMa v2.0.",
        ),
        PromptTemplate(
            "alpaca",
            "{system}### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Output:\n",
            notes="Instruction/Input/Output, for base models such as StableLM-3B-4e1t.",
        ),
        PromptTemplate("plain", "{instruction}{input}", notes="The text as is, no wrapping."),
    ]
}


def get_template(name_or_text: str | None, system: str | None = None) -> PromptTemplate:
    """A named template, or a raw template string typed by the user."""
    if not name_or_text or name_or_text == "chat":
        base = TEMPLATES["chat"]
    elif name_or_text in TEMPLATES:
        base = TEMPLATES[name_or_text]
    else:
        base = PromptTemplate("custom", name_or_text)
    return _with_system(base, system)


def _with_system(base: PromptTemplate, system: str | None) -> PromptTemplate:
    return base if system is None else PromptTemplate(base.name, base.text, system, base.notes)


def resolve_template(
    name: str | None,
    custom_text: str = "",
    model_default: PromptTemplate | None = None,
    system: str | None = None,
) -> PromptTemplate:
    """The template a page or command-line choice names.

    "chat" (or nothing) is the loaded model's default template (`model_default`; the tokenizer's
    chat template when no model is given), "custom" is `custom_text`, anything else a named
    template or raw template text. `system` is what the user typed: blank keeps the template's own.
    """
    return _chosen_template(name, custom_text, model_default, system if system and system.strip() else None)


def _chosen_template(
    name: str | None, custom_text: str, model_default: PromptTemplate | None, system: str | None
) -> PromptTemplate:
    if name == "custom":
        if not custom_text.strip():
            raise PlaygroundError("Type the custom template, with {instruction} (and {input}) placeholders.")
        return get_template(custom_text, system)
    if not name or name == "chat":
        return _with_system(model_default or TEMPLATES["chat"], system)
    return get_template(name, system)
