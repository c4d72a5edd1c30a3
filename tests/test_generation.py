from __future__ import annotations

import threading

import pytest

from playground.errors import PlaygroundError
from playground.generation import GREEDY, DecodingSettings, generate_text, stream_generate
from playground.models import LoadOptions, load_model


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


def test_same_seed_same_text_different_seed_differs(tiny):
    hot = DecodingSettings(temperature=1.5, top_p=1.0, top_k=0, max_new_tokens=24, seed=7)
    a = generate_text(tiny, "The quick brown fox", hot).text
    b = generate_text(tiny, "The quick brown fox", hot).text
    c = generate_text(tiny, "The quick brown fox", hot.with_(seed=8)).text
    assert a == b
    assert a != c


def test_settings_reach_the_sampler_and_beams_reach_generate(tiny, monkeypatch):
    from playground.generation import engine

    seen = {}
    original = tiny.model.generate
    real_process = engine.process_logits

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    def process_spy(logits, rows):
        seen["rows"] = [r.settings for r in rows]
        return real_process(logits, rows)

    monkeypatch.setattr(tiny.model, "generate", spy)
    monkeypatch.setattr(engine, "process_logits", process_spy)
    settings = DecodingSettings(
        temperature=0.3, top_p=0.4, top_k=7, repetition_penalty=1.3, no_repeat_ngram_size=2, max_new_tokens=5
    )
    generate_text(tiny, "hello", settings)
    assert seen["rows"] == [settings.validate()] and "num_beams" not in seen  # sampling: the engine
    # Beam search is not batched: it runs on generate() by itself.
    generate_text(tiny, "hello", GREEDY.with_(num_beams=3, length_penalty=0.5, max_new_tokens=4))
    assert seen["num_beams"] == 3 and seen["length_penalty"] == 0.5 and seen["do_sample"] is False


def test_token_counts(tiny):
    out = generate_text(tiny, "hello", GREEDY.with_(max_new_tokens=6))
    enc = tiny.tokenizer("hello", add_special_tokens=False)["input_ids"]
    assert out.prompt_tokens >= len(enc)
    assert 1 <= out.new_tokens <= 6
    assert out.tokens_per_s > 0


def test_stop_ends_generation_early(tiny):
    stop = threading.Event()
    updates = []
    settings = DecodingSettings(temperature=1.0, max_new_tokens=200, seed=1)
    # Suppress eos so the run would take all 200 tokens without the stop.
    tiny.model.generation_config.suppress_tokens = [tiny.tokenizer.eos_token_id]
    try:
        for update in stream_generate(tiny, "Once upon a time", settings, stop):
            updates.append(update)
            if len(updates) == 3:
                stop.set()
    finally:
        tiny.model.generation_config.suppress_tokens = None
    last = updates[-1]
    assert last.finished and last.stopped
    assert last.new_tokens < 200


def test_context_overflow_is_a_clear_error(tiny):
    with pytest.raises(PlaygroundError, match="exceeds the model's context"):
        generate_text(tiny, "word " * 200, GREEDY.with_(max_new_tokens=100))


def test_bad_settings_rejected():
    with pytest.raises(PlaygroundError, match="top-p"):
        DecodingSettings(top_p=0).validate()
    with pytest.raises(PlaygroundError, match="temperature"):
        DecodingSettings(temperature=0).validate()
