"""Tokenised training examples, made once per (data, tokenizer, template, settings) and reused.

The examples go through `datasets.Dataset.map` with a fingerprint of everything that decides the
tokens, and its result is kept as an Arrow file in the data folder's token cache: running the same
config again (a resume, a second seed, another learning rate) loads that file instead of
tokenising again. A change to the data, the tokenizer, the template or max_length or the loss
mode gives another fingerprint, so a stale file is never used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from playground.data_types import Example
from playground.paths import data_dir
from playground.prompts.templates import PromptTemplate
from playground.training import formatting
from playground.training.formatting import FormattedExample


def token_cache_dir() -> Path:
    path = data_dir() / "token_cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tokenizer_identity(tokenizer: Any) -> str:
    """What decides how a tokenizer splits text: its vocabulary and rules, its special tokens and
    chat template (a fast tokenizer serialises all of that; a slow one, its vocabulary)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    rules = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    extra = [type(tokenizer).__name__, str(getattr(tokenizer, "chat_template", None))]
    extra.append(json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str))
    return hashlib.sha256("\x00".join([rules, *extra]).encode()).hexdigest()


def fingerprint(
    examples: list[Example],
    tokenizer: Any,
    template: PromptTemplate | str,
    loss_mode: str,
    max_length: int,
    seq2seq: bool,
) -> str:
    """A name for these examples tokenised this way (hex, as datasets wants fingerprints)."""
    digest = hashlib.sha256()
    digest.update(_tokenizer_identity(tokenizer).encode())
    shown = template if isinstance(template, str) else [template.name, template.text, template.system]
    digest.update(json.dumps([shown, loss_mode, max_length, seq2seq], default=str).encode())
    for example in examples:
        digest.update(json.dumps(asdict(example), ensure_ascii=False).encode())
    return digest.hexdigest()[:32]


def format_all(
    examples: list[Example],
    tokenizer: Any,
    template: PromptTemplate | str,
    loss_mode: str,
    max_length: int,
    seq2seq: bool = False,
) -> list[FormattedExample]:
    """`format_example` for each example, through Dataset.map and its cache file."""
    import datasets

    if not examples:
        return []
    key = fingerprint(examples, tokenizer, template, loss_mode, max_length, seq2seq)

    def tokenise(row: dict[str, Any]) -> dict[str, Any]:
        example = Example(
            row["id"], row["instruction"], row["input"], row["output"], tuple(row["references"])
        )
        done = formatting.format_example(example, tokenizer, template, loss_mode, max_length, seq2seq=seq2seq)
        return {"input_ids": done.input_ids, "labels": done.labels, "prompt_len": done.prompt_len}

    rows = datasets.Dataset.from_list([asdict(e) for e in examples])
    with _quiet_progress():
        tokenised = rows.map(
            tokenise,
            remove_columns=rows.column_names,
            cache_file_name=str(token_cache_dir() / f"{key}.arrow"),
            new_fingerprint=key,
            load_from_cache_file=True,
        )
    return [
        FormattedExample(row["input_ids"], row["labels"], row["prompt_len"], seq2seq=seq2seq)
        for row in tokenised
    ]


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """datasets' own progress bars would fill the job log; the job reports its own progress."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
