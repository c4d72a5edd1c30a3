"""The generation engine on a tiny model: rows join and leave, stop, fail alone, share fairly."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from playground.errors import PlaygroundError
from playground.generation.engine import BACKGROUND, INTERACTIVE, Engine, EngineLimits, Request
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.stream import encode_prompt
from playground.models import LoadOptions, load_model
from tests.helpers import wait_for

PROMPTS = ["The quick brown fox", "床前明月光，", "Question: Is the", "USER: ASSISTANT: hello", "Summarize"]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def _ids(loaded, prompt: str) -> list[int]:
    return encode_prompt(loaded, prompt)["input_ids"][0].tolist()


def _alone(loaded, prompt: str, settings: DecodingSettings) -> str:
    engine = Engine(loaded, EngineLimits(max_rows=1))
    try:
        return engine.submit(Request(_ids(loaded, prompt), settings)).result().text
    finally:
        engine.close()


def _slow_steps(monkeypatch, engine: Engine, seconds: float = 0.01) -> list[int]:
    """Each batch step takes a little longer, so that tests can act between steps; the list it
    returns fills with the number of rows each step decoded."""
    real = engine._step
    rows_per_step: list[int] = []

    def step():
        time.sleep(seconds)
        rows_per_step.append(len(engine._rows))
        real()

    monkeypatch.setattr(engine, "_step", step)
    return rows_per_step


def test_rows_join_and_leave_and_greedy_in_a_batch_equals_alone(tiny, monkeypatch):
    """fp32: a greedy row gives exactly its lone text, whoever shares the batch and whenever they join."""
    lengths = [24, 6, 15, 3, 10]
    settings = [GREEDY.with_(max_new_tokens=n) for n in lengths]
    alone = [_alone(tiny, p, s) for p, s in zip(PROMPTS, settings, strict=True)]
    engine = Engine(tiny, EngineLimits(max_rows=8, max_prefills_per_step=1))
    # Slow enough that the first row (24 tokens) is still decoding when the others join, even on a
    # busy machine.
    rows_per_step = _slow_steps(monkeypatch, engine, 0.05)
    tickets = []
    for p, s in zip(PROMPTS, settings, strict=True):
        tickets.append(engine.submit(Request(_ids(tiny, p), s)))
        time.sleep(0.03)  # later rows join a batch that is already decoding
    results = [t.result() for t in tickets]
    engine.close()
    assert [r.text for r in results] == alone
    assert [r.new_tokens for r in results] == [len(r.ids) for r in results]
    assert max(rows_per_step) >= 2, "rows decoded together"
    assert engine.steps < sum(lengths), "shared steps: fewer than one per token of every row"


def test_per_row_settings_and_stop_strings(tiny):
    greedy = GREEDY.with_(max_new_tokens=12)
    full = _alone(tiny, PROMPTS[0], greedy)
    stop_at = full[4:7]
    engine = Engine(tiny)
    rows = [
        Request(_ids(tiny, PROMPTS[0]), greedy),
        Request(_ids(tiny, PROMPTS[0]), greedy.with_(stop=(stop_at,))),
        Request(
            _ids(tiny, PROMPTS[0]), DecodingSettings(temperature=1.3, top_k=0, top_p=1.0, max_new_tokens=12)
        ),
        Request(_ids(tiny, PROMPTS[0]), DecodingSettings(top_k=1, max_new_tokens=12, seed=3)),
    ]
    plain, cut, hot, top1 = [t.result() for t in [engine.submit(r) for r in rows]]
    engine.close()
    assert plain.text == full and top1.text == full  # top-k 1 sampling has one choice
    assert cut.text == full[: full.index(stop_at)] and cut.reason == "stop string"
    assert hot.text != full


def test_stopping_one_row_leaves_the_others(tiny, monkeypatch):
    long = GREEDY.with_(max_new_tokens=60)
    expected = _alone(tiny, PROMPTS[1], long)
    engine = Engine(tiny)
    _slow_steps(monkeypatch, engine)
    stopped = engine.submit(Request(_ids(tiny, PROMPTS[0]), long))
    other = engine.submit(Request(_ids(tiny, PROMPTS[1]), long))
    wait_for(lambda: stopped.state == "running" and other.state == "running")
    stopped.cancel()
    first = stopped.result()
    assert first.stopped and first.reason == "stopped" and first.new_tokens < 60
    assert other.result().text == expected
    engine.close()


def test_a_failing_prefill_or_step_fails_only_its_row(tiny, monkeypatch):
    settings = GREEDY.with_(max_new_tokens=20)
    expected = [_alone(tiny, p, settings) for p in PROMPTS[:3]]
    poison = _ids(tiny, PROMPTS[3])
    model = tiny.model
    real_forward = model.forward
    state = {"rows_seen": 0}

    def forward(input_ids=None, **kwargs):
        if input_ids.shape[0] == 1 and input_ids.shape[1] == len(poison) and input_ids[0].tolist() == poison:
            raise RuntimeError("bad row")
        state["rows_seen"] = max(state["rows_seen"], input_ids.shape[0])
        if input_ids.shape[1] == 1 and input_ids.shape[0] == 4:
            raise torch.OutOfMemoryError("CUDA out of memory (the fourth row)")
        return real_forward(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    engine = Engine(tiny, EngineLimits(max_prefills_per_step=1))
    _slow_steps(monkeypatch, engine)
    tickets = [engine.submit(Request(_ids(tiny, p), settings)) for p in PROMPTS[:3]]
    bad = engine.submit(Request(poison, settings))
    wait_for(lambda: all(t.state == "running" for t in tickets))
    fourth = engine.submit(Request(_ids(tiny, PROMPTS[4]), settings))  # the step with 4 rows fails
    with pytest.raises(RuntimeError, match="bad row"):
        bad.result()
    with pytest.raises(PlaygroundError, match="Out of GPU memory"):
        fourth.result()
    assert [t.result().text for t in tickets] == expected
    engine.close()


def test_chat_is_admitted_while_an_evaluation_fills_the_batch(tiny, monkeypatch):
    engine = Engine(tiny, EngineLimits(max_rows=4, reserved_interactive=1, max_prefills_per_step=2))
    _slow_steps(monkeypatch, engine)
    work = GREEDY.with_(max_new_tokens=25)
    evaluation = [
        engine.submit(Request(_ids(tiny, PROMPTS[i % 5]), work, kind=BACKGROUND, owner="eval"))
        for i in range(12)
    ]
    wait_for(lambda: engine.snapshot().background_running == 3)
    assert engine.snapshot().background_running == 3, "one row stays free for chats"
    chat = engine.submit(Request(_ids(tiny, PROMPTS[0]), GREEDY.with_(max_new_tokens=5), owner="student"))
    chat.result()
    unfinished = sum(t.state != "done" for t in evaluation)
    assert unfinished >= 8, "the chat did not wait for the evaluation"
    for t in evaluation:
        t.result()
    engine.close()


def test_background_owners_take_turns(tiny):
    short = GREEDY.with_(max_new_tokens=8)
    engine = Engine(tiny)
    with engine._cond:  # queue without running: look at the admission order only
        engine._thread = threading.current_thread()
    a = [engine.submit(Request([5, 6], short, kind=BACKGROUND, owner="a")) for _ in range(3)]
    b = [engine.submit(Request([5, 6], short, kind=BACKGROUND, owner="b")) for _ in range(2)]
    chat = engine.submit(Request([5, 6], short, kind=INTERACTIVE, owner="c"))
    assert engine._admission_order() == [chat, a[0], b[0], a[1], b[1], a[2]]
    assert chat.status().startswith("waiting: position 1 of 6")
    assert b[1].status().startswith("waiting: position 5 of 6")
    engine._waiting.clear()
    engine._thread = None


def test_queue_position_and_refusals(tiny, monkeypatch):
    engine = Engine(tiny, EngineLimits(max_rows=1, per_owner=2))
    _slow_steps(monkeypatch, engine)
    first = engine.submit(Request(_ids(tiny, PROMPTS[0]), GREEDY.with_(max_new_tokens=30), owner="me"))
    second = engine.submit(Request(_ids(tiny, PROMPTS[1]), GREEDY.with_(max_new_tokens=3), owner="me"))
    wait_for(lambda: first.state == "running")
    assert first.status() == "generating alone"
    assert second.status().startswith("waiting: position 1 of 1")
    with pytest.raises(PlaygroundError, match="already have 2 answers"):
        engine.submit(Request(_ids(tiny, PROMPTS[2]), GREEDY.with_(max_new_tokens=8), owner="me"))
    with pytest.raises(PlaygroundError, match="exceeds the model's context"):
        engine.submit(Request(_ids(tiny, PROMPTS[2]), GREEDY.with_(max_new_tokens=10_000)))
    with pytest.raises(PlaygroundError, match="Adapter nope is not loaded"):
        engine.submit(Request(_ids(tiny, PROMPTS[2]), GREEDY.with_(max_new_tokens=8), adapter="nope"))
    with pytest.raises(PlaygroundError, match="top-p"):
        engine.submit(Request(_ids(tiny, PROMPTS[2]), GREEDY.with_(top_p=5.0)))
    first.result(), second.result()
    engine.close()
    with pytest.raises(PlaygroundError, match="unloaded"):
        engine.submit(Request(_ids(tiny, PROMPTS[2]), GREEDY.with_(max_new_tokens=8)))


def test_generation_inside_an_exclusive_section_is_refused_not_deadlocked(tiny):
    from playground.models.access import exclusive_model

    engine = Engine(tiny)
    with exclusive_model(tiny), pytest.raises(RuntimeError, match="wait on itself"):
        engine.submit(Request(_ids(tiny, PROMPTS[0]), GREEDY.with_(max_new_tokens=8)))
    engine.close()


def test_a_cache_that_cannot_be_padded_runs_one_row_at_a_time(tiny, monkeypatch):
    """Requests waiting before the first prefill are not admitted together: that prefill decides
    whether rows can share the cache."""
    import playground.generation.engine as engine_module

    settings = GREEDY.with_(max_new_tokens=6)
    alone = [_alone(tiny, p, settings) for p in PROMPTS[:3]]
    monkeypatch.setattr(engine_module, "can_pad", lambda cache: False)
    engine = Engine(tiny, EngineLimits(max_rows=8, max_prefills_per_step=4))
    rows_per_step = _slow_steps(monkeypatch, engine, 0.0)
    tickets = [engine.submit(Request(_ids(tiny, p), settings)) for p in PROMPTS[:3]]
    assert [t.result().text for t in tickets] == alone
    engine.close()
    assert max(rows_per_step) == 1 and engine.capacity() == 1
