from __future__ import annotations

import json
import math

import pytest
import torch

from playground.errors import Cancelled, PlaygroundError
from playground.evaluation.perplexity import looped_perplexity, perplexity
from playground.prompts.templates import TEMPLATES

# Very different lengths, Chinese, an empty prompt and an empty output.
PAIRS = [
    ("Question: is it plausible? Answer:", " yes"),
    ("床前明月光，疑是地上霜。" * 6, "舉頭望明月，低頭思故鄉。" * 3),
    ("", "The quick brown fox."),
    ("USER: Summarize the dialogue. ASSISTANT:", " Hello! Hi, how are you?" * 5),
    ("### Instruction:\nSay nothing.\n\n### Output:\n", ""),
    ("The lazy dog", " jumps over the quick brown fox and then sleeps all afternoon."),
    ("白日依山盡", "，黃河入海流。"),
]


def load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def llama(tiny_llama):
    return load(tiny_llama)


@pytest.fixture(scope="module")
def mistral(tiny_mistral):
    return load(tiny_mistral)


@pytest.fixture(scope="module", params=["llama", "mistral"])
def model_and_tokenizer(request):
    return request.getfixturevalue(request.param)


def assert_same(a, b, rel=1e-4):
    assert [e.prompt for e in a.examples] == [e.prompt for e in b.examples]
    for x, y in zip(a.examples, b.examples):
        assert len(x.nll) == len(y.nll)
        assert y.perplexity == pytest.approx(x.perplexity, rel=rel)
        assert y.tokens == x.tokens
    assert b.mean_perplexity == pytest.approx(a.mean_perplexity, rel=rel)
    assert b.corpus_perplexity == pytest.approx(a.corpus_perplexity, rel=rel)
    assert b.n_tokens == a.n_tokens


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_equals_homework_loop(model_and_tokenizer, batch_size):
    model, tokenizer = model_and_tokenizer
    assert_same(
        looped_perplexity(model, tokenizer, PAIRS), perplexity(model, tokenizer, PAIRS, batch_size=batch_size)
    )


def test_loop_matches_next_token_probabilities(llama):
    # Independent of any shifting: score each output token from a forward pass over its prefix.
    model, tokenizer = llama
    prompt, output = PAIRS[5]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = [tokenizer.bos_token_id] + prompt_ids + tokenizer(output, add_special_tokens=False)["input_ids"]
    ids.append(tokenizer.eos_token_id)
    expected = []
    with torch.no_grad():
        for t in range(1 + len(prompt_ids), len(ids)):
            logits = model(torch.tensor([ids[:t]])).logits[0, -1]
            expected.append(-torch.log_softmax(logits.float(), -1)[ids[t]].item())
    got = looped_perplexity(model, tokenizer, [PAIRS[5]]).examples[0]
    assert got.nll == pytest.approx(expected, rel=1e-4)
    assert got.perplexity == pytest.approx(math.exp(sum(expected) / len(expected)), rel=1e-4)


def test_padding_does_not_leak(mistral):
    model, tokenizer = mistral
    short = ("The lazy dog", " sleeps.")
    alone = perplexity(model, tokenizer, [short]).examples[0].perplexity
    long = ("床前明月光，" * 20, "疑是地上霜。" * 10)
    together = perplexity(model, tokenizer, [long, short, long], batch_size=3).examples[1].perplexity
    assert together == pytest.approx(alone, rel=1e-4)


def test_original_order_is_kept(llama):
    model, tokenizer = llama
    pairs = [PAIRS[0], PAIRS[1], PAIRS[6], PAIRS[3]]
    batched = perplexity(model, tokenizer, pairs, batch_size=2)
    assert [(e.prompt, e.reference) for e in batched.examples] == pairs
    singles = [perplexity(model, tokenizer, [p]).examples[0].perplexity for p in pairs]
    assert [e.perplexity for e in batched.examples] == pytest.approx(singles, rel=1e-4)


