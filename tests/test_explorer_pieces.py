"""Tokens merged into whole characters: readable text, the product of the tokens' probabilities."""

from __future__ import annotations

import math

import pytest

from playground.explorer.pieces import merge_pieces


@pytest.fixture(scope="module")
def tokenizer(embedded_model):
    return embedded_model.tokenizer


def test_chinese_characters_split_into_byte_tokens_come_back_whole(tokenizer):
    text = "床前明月光，疑是地上霜。"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text)  # byte-level: several tokens for some characters
    logprobs = [-0.1 * (i + 1) for i in range(len(ids))]
    pieces = merge_pieces(tokenizer, ids, logprobs)
    assert "".join(p.text for p in pieces) == text
    assert all("\ufffd" not in p.text and p.text for p in pieces)
    assert [c for p in pieces for c in p.text] == list(text)
    assert sum(len(p.token_ids) for p in pieces) == len(ids)
    multi = next(p for p in pieces if len(p.token_ids) > 1)
    # A character's probability is the product of its tokens'.
    first = multi.start
    expected = math.prod(math.exp(lp) for lp in logprobs[first : first + len(multi.token_ids)])
    assert multi.probability == pytest.approx(expected)
    assert len(multi.tokens) == len(multi.token_ids)


def test_english_words_stay_one_piece_per_token(tokenizer):
    ids = tokenizer("The moon is bright", add_special_tokens=False)["input_ids"]
    pieces = merge_pieces(tokenizer, ids, [0.0] * len(ids))
    assert [p.token_ids for p in pieces] == [(i,) for i in ids]
    assert "".join(p.text for p in pieces) == "The moon is bright"


def test_an_answer_cut_mid_character_keeps_its_last_tokens(tokenizer):
    ids = tokenizer("月", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1
    pieces = merge_pieces(tokenizer, ids[:-1], [-1.0] * (len(ids) - 1))
    assert len(pieces) == 1 and pieces[0].text == "" and pieces[0].logprob == pytest.approx(-(len(ids) - 1))


def test_a_logprob_per_token_is_required(tokenizer):
    with pytest.raises(ValueError):
        merge_pieces(tokenizer, [1, 2], [0.0])
