"""Encoder-decoder models (flan-t5 family) through the same services, on a tiny local T5."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.data import load_dataset
from playground.evaluation.perplexity import looped_perplexity, perplexity
from playground.evaluation.runner import EvalConfig, evaluate
from playground.generation import GREEDY, DecodingSettings, generate_text
from playground.generation.batch import generate_batch
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, find_preset, load_model
from playground.prompts.fewshot import FewShotConfig
from playground.prompts.templates import get_template

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def t5(tiny_t5):
    return load_model(str(tiny_t5), LoadOptions(precision="fp32"))


def test_loads_as_seq2seq_with_plain_template(t5):
    assert t5.is_seq2seq
    assert type(t5.model).__name__ == "T5ForConditionalGeneration"
    assert t5.default_template.text == "{instruction}{input}"  # no chat template: the raw prompt
    assert find_preset("google/flan-t5-large").seq2seq


def test_generation_returns_decoder_output_only(t5):
    out = generate_text(t5, "Is the sentence plausible?", GREEDY.with_(max_new_tokens=8))
    assert out.finished and 1 <= out.new_tokens <= 8
    assert "plausible?" not in out.text  # not the prompt echoed back
    batched = generate_batch(
        t5, ["Is the sentence plausible?", "a much longer prompt " * 3], GREEDY.with_(max_new_tokens=8)
    )
    assert batched[0][0].text == out.text  # padding in the batch does not change the answer
    a = generate_text(t5, "hello", DecodingSettings(temperature=1.3, max_new_tokens=8, seed=3)).text
    assert a == generate_text(t5, "hello", DecodingSettings(temperature=1.3, max_new_tokens=8, seed=3)).text


def test_perplexity_is_decoder_nll_of_labels(t5):
    import math

    import torch

    pairs = [("question one", "yes"), ("a longer question number two", "no, not at all"), ("q3", "maybe")]
    batched = perplexity(t5.model, t5.tokenizer, pairs, batch_size=3)
    looped = looped_perplexity(t5.model, t5.tokenizer, pairs)
    for a, b in zip(batched.examples, looped.examples, strict=True):
        assert a.perplexity == pytest.approx(b.perplexity, rel=1e-4)
    # By hand for the first pair: the model's own loss with labels = reference + eos.
    enc = t5.tokenizer("question one", return_tensors="pt")
    labels = t5.tokenizer("yes", return_tensors="pt")["input_ids"]  # ByT5 appends eos
    with torch.no_grad():
        loss = t5.model(**enc, labels=labels).loss
    assert batched.examples[0].perplexity == pytest.approx(math.exp(loss.item()), rel=1e-4)
    assert len(batched.examples[0].nll) == labels.shape[1]


def test_three_shot_accuracy_run_on_leaderboard(t5, tmp_path):
    board = Leaderboard(f"sqlite:///{tmp_path / 'lb.sqlite3'}")
    test = load_dataset(EXAMPLES / "sports_plausibility_test.json")
    train = load_dataset(EXAMPLES / "sports_plausibility_train.json")
    config = EvalConfig(
        metrics=("perplexity", "accuracy"),
        fewshot=FewShotConfig(k=3, example_template="Q: {instruction}\nA: {output}\n"),
        limit=3,
        decoding=GREEDY.with_(max_new_tokens=4),
    )
    [outcome] = evaluate(
        t5, test, get_template("Q: {instruction}\nA:"), config, pool=train.examples, leaderboard=board
    )
    record = board.run(outcome.run_id)
    assert record.status == "finished" and record.shots == 3
    assert "decoder" in record.notes["metrics"]["perplexity"]
    assert 0 <= outcome.metrics["accuracy"] <= 1 and outcome.metrics["mean_perplexity"] > 1