def test_only_output_and_eos_are_scored(llama):
    model, tokenizer = llama
    result = perplexity(model, tokenizer, PAIRS, batch_size=3)
    for example, (_, output) in zip(result.examples, PAIRS):
        n_output = len(tokenizer(output, add_special_tokens=False)["input_ids"])
        assert len(example.nll) == len(example.tokens) == n_output + 1
        assert "".join(example.tokens) == output + tokenizer.eos_token
    assert result.n_tokens == sum(len(e.nll) for e in result.examples)
    total = sum(x for e in result.examples for x in e.nll)
    assert result.corpus_perplexity == pytest.approx(math.exp(total / result.n_tokens))
    assert result.mean_perplexity == pytest.approx(sum(e.perplexity for e in result.examples) / len(PAIRS))


def test_max_length_cuts_the_output_and_skips_prompts_that_fill_it(llama):
    model, tokenizer = llama
    prompt, output = PAIRS[5]
    n_head = 1 + len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    too_long = ("床前明月光" * 20, "疑是地上霜")
    pairs = [(prompt, output), too_long]
    batched = perplexity(model, tokenizer, pairs, max_length=n_head + 4)
    looped = looped_perplexity(model, tokenizer, pairs, max_length=n_head + 4)
    assert len(batched.examples[0].nll) == 4
    assert math.isnan(batched.examples[1].perplexity) and batched.n_skipped == 1
    assert batched.mean_perplexity == pytest.approx(batched.examples[0].perplexity)
    assert batched.examples[0].perplexity == pytest.approx(looped.examples[0].perplexity, rel=1e-4)
    with pytest.raises(PlaygroundError, match="Nothing left to score"):
        perplexity(model, tokenizer, [too_long], max_length=n_head)


def test_progress_and_cancel(llama):
    model, tokenizer = llama
    calls = []
    perplexity(
        model, tokenizer, PAIRS, batch_size=3, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(3, 7), (6, 7), (7, 7)]
    calls.clear()
    with pytest.raises(Cancelled):
        perplexity(
            model,
            tokenizer,
            PAIRS,
            batch_size=3,
            progress=lambda done, total: calls.append(done),
            should_stop=lambda: bool(calls),
        )
    assert calls == [3]


def test_half_precision_is_scored_in_float32(llama, tiny_llama):
    model, tokenizer = llama
    half = load(tiny_llama)[0].to(torch.bfloat16)
    reference = perplexity(model, tokenizer, PAIRS[:3])
    result = perplexity(half, tokenizer, PAIRS[:3], batch_size=2)
    assert all(isinstance(x, float) and math.isfinite(x) for e in result.examples for x in e.nll)
    assert result.mean_perplexity == pytest.approx(reference.mean_perplexity, rel=0.1)


def test_refuses_empty_input(llama):
    model, tokenizer = llama
    with pytest.raises(PlaygroundError, match="no examples"):
        perplexity(model, tokenizer, [])


def test_tang_poems_batched_equals_loop(llama, shared_dir):
    model, tokenizer = llama
    rows = json.loads((shared_dir / "datasets/tang-poems/Tang_training_data.json").read_text("utf-8"))[:10]
    template = TEMPLATES["taiwan-llama"]
    pairs = [(template.render(r["instruction"] + r["input"]), r["output"]) for r in rows]
    assert_same(looped_perplexity(model, tokenizer, pairs), perplexity(model, tokenizer, pairs, batch_size=4))


def test_no_second_bos_when_the_prompt_already_starts_with_it(llama):
    model, tokenizer = llama
    plain = perplexity(model, tokenizer, [("hello", "world")])
    with_bos = perplexity(model, tokenizer, [(tokenizer.bos_token + "hello", "world")])
    # "<s>hello" as text encodes to the same ids as the added bos + "hello": same number.
    assert with_bos.examples[0].perplexity == pytest.approx(plain.examples[0].perplexity, rel=1e-6)


