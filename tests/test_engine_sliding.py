"""The generation engine on a sliding-window model (tiny Mistral, window 128; Breeze is one too):
rows of different lengths share one padded batch and each computes what it would alone."""

from __future__ import annotations

import time

import pytest
import torch

from playground.errors import PlaygroundError
from playground.generation.batch import generate_many
from playground.generation.engine import Engine, EngineLimits, Request
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.stream import encode_prompt
from playground.models import LoadOptions, load_model
from tests.helpers import wait_for
from tests.test_engine import _slow_steps

WINDOW = 128
QUESTIONS = [
    "Hi",
    "The quick brown fox",
    "床前明月光，疑是地上霜。",
    "Question: Is the following sentence plausible?",
]
POEM = "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。白日依山盡，黃河入海流。"


@pytest.fixture(scope="module")
def mistral(tiny_mistral):
    loaded = load_model(str(tiny_mistral), LoadOptions(precision="fp32"))
    assert loaded.model.config.sliding_window == WINDOW
    return loaded


def _chat(loaded, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    return loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _ids(loaded, prompt: str, tokens: int | None = None) -> list[int]:
    """The prompt's ids; with `tokens`, the prompt repeated and cut to exactly that many."""
    ids = encode_prompt(loaded, prompt)["input_ids"][0].tolist()
    if tokens is None:
        return ids
    return (ids * (tokens // len(ids) + 1))[:tokens]


def _alone(loaded, ids: list[int], settings: DecodingSettings) -> str:
    engine = Engine(loaded, EngineLimits(max_rows=1))
    try:
        return engine.submit(Request(ids, settings)).result().text
    finally:
        engine.close()


def _batched(
    loaded, monkeypatch, ids: list[list[int]], settings: list[DecodingSettings]
) -> tuple[list, list]:
    engine = Engine(loaded, EngineLimits(max_rows=8, max_prefills_per_step=8, prefill_tokens=4096))
    rows_per_step = _slow_steps(monkeypatch, engine, 0.0)
    tickets = [engine.submit(Request(i, s)) for i, s in zip(ids, settings, strict=True)]
    results = [t.result() for t in tickets]
    engine.close()
    return results, rows_per_step


def test_rows_of_different_lengths_share_one_batch(mistral, monkeypatch):
    """fp32: each greedy row gives exactly its lone text while sharing the padded batch."""
    ids = [_ids(mistral, _chat(mistral, q)) for q in QUESTIONS]
    assert len({len(i) for i in ids}) == len(ids)
    settings = [GREEDY.with_(max_new_tokens=n) for n in (12, 20, 8, 16)]
    alone = [_alone(mistral, i, s) for i, s in zip(ids, settings, strict=True)]
    results, rows_per_step = _batched(mistral, monkeypatch, ids, settings)
    assert [r.text for r in results] == alone
    assert [r.new_tokens for r in results] == [s.max_new_tokens for s in settings]
    assert max(rows_per_step) == len(ids), "all rows decoded together"


def test_generate_many_with_prompts_of_different_lengths(mistral):
    prompts = [_chat(mistral, q) for q in QUESTIONS]
    settings = GREEDY.with_(max_new_tokens=10)
    alone = [_alone(mistral, _ids(mistral, p), settings) for p in prompts]
    assert [o.text for o in generate_many(mistral, prompts, settings)] == alone


def test_prompts_longer_than_the_window_and_rows_crossing_it(mistral, monkeypatch):
    """A prompt past the window (its sliding layers hold only the last window - 1 tokens) joins
    short rows; another row crosses the window while decoding."""
    ids = [
        _ids(mistral, POEM, WINDOW + 30),
        _ids(mistral, _chat(mistral, QUESTIONS[1])),
        _ids(mistral, POEM[5:], WINDOW - 10),
        _ids(mistral, _chat(mistral, QUESTIONS[3])),
        _ids(mistral, POEM[3:], WINDOW + 60),
    ]
    settings = [GREEDY.with_(max_new_tokens=n) for n in (24, 30, 30, 6, 20)]
    alone = [_alone(mistral, i, s) for i, s in zip(ids, settings, strict=True)]
    results, rows_per_step = _batched(mistral, monkeypatch, ids, settings)
    assert [r.text for r in results] == alone
    assert max(rows_per_step) == len(ids)


def test_rows_join_mid_decode_and_leave(mistral, monkeypatch):
    """Rows join while others decode (one already past the window) and leave at different steps."""
    ids = [
        _ids(mistral, POEM, WINDOW - 20),  # crosses the window while the others join
        _ids(mistral, _chat(mistral, QUESTIONS[0])),
        _ids(mistral, POEM[7:], WINDOW + 40),
        _ids(mistral, _chat(mistral, QUESTIONS[2])),
    ]
    settings = [GREEDY.with_(max_new_tokens=n) for n in (60, 10, 25, 30)]
    alone = [_alone(mistral, i, s) for i, s in zip(ids, settings, strict=True)]
    engine = Engine(mistral, EngineLimits(max_rows=8, max_prefills_per_step=1))
    rows_per_step = _slow_steps(monkeypatch, engine, 0.02)
    first = engine.submit(Request(ids[0], settings[0]))
    tickets = [first]
    # The first row is past the window (prompt + 20 steps) before the others join.
    wait_for(lambda: len(rows_per_step) >= 25)
    for i, s in zip(ids[1:], settings[1:], strict=True):
        tickets.append(engine.submit(Request(i, s)))
        time.sleep(0.05)
    results = [t.result() for t in tickets]
    engine.close()
    assert [r.text for r in results] == alone
    assert max(rows_per_step) >= 3, "rows decoded together"


def test_a_step_failing_inside_the_model_past_the_window_fails_only_its_row(mistral, monkeypatch):
    """The step fails after the first layer cached its token: that layer is rolled back, the
    newest row is dropped and the others go on exactly as alone, though past the window."""
    ids = [_ids(mistral, POEM, WINDOW + 10), _ids(mistral, POEM[4:], WINDOW + 3), _ids(mistral, POEM[9:], 40)]
    settings = GREEDY.with_(max_new_tokens=16)
    expected = [_alone(mistral, i, settings) for i in ids[:2]]
    second_layer = mistral.model.model.layers[1]
    real_forward = second_layer.forward

    def forward(hidden_states, *args, **kwargs):
        if hidden_states.shape[0] == 3 and hidden_states.shape[1] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (the third row)")
        return real_forward(hidden_states, *args, **kwargs)

    monkeypatch.setattr(second_layer, "forward", forward)
    engine = Engine(mistral, EngineLimits(max_rows=8, max_prefills_per_step=8, prefill_tokens=4096))
    _slow_steps(monkeypatch, engine, 0.02)
    tickets = [engine.submit(Request(i, settings)) for i in ids[:2]]
    wait_for(lambda: all(t.state == "running" for t in tickets))
    third = engine.submit(Request(ids[2], settings))
    with pytest.raises(PlaygroundError, match="Out of GPU memory"):
        third.result()
    assert [t.result().text for t in tickets] == expected
    engine.close()
