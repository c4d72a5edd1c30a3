"""The one sampler: per-row processors equal transformers', greedy is argmax, draws are per-row seeded."""

from __future__ import annotations

import torch
from transformers import (
    LogitsProcessorList,
    MinPLogitsWarper,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from playground.generation.sampler import RowSampling, process_logits, sample_next_token
from playground.generation.settings import GREEDY, DecodingSettings
from playground.generation.stops import cut_at_stop

VOCAB = 120
SETTINGS = [
    DecodingSettings(temperature=0.1, top_p=0.3),
    DecodingSettings(temperature=1.2, top_k=10, top_p=0.9, repetition_penalty=1.3),
    DecodingSettings(temperature=0.7, top_k=0, top_p=1.0, min_p=0.05, no_repeat_ngram_size=2),
    DecodingSettings(temperature=1.0, top_k=0, top_p=1.0, typical_p=0.6),
    DecodingSettings(temperature=2.0, top_k=3, top_p=0.8, min_p=0.1, typical_p=0.9, repetition_penalty=0.8),
    GREEDY.with_(repetition_penalty=1.5, no_repeat_ngram_size=3),
    GREEDY,
]


def _transformers(s: DecodingSettings) -> LogitsProcessorList:
    """What generate() builds for these settings, in its order (generation/utils.py)."""
    out = LogitsProcessorList()
    if s.repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(s.repetition_penalty))
    if s.no_repeat_ngram_size:
        out.append(NoRepeatNGramLogitsProcessor(s.no_repeat_ngram_size))
    if s.do_sample:
        if s.temperature != 1.0:
            out.append(TemperatureLogitsWarper(s.temperature))
        if s.top_k:
            out.append(TopKLogitsWarper(s.top_k))
        if s.top_p < 1:
            out.append(TopPLogitsWarper(s.top_p))
        if s.min_p:
            out.append(MinPLogitsWarper(s.min_p))
        if s.typical_p < 1:
            out.append(TypicalLogitsWarper(s.typical_p))
    return out


def _histories() -> torch.Tensor:
    ids = torch.randint(0, VOCAB, (len(SETTINGS), 20))
    ids[:, -3:] = ids[:, 4:7]  # repeated n-grams, so something is banned
    return ids


def test_processed_distribution_equals_transformers_processors_row_by_row():
    torch.manual_seed(0)
    ids, logits = _histories(), torch.randn(len(SETTINGS), VOCAB) * 3
    rows = [RowSampling.start(s, ids[i].tolist()) for i, s in enumerate(SETTINGS)]
    ours = process_logits(logits, rows)
    for i, s in enumerate(SETTINGS):
        want = _transformers(s)(ids[i : i + 1], logits[i : i + 1].clone())[0]
        assert torch.equal(torch.isinf(ours[i]), torch.isinf(want)), s
        assert torch.allclose(ours[i].softmax(-1), want.softmax(-1), atol=1e-6), s
    # Every warper and penalty actually removed or changed something somewhere.
    assert torch.isinf(ours).any(dim=1)[:6].all()


def test_greedy_rows_take_the_argmax():
    torch.manual_seed(1)
    logits = torch.randn(3, VOCAB)
    rows = [RowSampling.start(GREEDY, []) for _ in range(3)]
    assert torch.equal(sample_next_token(logits, rows), logits.argmax(dim=-1))
    penalised = [RowSampling.start(SETTINGS[5], _histories()[5].tolist())]
    assert int(sample_next_token(logits[:1], penalised)) == int(
        process_logits(logits[:1], penalised).argmax()
    )


def test_a_rows_draws_depend_on_its_seed_not_on_its_batch():
    torch.manual_seed(2)
    hot = DecodingSettings(temperature=1.0, top_k=0, top_p=1.0)
    logits = torch.randn(20, VOCAB)

    def draws(seeds: list[int], row: int) -> list[int]:
        rows = [RowSampling.start(hot.with_(seed=s), []) for s in seeds]
        return [int(sample_next_token(step.expand(len(seeds), -1), rows)[row]) for step in logits]

    alone = draws([7], 0)
    assert draws([3, 7, 9], 1) == alone == draws([7, 7], 1)
    assert draws([8], 0) != alone


def test_draws_follow_the_processed_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    s = DecodingSettings(temperature=1.5, top_k=4, top_p=1.0, seed=5)
    row = RowSampling.start(s, [])
    probs = process_logits(logits, [row]).softmax(-1)[0]
    draws = torch.tensor([int(sample_next_token(logits, [row])) for _ in range(6000)])
    freq = torch.bincount(draws, minlength=6).float() / len(draws)
    assert freq[4:].sum() == 0, "top-k removed the two least likely tokens"
    assert torch.allclose(freq, probs, atol=0.025)


def test_observed_tokens_feed_penalties_and_ngrams():
    row = RowSampling.start(GREEDY.with_(no_repeat_ngram_size=2, repetition_penalty=2.0), [5, 6])
    logits = torch.zeros(1, 10)
    logits[0, 5] = 1.0
    process_logits(logits, [row])
    row.observe(5)
    assert row.banned() == [6]  # "5 6" was seen, so after 5 comes anything but 6
    scores = process_logits(torch.ones(1, 10), [row])[0]
    assert scores[6] == -float("inf") and scores[5] == 0.5 and scores[7] == 1.0


def test_cut_at_stop():
    assert cut_at_stop("Hello\nUser: hi", ("User:", "\n\n")) == ("Hello\n", True)
    assert cut_at_stop("Hello", ("User:",)) == ("Hello", False)
    assert cut_at_stop("Hello", ("", "lo")) == ("Hel", True)
