"""Turning an example into training tokens: template + output, with the prompt masked from the loss.

Layout: [bos] + prompt + output + [eos], cut to max_length. Labels are -100 where no loss is
taken: the prompt in "masked_prompt" and "no_template" modes, nothing in "full_text".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.prompts.templates import PromptTemplate, get_template
from playground.training.config import LOSS_MODES

IGNORE = -100


@dataclass(frozen=True)
class FormattedExample:
    input_ids: list[int]
    labels: list[int]
    prompt_len: int

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def build_prompt(
    example: Example, template: PromptTemplate | str, loss_mode: str, tokenizer: Any = None
) -> str:
    """The text in front of the output."""
    if loss_mode == "no_template":
        return example.instruction + example.input
    if isinstance(template, str):
        template = get_template(template)
    return template.render(example.instruction, example.input, tokenizer=tokenizer)


def format_example(
    example: Example,
    tokenizer: Any,
    template: PromptTemplate | str,
    loss_mode: str = "masked_prompt",
    max_length: int = 512,
) -> FormattedExample:
    if loss_mode not in LOSS_MODES:
        raise PlaygroundError(f"Unknown loss mode {loss_mode!r}; choose one of {', '.join(LOSS_MODES)}.")
    if example.output is None:
        raise PlaygroundError(f"Example {example.id} has no output to train on.")
    prompt = build_prompt(example, template, loss_mode, tokenizer)
    bos = tokenizer.bos_token_id
    # Chat templates often write the bos text themselves; a second bos would be out of distribution.
    head = [bos] if bos is not None and not prompt.startswith(tokenizer.bos_token or "\0") else []
    prompt_ids = head + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    output_ids = tokenizer(example.output, add_special_tokens=False)["input_ids"]
    tail = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids = (prompt_ids + output_ids + tail)[:max_length]
    prompt_len = min(len(prompt_ids), len(ids))
    if loss_mode == "full_text":
        labels = list(ids)
    else:
        labels = [IGNORE] * prompt_len + ids[prompt_len:]
    return FormattedExample(ids, labels, prompt_len)


def render_masked(formatted: FormattedExample, tokenizer: Any) -> list[tuple[str, bool]]:
    """(text, is_trained) pieces for showing an example with its masked part greyed out.

    Tokens are decoded in runs so that a character split over several byte-level tokens
    shows once, whole, instead of as replacement characters.
    """
    pieces: list[tuple[str, bool]] = []
    start = 0
    for i in range(len(formatted.input_ids)):
        text = tokenizer.decode(formatted.input_ids[start : i + 1], skip_special_tokens=False)
        last = i + 1 == len(formatted.input_ids)
        if text.endswith("\ufffd") and not last and i + 1 - start < 8:
            continue
        pieces.append((text, formatted.labels[i] != IGNORE))
        start = i + 1
    return pieces


def pad_batch(batch: list[FormattedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest example of the micro-batch."""
    import torch

    width = max(len(f.input_ids) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, f in enumerate(batch):
        n = len(f.input_ids)
        ids[row, :n] = torch.tensor(f.input_ids)
        labels[row, :n] = torch.tensor(f.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
