"""The fast decode loop on CPU (eager steps, same code as the CUDA-graph path minus the capture)."""

from __future__ import annotations

import pytest
import torch

from playground.generation import GREEDY, DecodingSettings, fast_decode
from playground.generation.fast_decode import (
    FastDecodeConfig,
    decode_tokens,
    eos_ids,
    unsupported_reason,
)
from playground.models import LoadOptions, load_model
from tests.helpers import generate_reference

PROMPTS = ["The quick brown fox", "床前明月光，"]


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return load_model(str(tiny_llama), LoadOptions(precision="fp32"))


@pytest.fixture(scope="module")
def mistral(tiny_mistral):
    return load_model(str(tiny_mistral), LoadOptions(precision="fp32"))


def _ids(loaded, prompt: str) -> torch.Tensor:
    return loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]


def _fast(loaded, prompt: str, settings: DecodingSettings, **kw) -> list[int]:
    with torch.inference_mode():
        return list(
            decode_tokens(
                loaded.model, _ids(loaded, prompt), settings, eos_ids(loaded.model, loaded.tokenizer), **kw
            )
        )


def _reference(loaded, prompt: str, settings: DecodingSettings) -> list[int]:
    return generate_reference(loaded, _ids(loaded, prompt), settings)


@pytest.mark.parametrize(
    "arch, settings",
    [
        ("llama", GREEDY.with_(max_new_tokens=16)),
        ("mistral", GREEDY.with_(max_new_tokens=16)),
        ("llama", GREEDY.with_(max_new_tokens=16, repetition_penalty=1.4)),
        ("llama", GREEDY.with_(max_new_tokens=16, no_repeat_ngram_size=2)),
    ],
    ids=["greedy-llama", "greedy-mistral", "repetition-penalty", "no-repeat-2"],
)
def test_greedy_matches_generate(arch, settings, llama, mistral):
    loaded = llama if arch == "llama" else mistral
    for prompt in PROMPTS:
        assert _fast(loaded, prompt, settings) == _reference(loaded, prompt, settings)


def test_cached_runner_is_reused_and_reset_between_prompts(llama):
    settings = GREEDY.with_(max_new_tokens=16)
    _fast(llama, PROMPTS[0], settings)
    runner = llama.model._playground_fast_decode
    # A second, different prompt in the same cache bucket reuses the runner and must not see the first.
    assert _fast(llama, PROMPTS[1], settings) == _reference(llama, PROMPTS[1], settings)
    assert llama.model._playground_fast_decode is runner
    assert not runner.lock.locked()
    _fast(llama, PROMPTS[1], settings.with_(max_new_tokens=300), config=FastDecodeConfig(cache_bucket=64))
    assert llama.model._playground_fast_decode is not runner


def test_stop_ends_early_and_eos_ends_the_answer(llama):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    settings = DecodingSettings(temperature=1.0, max_new_tokens=100, seed=1)
    with torch.inference_mode():
        # No eos, so only the stop can end it before 100 tokens.
        got = list(decode_tokens(llama.model, _ids(llama, "Once"), settings, set(), should_stop))
    assert len(got) == 3
    first = _fast(llama, PROMPTS[0], GREEDY.with_(max_new_tokens=8))
    with torch.inference_mode():
        ended = list(
            decode_tokens(llama.model, _ids(llama, PROMPTS[0]), GREEDY.with_(max_new_tokens=8), {first[1]})
        )
    assert ended == first[: first.index(first[1]) + 1]


def test_sampling_is_seeded_and_follows_the_settings(llama):
    hot = DecodingSettings(temperature=1.5, top_p=1.0, top_k=0, max_new_tokens=20)
    a = _fast(llama, PROMPTS[0], hot.with_(seed=3))
    b = _fast(llama, PROMPTS[0], hot.with_(seed=3))
    c = _fast(llama, PROMPTS[0], hot.with_(seed=4))
    assert a == b and a != c
    # top-k 1 leaves one candidate, so sampling must give the greedy answer.
    assert _fast(llama, PROMPTS[1], hot.with_(top_k=1)) == _fast(
        llama, PROMPTS[1], GREEDY.with_(max_new_tokens=20)
    )


def test_unsupported_reasons(llama, mistral):
    ids = _ids(llama, PROMPTS[0])
    assert unsupported_reason(llama.model, GREEDY, ids, require_cuda=False) is None
    assert "CUDA" in unsupported_reason(llama.model, GREEDY, ids)
    assert (
        unsupported_reason(llama.model, GREEDY.with_(num_beams=3), ids, require_cuda=False) == "beam search"
    )
    assert "batch" in unsupported_reason(llama.model, GREEDY, ids.repeat(2, 1), require_cuda=False)
    # The tiny Mistral's window is 128 tokens: within it the loop applies, beyond it not.
    assert unsupported_reason(mistral.model, GREEDY.with_(max_new_tokens=64), ids, require_cuda=False) is None
    assert "sliding window" in unsupported_reason(mistral.model, GREEDY.with_(max_new_tokens=200), ids, False)
    llama.model.generation_config.suppress_tokens = [5]
    try:
        assert "suppress_tokens" in unsupported_reason(llama.model, GREEDY, ids, require_cuda=False)
    finally:
        llama.model.generation_config.suppress_tokens = None


