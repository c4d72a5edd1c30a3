"""The OpenAI-compatible API, through the official `openai` client against the running app."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
import torch

from playground.generation import DecodingSettings
from playground.generation.stream import decode_new
from tests.api_server import serve
from tests.helpers import generate_reference, save_random_lora, wait_for


@pytest.fixture
def app(tiny_llama, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tiny_llama.parent))
    started = []

    def start(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        served = serve(tiny_llama)
        started.append(served)
        return served

    yield start
    for served in started:
        served.demo.close()


def _greedy(loaded, prompt: str, n: int) -> str:
    ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
    new = generate_reference(loaded, ids, DecodingSettings(do_sample=False, max_new_tokens=n))
    return decode_new(loaded.tokenizer, new)


def test_chat_answers_as_generate_would_and_streams_the_same_answer(app):
    served = app()
    client, loaded = served.client(), served.ctx.models.current
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the cat sat"}]
    answer = client.chat.completions.create(
        model=served.model, messages=messages, max_tokens=12, temperature=0
    )
    prompt = loaded.default_template.render_conversation([], "the cat sat", "Be brief.", loaded.tokenizer)
    expected = _greedy(loaded, prompt, 12)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected
    assert answer.usage.prompt_tokens == len(loaded.tokenizer(prompt)["input_ids"])
    assert answer.usage.completion_tokens == 12 and choice.finish_reason == "length"
    assert answer.model == served.model

    chunks = list(
        client.chat.completions.create(
            model=served.model,
            messages=messages,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == expected and sum(bool(d) for d in deltas) > 1  # really streamed in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.total_tokens == answer.usage.total_tokens


def test_sampling_repeats_with_a_seed_and_ends_at_a_stop_string(app):
    served = app()
    client = served.client()

    def sample(seed: int, stop=None) -> str:
        r = client.completions.create(
            model=served.model, prompt="once upon a", max_tokens=16, temperature=1.0, seed=seed, stop=stop
        )
        return r.choices[0].text

    first = sample(7)
    assert sample(7) == first
    assert any(sample(seed) != first for seed in (8, 9, 10))
    cut = first[2:4]
    stopped = client.completions.create(
        model=served.model, prompt="once upon a", max_tokens=16, temperature=1.0, seed=7, stop=[cut]
    )
    assert stopped.choices[0].text == first[: first.index(cut)]
    assert stopped.choices[0].finish_reason == "stop"


def test_completions_logprobs_are_the_models_own(app):
    served = app()
    client, loaded = served.client(), served.ctx.models.current
    prompt = "the quick brown fox"
    r = client.completions.create(
        model=served.model, prompt=prompt, max_tokens=3, temperature=0, logprobs=3, echo=True
    )
    lp = r.choices[0].logprobs
    prompt_ids = loaded.tokenizer(prompt)["input_ids"]
    n_new = r.usage.completion_tokens
    assert len(lp.tokens) == len(prompt_ids) + n_new == len(lp.token_logprobs) == len(lp.text_offset)
    assert r.choices[0].text.startswith(prompt)
    greedy = DecodingSettings(do_sample=False, max_new_tokens=3)
    ids = prompt_ids + generate_reference(loaded, torch.tensor([prompt_ids]), greedy)
    assert len(ids) == len(lp.tokens)
    with torch.inference_mode():
        reference = loaded.model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    for i in range(1, len(ids)):
        assert lp.token_logprobs[i] == pytest.approx(reference[i - 1, ids[i]].item(), abs=1e-4)
        assert len(lp.top_logprobs[i]) <= 3
        assert max(lp.top_logprobs[i].values()) == pytest.approx(reference[i - 1].max().item(), abs=1e-4)
    # Greedy answer tokens are each the most likely one, exactly (lm-eval's is_greedy test).
    for i in range(len(prompt_ids), len(ids)):
        assert lp.token_logprobs[i] == max(lp.top_logprobs[i].values())
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]

    # Token ids as the prompt (what lm-evaluation-harness sends), max_tokens 0: the prompt is scored only.
    scored = client.completions.create(
        model=served.model, prompt=prompt_ids, max_tokens=0, temperature=0, logprobs=1, echo=True
    )
    assert scored.choices[0].logprobs.token_logprobs == pytest.approx(
        lp.token_logprobs[: len(prompt_ids)], abs=1e-5
    )
    assert scored.usage.completion_tokens == 0
    batch = client.completions.create(
        model=served.model, prompt=[prompt, "hello"], max_tokens=3, temperature=0
    )
    assert [c.index for c in batch.choices] == [0, 1]
    assert batch.choices[0].text == r.choices[0].text[len(prompt) :]
    assert batch.choices[1].text == _greedy(loaded, "hello", 3)


def test_a_wrong_key_is_refused_and_guessing_is_slowed(app):
    served = app(PLAYGROUND_API_KEYS="k-alice:alice,k-plain")
    assert served.client("k-alice").models.list().data[0].id == served.model
    assert served.client("k-plain").models.list().data[0].id == served.model
    for key in ("wrong", "k-alic", "k-alice:alice"):
        with pytest.raises(openai.AuthenticationError) as refused:
            served.client(key).chat.completions.create(
                model=served.model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        assert refused.value.code == "invalid_api_key"
    raw = httpx.get(f"{served.base_url}/models", timeout=30)
    assert raw.status_code == 401 and raw.json()["error"]["type"] == "authentication_error"
    # After the free failures the address waits, whatever key it sends next.
    with pytest.raises(openai.RateLimitError, match="Try again in"):
        served.client("k-alice").models.list()


def test_a_shared_playground_without_keys_keeps_the_api_off(app):
    served = app(PLAYGROUND_SHARED="1")
    reply = httpx.post(
        f"{served.base_url}/chat/completions",
        json={"model": served.model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert reply.status_code == 401
    assert (
        reply.json()["error"]["code"] == "api_off"
        and "PLAYGROUND_API_KEYS" in reply.json()["error"]["message"]
    )


def _adapter_of(owner: str, name: str, model_path, tmp_path) -> None:
    """An adapter saved by a training job that `owner` started (as the Training tab leaves it)."""
    from playground.paths import adapters_dir
    from playground.training import TrainingConfig
    from playground.training.job_files import TrainingJob, jobs_root

    folder = adapters_dir() / name
    save_random_lora(model_path, folder)
    (folder / "playground.json").write_text(json.dumps({"job": f"job-{name}", "base_model": str(model_path)}))
    config = TrainingConfig(model=str(model_path), data="d.json", output=name)
    TrainingJob.create(config, folder=jobs_root() / f"job-{name}", status="finished", owner=owner)


def test_another_users_adapter_is_refused(app, tiny_llama, tmp_path):
    _adapter_of("user:alice", "alices", tiny_llama, tmp_path)
    served = app(PLAYGROUND_API_KEYS="ka:alice,kb:bob", PLAYGROUND_MAX_NEW_TOKENS="64")
    alice, bob = served.client("ka"), served.client("kb")
    named = f"{served.model}+alices"
    assert named in [m.id for m in alice.models.list()]
    assert named not in [m.id for m in bob.models.list()]
    messages = [{"role": "user", "content": "the cat sat"}]
    with pytest.raises(openai.PermissionDeniedError, match="belongs to another user"):
        bob.chat.completions.create(model=named, messages=messages, max_tokens=8)
    for bad in (f"{served.model}+../alices", f"{served.model}+nope", "no-such-model"):
        with pytest.raises(openai.NotFoundError):
            alice.chat.completions.create(model=bad, messages=messages, max_tokens=8)
    with_adapter = alice.chat.completions.create(model=named, messages=messages, max_tokens=8, temperature=0)
    base = alice.chat.completions.create(model=served.model, messages=messages, max_tokens=8, temperature=0)
    assert with_adapter.choices[0].message.content != base.choices[0].message.content
    assert with_adapter.model == named


def test_absurd_values_are_refused_with_a_clear_message(app):
    served = app(PLAYGROUND_API_KEYS="k:alice", PLAYGROUND_MAX_NEW_TOKENS="32")
    client = served.client("k")
    messages = [{"role": "user", "content": "hi"}]
    cases = [
        ({"max_tokens": 10**12}, "max_tokens must be from 1 to 256"),
        ({"max_tokens": 100}, "allows up to 32"),
        ({"temperature": 9}, "temperature must be from 0 to 2"),
        ({"n": 3}, "'n' must be 1"),
        ({"stop": ["x"] * 9}, "'stop' takes up to 4"),
        ({"frequency_penalty": 1.5}, "repetition_penalty"),
    ]
    for extra, message in cases:
        with pytest.raises(openai.BadRequestError, match=message):
            client.chat.completions.create(model=served.model, messages=messages, **extra)
    with pytest.raises(openai.BadRequestError, match="exceeds the model's context"):
        client.completions.create(model=served.model, prompt="word " * 300, max_tokens=8)
    with pytest.raises(openai.BadRequestError, match="Token ids must be from 0"):
        client.completions.create(model=served.model, prompt=[1, 2, 10**9], max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        client.chat.completions.create(model=served.model, messages=[{"role": "assistant", "content": "x"}])
    headers = {"Authorization": "Bearer k"}
    raw = httpx.post(f"{served.base_url}/completions", content=b"{not json", headers=headers, timeout=30)
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    nan = b'{"model": "%s", "prompt": "hi", "temperature": NaN}' % served.model.encode()
    raw = httpx.post(f"{served.base_url}/completions", content=nan, headers=headers, timeout=30)
    assert raw.status_code == 400 and "temperature must be from 0 to 2" in raw.json()["error"]["message"]
    huge = httpx.post(
        f"{served.base_url}/completions", content=b" " * (9 * 2**20), headers=headers, timeout=30
    )
    assert huge.status_code == 413
    # Nothing above broke anything: the next sensible request is answered.
    ok = client.chat.completions.create(model=served.model, messages=messages, max_tokens=4, temperature=0)
    assert ok.choices[0].finish_reason in ("length", "stop")


def test_a_flood_from_one_key_gets_429_and_a_closed_stream_frees_its_place(app):
    served = app(PLAYGROUND_API_KEYS="k:alice,k2:bob", PLAYGROUND_MAX_MODEL_REQUESTS="1")
    client = served.client("k")
    messages = [{"role": "user", "content": "tell me a long story"}]
    stream = client.chat.completions.create(
        model=served.model, messages=messages, max_tokens=200, temperature=1.0, stream=True
    )
    next(iter(stream))  # the first chunk: the request is running
    with pytest.raises(openai.RateLimitError, match="limit is 1"):
        client.chat.completions.create(model=served.model, messages=messages, max_tokens=2)
    # Someone else is not held up by alice's flood.
    other = served.client("k2").chat.completions.create(model=served.model, messages=messages, max_tokens=2)
    assert other.usage.completion_tokens == 2
    stream.close()
    # The closed stream ends its row in the engine and gives alice her place back.
    engine = served.ctx.models.current.__dict__["_engine"]
    wait_for(lambda: engine.snapshot().running == 0, timeout=30)

    def answered() -> bool:
        try:
            client.chat.completions.create(model=served.model, messages=messages, max_tokens=2)
        except openai.RateLimitError:
            return False
        return True

    wait_for(answered, timeout=30, every=0.5)
