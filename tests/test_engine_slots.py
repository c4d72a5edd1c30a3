"""The engine's slot batch (slot_rows.py), forced on CPU where its step runs eagerly.

On CUDA the same step is one captured graph; here the cache, the admission into slots, the
growth of the cache and the fallback to PaddedRows are checked against rows decoded alone.
"""

from __future__ import annotations

import time

import pytest

from playground.generation import slot_rows
from playground.generation.engine import Engine, EngineLimits, Request
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.slot_rows import SlotRows
from playground.generation.stream import encode_prompt
from playground.models import LoadOptions, load_model
from tests.helpers import wait_for

PROMPTS = ["The quick brown fox", "床前明月光，", "Question: Is the", "USER: ASSISTANT: hello", "Summarize"]
LENGTHS = [24, 6, 15, 3, 10]


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def _ids(loaded, prompt: str) -> list[int]:
    return encode_prompt(loaded, prompt)["input_ids"][0].tolist()


def _alone(loaded, prompt: str, settings: DecodingSettings) -> str:
    engine = Engine(loaded, EngineLimits(max_rows=1), cache="padded")
    try:
        return engine.submit(Request(_ids(loaded, prompt), settings)).result().text
    finally:
        engine.close()


def _slow_steps(monkeypatch, engine: Engine, seconds: float = 0.01) -> None:
    real = engine._step

    def step():
        time.sleep(seconds)
        real()

    monkeypatch.setattr(engine, "_step", step)


def _record_slots(monkeypatch) -> list[tuple[int, int]]:
    """(slot, cache length) of every row SlotRows takes in."""
    taken: list[tuple[int, int]] = []
    real = SlotRows.add

    def add(self, prefilled, length, needed):
        slot = real(self, prefilled, length, needed)
        taken.append((slot, self.cache.max_len))
        return slot

    monkeypatch.setattr(SlotRows, "add", add)
    return taken


def _run(
    loaded, monkeypatch, cache: str, max_rows: int, prompts=PROMPTS, lengths=LENGTHS
) -> tuple[list[str], Engine]:
    engine = Engine(loaded, EngineLimits(max_rows=max_rows, max_prefills_per_step=1), cache=cache)
    _slow_steps(monkeypatch, engine)
    tickets = []
    for prompt, n in zip(prompts, lengths, strict=True):
        tickets.append(engine.submit(Request(_ids(loaded, prompt), GREEDY.with_(max_new_tokens=n))))
        time.sleep(0.03)  # later rows join a batch that is already decoding
    texts = [t.result().text for t in tickets]
    engine.close()
    return texts, engine


def test_rows_in_slots_equal_alone_and_padded_rows_and_slots_are_reused(tiny, monkeypatch):
    """fp32: greedy rows joining at different times give their lone text, as PaddedRows does."""
    alone = [_alone(tiny, p, GREEDY.with_(max_new_tokens=n)) for p, n in zip(PROMPTS, LENGTHS, strict=True)]
    padded, _ = _run(tiny, monkeypatch, "padded", 3)
    taken = _record_slots(monkeypatch)
    slots, engine = _run(tiny, monkeypatch, "slots", 3)
    assert engine.slot_reason is None
    assert slots == alone and padded == alone
    assert len(taken) == len(PROMPTS), "every row decoded in a slot"
    assert {slot for slot, _ in taken} <= {0, 1, 2}, "three slots for five rows: freed slots are reused"
    assert engine.steps < sum(LENGTHS), "rows shared steps"


def test_the_slot_cache_grows_under_running_rows(tiny, monkeypatch):
    """A newcomer longer than the cache makes it grow (columns copied); nobody's text changes."""
    monkeypatch.setattr(slot_rows, "FIRST_BUCKET", 16)
    prompts, lengths = PROMPTS[::-1], LENGTHS[::-1]  # short rows first, longer ones join them
    alone = [_alone(tiny, p, GREEDY.with_(max_new_tokens=n)) for p, n in zip(prompts, lengths, strict=True)]
    taken = _record_slots(monkeypatch)
    texts, _ = _run(tiny, monkeypatch, "slots", 5, prompts, lengths)
    assert texts == alone
    sizes = [size for _, size in taken]
    assert sizes[0] == 16 and sizes[-1] == 64 and sizes == sorted(sizes), sizes


def test_a_row_longer_than_the_slots_runs_in_padded_rows_beside_them(tiny, monkeypatch):
    """Rows past the slot cache's cap decode in PaddedRows in the same steps, with the same result."""
    monkeypatch.setattr(slot_rows, "MAX_LEN", 24)
    alone = [_alone(tiny, p, GREEDY.with_(max_new_tokens=n)) for p, n in zip(PROMPTS, LENGTHS, strict=True)]
    taken = _record_slots(monkeypatch)
    texts, _ = _run(tiny, monkeypatch, "slots", 4)
    assert texts == alone
    fitting = [len(_ids(tiny, p)) + n <= 24 for p, n in zip(PROMPTS, LENGTHS, strict=True)]
    assert 0 < sum(fitting) < len(PROMPTS)
    assert len(taken) == sum(fitting), "only rows that fit took a slot"


