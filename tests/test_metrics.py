from __future__ import annotations

import pytest

from playground.errors import PlaygroundError
from playground.evaluation.metrics import (
    METRICS,
    accuracy,
    accuracy_per_example,
    bleu,
    chrf,
    distinct_n,
    extract_answer,
    lcs_length,
    rouge,
    rouge_per_example,
    tokenize,
)


def test_tokenize_splits_cjk_per_character_and_drops_punctuation():
    text = "Hello, World! 床前明月光。abc中文 x2"
    assert tokenize(text) == ["hello", "world", "床", "前", "明", "月", "光", "abc", "中", "文", "x2"]


def test_lcs_length_textbook_case():
    # Cormen et al.: LCS("ABCBDAB", "BDCABA") = 4 ("BCBA").
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], list("abc")) == 0


def test_rouge_english_by_hand():
    # pred: the cat sat on the mat / ref: the cat is on the mat (6 tokens each)
    # unigrams in common: the x2, cat, on, mat = 5 -> P = R = 5/6
    # bigrams: pred {the cat, cat sat, sat on, on the, the mat}; 3 shared -> P = R = 3/5
    # LCS: the cat on the mat = 5 -> 5/6
    scores = rouge(["The cat sat on the mat."], ["the cat is on the mat"])
    assert scores["rouge1"] == pytest.approx(5 / 6)
    assert scores["rouge2"] == pytest.approx(3 / 5)
    assert scores["rougeL"] == pytest.approx(5 / 6)


def test_rouge_chinese_by_hand():
    # pred 床前明月光 / ref 床前看月光: shared characters 床前月光 -> P = R = 4/5;
    # bigrams pred {床前, 前明, 明月, 月光}, ref {床前, 前看, 看月, 月光}: 2 shared -> 2/4;
    # LCS 床前月光 = 4 -> 4/5.
    scores = rouge(["床前明月光"], ["床前看月光"])
    assert scores["rouge1"] == pytest.approx(0.8)
    assert scores["rouge2"] == pytest.approx(0.5)
    assert scores["rougeL"] == pytest.approx(0.8)