def test_fused_formulas_equal_the_models_own(llama, monkeypatch):
    """The ops compiled into the CUDA graph compute exactly the model's RMSNorm and rotary."""
    import transformers.models.llama.modeling_llama as modeling

    monkeypatch.setattr(fast_decode, "_compiled", lambda name, fn: fn)  # no compiler on CPU
    ids = _ids(llama, PROMPTS[1])
    norm = llama.model.model.norm
    hidden = torch.randn(1, 3, norm.weight.shape[0])
    q, k = torch.randn(1, 4, 3, 16), torch.randn(1, 2, 3, 16)
    cos, sin = torch.randn(1, 3, 16), torch.randn(1, 3, 16)
    original = modeling.apply_rotary_pos_emb
    want_norm, want_rot = norm(hidden), original(q, k, cos, sin)
    with torch.inference_mode():
        want_logits = llama.model(input_ids=ids).logits
        with fast_decode._fused_ops(llama.model):
            assert modeling.apply_rotary_pos_emb is not original and "forward" in vars(norm)
            assert torch.equal(norm(hidden), want_norm)
            got_rot = modeling.apply_rotary_pos_emb(q, k, cos, sin)
            got_logits = llama.model(input_ids=ids).logits
    assert all(torch.equal(a, b) for a, b in zip(got_rot, want_rot))
    assert torch.equal(got_logits, want_logits)
    # Everything is put back afterwards.
    assert "forward" not in vars(norm)
    assert modeling.apply_rotary_pos_emb is original


def test_rows_unsupported_reasons(llama, mistral, monkeypatch):
    from playground.generation.fast_decode import MAX_ROWS, rows_unsupported_reason

    ids = _ids(llama, PROMPTS[0])
    assert rows_unsupported_reason(llama.model, ids, 4, 16, require_cuda=False) is None
    assert "CUDA" in rows_unsupported_reason(llama.model, ids, 4, 16)
    assert "one prompt" in rows_unsupported_reason(llama.model, ids.repeat(2, 1), 2, 16, require_cuda=False)
    assert "rows" in rows_unsupported_reason(llama.model, ids, MAX_ROWS + 1, 16, require_cuda=False)
    assert "sliding window" in rows_unsupported_reason(mistral.model, ids, 2, 200, require_cuda=False)
    gen = llama.model.generation_config
    monkeypatch.setattr(gen, "min_new_tokens", 5)  # decode_rows holds eos back itself
    assert rows_unsupported_reason(llama.model, ids, 4, 16, require_cuda=False) is None
    monkeypatch.setattr(gen, "suppress_tokens", [5])
    assert "suppress_tokens" in rows_unsupported_reason(llama.model, ids, 4, 16, require_cuda=False)
    monkeypatch.setenv(fast_decode.ENV_SWITCH, "0")
    assert "turned off" in rows_unsupported_reason(llama.model, ids, 4, 16, require_cuda=False)


def test_decode_rows_stops_each_row_and_all_rows(llama):
    from playground.generation.fast_decode import decode_rows

    ids = _ids(llama, PROMPTS[1])
    greedy = _fast(llama, PROMPTS[1], GREEDY.with_(max_new_tokens=8))
    with torch.inference_mode():
        # Three greedy rows (a 4-row bucket) with their own limits; eos ends a row early.
        rows = decode_rows(llama.model, ids, lambda _ids, scores: scores, [8, 3, 5], set())
        assert rows == [greedy, greedy[:3], greedy[:5]]
        eos = {greedy[2]}
        ended = greedy[: greedy.index(greedy[2]) + 1]
        assert decode_rows(llama.model, ids, lambda _ids, scores: scores, [8, 8], eos) == [ended, ended]
        calls = {"n": 0}

        def should_stop() -> bool:
            calls["n"] += 1
            return calls["n"] >= 2

        stopped = decode_rows(llama.model, ids, lambda _ids, scores: scores, [8, 8], set(), 0, should_stop)
    assert stopped == [greedy[:2], greedy[:2]]
    assert llama.model._playground_fast_rows.rows == 4


def test_row_buckets():
    from playground.generation.fast_decode import MAX_ROWS, row_bucket

    assert [row_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, MAX_ROWS)] == [4, 4, 4, 4, 8, 8, 16, 16]

    class Linear4bit(torch.nn.Module):  # stands in for bitsandbytes' layer, matched by name
        pass

    quantized = torch.nn.Sequential(Linear4bit())
    assert [row_bucket(n, quantized) for n in (1, 2, 3, 5)] == [1, 2, 4, 8]
    assert row_bucket(1, torch.nn.Sequential(torch.nn.Linear(2, 2))) == 4