def _forward_lengths(model) -> tuple[list[tuple[int, int]], object]:
    """Record (rows, tokens) of every forward pass through the model."""
    seen: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return seen, handle


def _scored_with_passes(model, tokenizer, pairs, **kwargs):
    seen, handle = _forward_lengths(model)
    try:
        return perplexity(model, tokenizer, pairs, **kwargs), seen
    finally:
        handle.remove()


def _poem_pairs(template_text: str) -> list[tuple[str, str]]:
    # Same instruction, different inputs; outputs that start alike (the shared prefix must stop
    # before the first scored token) and an empty one.
    inputs = ["床前明月光，", "白日依山盡，", "春眠不覺曉，處處聞啼鳥。", "紅豆生南國，"]
    outputs = ["疑是地上霜。", "疑是黃河入海流。", "夜來風雨聲，花落知多少。", ""]
    return [(template_text.format(input=i), o) for i, o in zip(inputs, outputs)]


@pytest.mark.parametrize(
    "template_text",
    [
        TEMPLATES["taiwan-llama"].render("請完成這首詩。{input}"),
        "### Instruction:\nComplete the poem.\n\n### Input:\n{input}\n\n### Output:\n",
    ],
    ids=["chat-template", "short-raw-template"],
)
def test_shared_prompt_prefix_runs_once_with_the_loops_numbers(model_and_tokenizer, template_text):
    model, tokenizer = model_and_tokenizer
    pairs = _poem_pairs(template_text)
    shared, seen = _scored_with_passes(model, tokenizer, pairs, batch_size=3)
    full = sorted(
        (2 + sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in pair) for pair in pairs),
        reverse=True,
    )
    window = getattr(model.config, "sliding_window", None)
    if window is not None and max(full) > window:
        # Beyond a sliding window the cache keeps only its tail: no prefix pass there.
        assert [rows for rows, _ in seen] == [3, 1]
    else:
        # One pass over the prefix alone, then two batches that no longer carry it.
        rows, shared_length = seen[0]
        assert rows == 1 and shared_length >= 16
        assert seen[1:] == [(3, full[0] - shared_length), (1, full[3] - shared_length)]
    assert_same(looped_perplexity(model, tokenizer, pairs), shared)
    assert_same(shared, perplexity(model, tokenizer, pairs, batch_size=3, share_prefix=False))


def test_no_prefix_pass_when_little_is_shared(llama):
    model, tokenizer = llama
    _, seen = _scored_with_passes(model, tokenizer, PAIRS, batch_size=4)
    assert [rows for rows, _ in seen] == [4, 3]


def test_shared_prefix_stops_before_the_first_scored_token(llama):
    # One prompt, outputs that begin alike: the common tokens run into the scored part.
    model, tokenizer = llama
    prompt = "### Instruction:\nContinue the poem.\n\n### Output:\n"
    pairs = [(prompt, "疑是地上霜。"), (prompt, "疑是黃河入海流。"), (prompt, "疑是銀河落九天。")]
    shared, seen = _scored_with_passes(model, tokenizer, pairs, batch_size=2)
    head = 1 + len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert seen[0] == (1, head - 1)
    assert_same(looped_perplexity(model, tokenizer, pairs), shared)


def test_token_texts_in_one_batched_decode_equal_one_decode_each(llama, monkeypatch):
    import importlib

    # The package exports the function `perplexity`, which hides the module of the same name.
    module = importlib.import_module("playground.evaluation.perplexity")
    _, tokenizer = llama
    # Chinese characters split over several byte-level tokens, spaces and punctuation.
    ids = tokenizer("床前明月光， the fox — 疑是地上霜。" * 2, add_special_tokens=False)["input_ids"]
    assert module._stock_decode(type(tokenizer))
    batched = module._token_texts(tokenizer, ids)
    monkeypatch.setattr(module, "_stock_decode", lambda cls: False)
    assert batched == module._token_texts(tokenizer, ids)
    assert "".join(batched) == tokenizer.decode(ids, clean_up_tokenization_spaces=False)