def test_rouge_precision_and_recall_differ():
    # pred "a b" vs ref "a b c d": P = 1, R = 1/2 -> F1 = 2/3; bigrams 1/1 vs 1/3 -> 0.5
    scores = rouge(["a b"], ["a b c d"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(0.5)


def test_rouge_lsum_uses_lines_but_rouge_l_does_not():
    # Lines swapped: flat LCS is only "a b c" (3 of 6) but per line every token is matched.
    scores = rouge(["d e f\na b c"], ["a b c\nd e f"])
    assert scores["rougeL"] == pytest.approx(0.5)
    assert scores["rougeLsum"] == pytest.approx(1.0)


def test_rouge_lsum_union_lcs_from_lin_2004():
    # Lin (2004): r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5.
    # Union LCS = w1 w2 w3 w5 -> R = 4/5, P = 4/10 -> F = 2*.8*.4/1.2 = 0.5333
    scores = rouge(["w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5"], ["w1 w2 w3 w4 w5"])
    assert scores["rougeLsum"] == pytest.approx(2 * 0.8 * 0.4 / 1.2)


def test_rouge_takes_best_reference_and_averages():
    per = rouge_per_example(["a b c", "x y"], [["q", "a b c"], "z"])
    assert per[0]["rouge1"] == pytest.approx(1.0)
    assert per[1]["rouge1"] == 0.0
    assert rouge(["a b c", "x y"], [["q", "a b c"], "z"])["rouge1"] == pytest.approx(0.5)


def test_metrics_reject_unpaired_lists():
    with pytest.raises(PlaygroundError, match="2 predictions but 1 references"):
        rouge(["a", "b"], ["a"])


def test_bleu_and_chrf_sanity():
    text = ["the quick brown fox jumps over the lazy dog", "a stitch in time saves nine"]
    assert bleu(text, text) == pytest.approx(100.0)
    assert chrf(text, text) == pytest.approx(100.0)
    other = ["zzz qqq vvv www", "mmm nnn ooo ppp"]
    assert bleu(other, text) < 1.0
    assert chrf(other, text) < 5.0


def test_bleu_accepts_a_varying_number_of_references():
    preds = ["the quick brown fox jumps", "a stitch in time saves nine"]
    refs = [["nothing alike at all here", "the quick brown fox jumps"], "a stitch in time saves nine"]
    assert bleu(preds, refs) == pytest.approx(100.0)


def test_bleu_tokenizes_chinese_per_character():
    # With the default 13a tokenizer each clause would be one word and share nothing.
    score = bleu(["床前明月光，疑是地上霜。"], ["床前明月光，疑是天上霜。"])
    assert 30.0 < score < 100.0
    assert bleu(["床前明月光，疑是地上霜。"], ["床前明月光，疑是地上霜。"]) == pytest.approx(100.0)


COT_NO = (
    "Let's think step by step. Joao Moutinho is a soccer player. Catching a screen pass is part of "
    "American football, yes, but not of soccer. So the answer is no."
)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        (COT_NO, ("yes", "no"), "no"),
        ("The answer is yes? Wait, let me check again.\nSo the answer is no.", ("yes", "no"), "no"),
        ("Yes, that is right.", ("yes", "no"), "yes"),
        ("Yesterday it rained.", ("yes", "no"), None),
        ("Answer: **No**", ("yes", "no"), "no"),
        ("So the answer is:\n\nyes", ("yes", "no"), "yes"),
        ("The sentence is implausible.", ("plausible", "implausible"), "implausible"),
        ("Plausible.", ("plausible", "implausible"), "plausible"),
        (
            "A plausible reading fails here. So the answer is implausible.",
            ("plausible", "implausible"),
            "implausible",
        ),
        ("(A) is too early and (C) too late. So the answer is (B).", ("(A)", "(B)", "(C)", "(D)"), "(B)"),
        ("Counting the days, the answer is B.", ("(A)", "(B)", "(C)", "(D)"), "(B)"),
        ("Answer: (d)", ("(A)", "(B)", "(C)", "(D)"), "(D)"),
        ("So the answer is a date in May: (C)", ("(A)", "(B)", "(C)", "(D)"), "(C)"),
        ("I am not sure.", ("yes", "no"), None),
        ("5 + 37 = 42. So the answer is 42.", None, "42"),
    ],
)
def test_extract_answer(text, labels, expected):
    assert extract_answer(text, labels) == expected


def test_accuracy_with_derived_labels_and_accepted_answers():
    preds = ["So the answer is (B).", "(A) seems right.", "I think no", "Nothing useful"]
    refs = ["(B)", "(C)", ["no", "No."], "yes"]
    assert accuracy_per_example(preds, refs) == [True, False, True, False]
    assert accuracy(preds, refs) == pytest.approx(0.5)


def test_accuracy_with_given_labels():
    preds = ["It is implausible.", "Totally plausible!"]
    assert accuracy(preds, ["implausible", "implausible"], labels=("plausible", "implausible")) == 0.5


def test_distinct_n():
    # unigrams a b a b | a b -> 2 unique of 6; bigrams ab ba ab | ab -> 2 unique of 4
    assert distinct_n(["a b a b", "a b"], 1) == pytest.approx(2 / 6)
    assert distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)
    assert distinct_n(["床前床前"], 1) == pytest.approx(2 / 4)
    assert distinct_n([""], 2) == 0.0
    with pytest.raises(PlaygroundError):
        distinct_n(["a"], 0)


def test_metrics_table():
    assert METRICS["perplexity"][1] is False
    for name in ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf", "accuracy"):
        assert METRICS[name][1] is True
    preds, refs = ["a b c d"], ["a b x y"]
    assert METRICS["rouge2"][0](preds, refs) == pytest.approx(rouge(preds, refs)["rouge2"])