def test_stop_flags_and_stop_strings_in_slots(tiny, monkeypatch):
    long = GREEDY.with_(max_new_tokens=60)
    full = _alone(tiny, PROMPTS[0], GREEDY.with_(max_new_tokens=12))
    stop_at = full[4:7]
    expected = _alone(tiny, PROMPTS[1], long)
    taken = _record_slots(monkeypatch)
    engine = Engine(tiny, cache="slots")
    _slow_steps(monkeypatch, engine)
    stopped = engine.submit(Request(_ids(tiny, PROMPTS[2]), long))
    other = engine.submit(Request(_ids(tiny, PROMPTS[1]), long))
    cut = engine.submit(Request(_ids(tiny, PROMPTS[0]), GREEDY.with_(max_new_tokens=12, stop=(stop_at,))))
    wait_for(lambda: stopped.state == "running" and other.state == "running")
    stopped.cancel()
    first = stopped.result()
    assert first.stopped and first.reason == "stopped" and first.new_tokens < 60
    assert other.result().text == expected
    result = cut.result()
    assert result.text == full[: full.index(stop_at)] and result.reason == "stop string"
    engine.close()
    assert len(taken) == 3


def test_sampling_rows_in_slots_follow_their_seed(tiny):
    settings = DecodingSettings(temperature=1.3, top_k=0, top_p=1.0, max_new_tokens=12, seed=7)
    expected = _alone(tiny, PROMPTS[0], settings)
    engine = Engine(tiny, cache="slots")
    tickets = [engine.submit(Request(_ids(tiny, p), settings)) for p in (PROMPTS[0], PROMPTS[1], PROMPTS[0])]
    texts = [t.result().text for t in tickets]
    engine.close()
    assert texts[0] == expected and texts[2] == expected


def test_sliding_window_models_keep_padded_rows(tiny_mistral, monkeypatch):
    loaded = load_model(str(tiny_mistral), LoadOptions(precision="fp32"))
    taken = _record_slots(monkeypatch)
    settings = GREEDY.with_(max_new_tokens=8)
    expected = _alone(loaded, PROMPTS[0], settings)
    engine = Engine(loaded, cache="slots")
    assert engine.submit(Request(_ids(loaded, PROMPTS[0]), settings)).result().text == expected
    engine.close()
    assert taken == [] and "sliding-window" in engine.slot_reason


def test_the_cache_switch(monkeypatch, tiny):
    monkeypatch.setenv(slot_rows.CACHE_SWITCH, "padded")
    assert Engine(tiny).cache_choice == "padded"
    monkeypatch.setenv(slot_rows.CACHE_SWITCH, "sideways")
    with pytest.raises(ValueError, match="auto, slots or padded"):
        Engine(tiny)
    monkeypatch.delenv(slot_rows.CACHE_SWITCH)
    assert slot_rows.slot_reason(tiny.model, "auto") == "not on a CUDA device"
    assert slot_rows.slot_reason(tiny.model, "slots") is None


def test_a_step_runs_only_the_slots_its_rows_need():
    """A lone row runs as a batch of one; the step widens to 2, 4, ... slots as rows take them."""
    from playground.generation.slot_rows import SlotRows

    rows = SlotRows.__new__(SlotRows)
    rows.slots = 16
    for used, count in (({0}, 1), ({0, 1}, 2), ({2}, 4), ({0, 4}, 8), ({0, 9}, 16), (set(), 1)):
        rows.used = used
        assert rows.step_slots() == count


def test_newcomers_of_one_step_share_one_left_padded_prefill_and_equal_alone(tiny, monkeypatch):
    """Once the slots are sized, the newcomers a step admits are prefilled in one forward (left
    padded, positions counted per row); each row's greedy text still equals its text alone."""
    groups: list[int] = []
    real = Engine._prefill

    def prefill(self, tickets):
        groups.append(len(tickets))
        return real(self, tickets)

    monkeypatch.setattr(Engine, "_prefill", prefill)
    settings = [GREEDY.with_(max_new_tokens=n) for n in LENGTHS]
    alone = [_alone(tiny, p, s) for p, s in zip(PROMPTS, settings, strict=True)]
    groups.clear()
    engine = Engine(tiny, EngineLimits(max_rows=8, max_prefill_rows=4), cache="slots")
    _slow_steps(monkeypatch, engine, 0.05)
    first = engine.submit(Request(_ids(tiny, PROMPTS[0]), settings[0]))
    wait_for(lambda: engine.snapshot().running == 1, 30)  # the first prefill sizes the slots
    rest = [engine.submit(Request(_ids(tiny, p), s)) for p, s in zip(PROMPTS[1:], settings[1:], strict=True)]
    texts = [t.result().text for t in [first, *rest]]
    engine.close()
    assert texts == alone
    assert groups[0] == 1 and max(groups) > 1, groups
    assert sum(groups) == len(PROMPTS) and max(groups) <= 4
