"""Turning an example into training tokens: template + output, with the prompt masked from the loss.

Layout: [bos] + prompt + output + [eos], cut to max_length. Labels are -100 where no loss is
taken: the prompt in "masked_prompt" and "no_template" modes, nothing in "full_text".

Encoder-decoder models (seq2seq=True): input_ids are the encoder's, the prompt with the
tokenizer's own special tokens; labels are output + [eos] alone (the model builds the decoder
input from them), each cut to max_length. "full_text" does not apply: the decoder never
generates the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.prompts.templates import PromptTemplate, get_template
from playground.training.config import LOSS_MODES, check_loss_mode

IGNORE = -100


@dataclass(frozen=True)
class FormattedExample:
    input_ids: list[int]
    labels: list[int]  # aligned with input_ids; for seq2seq the decoder's targets, of their own length
    prompt_len: int
    seq2seq: bool = False

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)

    @property
    def n_predicted(self) -> int:
        """Trained tokens a forward pass predicts: a causal model never predicts position 0."""
        labels = self.labels if self.seq2seq else self.labels[1:]
        return sum(1 for label in labels if label != IGNORE)


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
    seq2seq: bool = False,
) -> FormattedExample:
    if loss_mode not in LOSS_MODES:
        raise PlaygroundError(f"Unknown loss mode {loss_mode!r}; choose one of {', '.join(LOSS_MODES)}.")
    if example.output is None:
        raise PlaygroundError(f"Example {example.id} has no output to train on.")
    prompt = build_prompt(example, template, loss_mode, tokenizer)
    if seq2seq:
        return _format_seq2seq(prompt, example.output, tokenizer, loss_mode, max_length)
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


def _format_seq2seq(
    prompt: str, output: str, tokenizer: Any, loss_mode: str, max_length: int
) -> FormattedExample:
    check_loss_mode(loss_mode, True, "this model")
    # Same encoding as seq2seq perplexity, so training and evaluation see the same encoder input.
    ids = tokenizer(prompt, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    tail = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    labels = (tokenizer(output, add_special_tokens=False)["input_ids"] + tail)[:max_length]
    return FormattedExample(list(ids), labels, len(ids), seq2seq=True)


def render_masked(formatted: FormattedExample, tokenizer: Any) -> list[tuple[str, bool]]:
    """(text, is_trained) pieces for showing an example with its masked part greyed out.

    Tokens are decoded in runs so that a character split over several byte-level tokens
    shows once, whole, instead of as replacement characters. A seq2seq example is two
    pieces: the encoder's input (never trained) and the decoder's target.
    """
    if formatted.seq2seq:
        return [
            (tokenizer.decode(formatted.input_ids, skip_special_tokens=False), False),
            (tokenizer.decode(formatted.labels, skip_special_tokens=False), True),
        ]
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
    """Right-pad to the longest example of the micro-batch (seq2seq: labels to the longest target)."""
    import torch

    if batch and batch[0].seq2seq:
        return _pad_seq2seq(batch, pad_id)
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


def _pad_seq2seq(batch: list[FormattedExample], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(f.input_ids) for f in batch)
    target_width = max(len(f.labels) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), target_width), IGNORE, dtype=torch.long)
    for row, f in enumerate(batch):
        ids[row, : len(f.input_ids)] = torch.tensor(f.input_ids)
        mask[row, : len(f.input_ids)] = 1
        labels[row, : len(f.labels)] = torch.tensor(f.labels)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
