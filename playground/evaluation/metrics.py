"""Scores of generated text against references: ROUGE, BLEU, chrF, accuracy, distinct-n.

ROUGE follows Google's rouge-score (F1; rougeLsum is the union-LCS over lines) with a
tokenizer that also handles Chinese: every CJK character is a token of its own, other words
are lowercased runs of letters and digits, and punctuation is dropped. A reference may be a
list of accepted answers; each example then counts its best match.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from playground.errors import PlaygroundError

Reference = str | Sequence[str]

_CJK = "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_TOKEN = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")
_HAS_CJK = re.compile(f"[{_CJK}]")
ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# Above this many distinct reference answers a task is free-form, not a choice among labels.
_MAX_DERIVED_LABELS = 32


def tokenize(text: str) -> list[str]:
    """CJK characters one by one, other words lowercased; punctuation dropped."""
    return _TOKEN.findall(text.lower())


# ---------------------------------------------------------------- ROUGE


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence."""
    return _lcs_table(a, b)[len(a)][len(b)]


def rouge_per_example(predictions: Sequence[str], references: Sequence[Reference]) -> list[dict[str, float]]:
    """F1 of rouge1, rouge2, rougeL and rougeLsum for each example (best over its references)."""
    refs = _as_reference_lists(predictions, references)
    scores = []
    for prediction, answers in zip(predictions, refs):
        per_answer = [_rouge_pair(prediction, answer) for answer in answers]
        scores.append({k: max(s[k] for s in per_answer) for k in ROUGE_KEYS})
    return scores


def rouge(predictions: Sequence[str], references: Sequence[Reference]) -> dict[str, float]:
    """Mean F1 (0..1) of rouge1, rouge2, rougeL and rougeLsum."""
    per = rouge_per_example(predictions, references)
    return {k: sum(s[k] for s in per) / len(per) if per else 0.0 for k in ROUGE_KEYS}


def _rouge_pair(prediction: str, reference: str) -> dict[str, float]:
    pred, ref = tokenize(prediction), tokenize(reference)
    return {
        "rouge1": _ngram_f1(pred, ref, 1),
        "rouge2": _ngram_f1(pred, ref, 2),
        "rougeL": _f1(lcs_length(ref, pred), len(pred), len(ref)),
        "rougeLsum": _summary_lcs_f1(_lines(prediction), _lines(reference)),
    }


def _f1(hits: int, n_pred: int, n_ref: int) -> float:
    if not hits or not n_pred or not n_ref:
        return 0.0
    precision, recall = hits / n_pred, hits / n_ref
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _ngram_f1(pred: list[str], ref: list[str], n: int) -> float:
    p, r = Counter(_ngrams(pred, n)), Counter(_ngrams(ref, n))
    return _f1(sum((p & r).values()), sum(p.values()), sum(r.values()))


def _lines(text: str) -> list[list[str]]:
    return [tokenize(line) for line in text.split("\n") if line]


def _lcs_table(a: Sequence[str], b: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        row, prev = table[i], table[i - 1]
        for j, y in enumerate(b, 1):
            row[j] = prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1])
    return table


def _lcs_indices(ref: Sequence[str], pred: Sequence[str]) -> list[int]:
    """Indices into `ref` of one LCS, chosen by the same backtrack as rouge-score."""
    table = _lcs_table(ref, pred)
    i, j, out = len(ref), len(pred), []
    while i > 0 and j > 0:
        if ref[i - 1] == pred[j - 1]:
            out.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out[::-1]


def _summary_lcs_f1(pred_lines: list[list[str]], ref_lines: list[list[str]]) -> float:
    n_pred, n_ref = sum(map(len, pred_lines)), sum(map(len, ref_lines))
    if not n_pred or not n_ref:
        return 0.0
    # Each token can be a hit only as many times as it occurs on both sides.
    left_pred = Counter(t for line in pred_lines for t in line)
    left_ref = Counter(t for line in ref_lines for t in line)
    hits = 0
    for ref in ref_lines:
        union = sorted(set().union(*(_lcs_indices(ref, pred) for pred in pred_lines)))
        for token in (ref[i] for i in union):
            if left_pred[token] > 0 and left_ref[token] > 0:
                hits += 1
                left_pred[token] -= 1
                left_ref[token] -= 1
    return _f1(hits, n_pred, n_ref)


# ---------------------------------------------------------------- BLEU and chrF


def bleu(predictions: Sequence[str], references: Sequence[Reference]) -> float:
    """Corpus BLEU (0..100) by sacrebleu; Chinese is tokenized per character ("zh")."""
    import sacrebleu

    if not predictions:
        return 0.0
    refs = _as_reference_lists(predictions, references)
    tokenize_as = "zh" if _any_cjk(predictions, refs) else "13a"
    return float(sacrebleu.corpus_bleu(list(predictions), _streams(refs), tokenize=tokenize_as).score)


def chrf(predictions: Sequence[str], references: Sequence[Reference]) -> float:
    """Corpus chrF (0..100) by sacrebleu (characters, so it needs no tokenizer)."""
    import sacrebleu

    if not predictions:
        return 0.0
    refs = _as_reference_lists(predictions, references)
    return float(sacrebleu.corpus_chrf(list(predictions), _streams(refs)).score)


def _streams(refs: list[tuple[str, ...]]) -> list[list[str | None]]:
    # sacrebleu wants one stream per reference slot; None marks a missing reference.
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def _any_cjk(predictions: Sequence[str], refs: list[tuple[str, ...]]) -> bool:
    return any(_HAS_CJK.search(t) for t in predictions) or any(_HAS_CJK.search(t) for r in refs for t in r)


# ---------------------------------------------------------------- answers and accuracy

# "So the answer is X", "The final answer is X", "Answer: X".
_MARKER = re.compile(r"\banswer\s*(?:is\b|:)", re.IGNORECASE)
_EDGE = " \t\n.。!！?？*\"'`:：,，"


def normalize_answer(text: str) -> str:
    """Case-folded, spaces collapsed, surrounding punctuation (not brackets) removed."""
    return " ".join(text.casefold().split()).strip(_EDGE)


def extract_answer(text: str, labels: Sequence[str] | None = ("yes", "no")) -> str | None:
    """The label a generation answers with, or None.

    The last "the answer is X" / "Answer: X" that names a label wins (chain of thought comes
    first); otherwise the first label found as a whole word. A label "(B)" is also accepted as a
    bare "B" right after such a marker. `labels=None` returns the free text after the last
    marker (or the whole text), normalized.
    """
    markers = list(_MARKER.finditer(text))
    if labels is None:
        answer = normalize_answer(_segment_after(text, markers[-1].end()) if markers else text)
        return answer or None
    anywhere, after_marker = _label_patterns(tuple(labels))
    for marker in reversed(markers):
        found = _first_label(_segment_after(text, marker.end()), anywhere + after_marker)
        if found is not None:
            return found
    return _first_label(text, anywhere)


def accuracy_per_example(
    predictions: Sequence[str], references: Sequence[Reference], labels: Sequence[str] | None = None
) -> list[bool]:
    """Whether each extracted answer equals (normalized) one of the accepted answers.

    Without `labels`, the distinct reference answers are the labels, unless there are more
    than 32 of them: then answers are free text, compared after normalization.
    """
    refs = _as_reference_lists(predictions, references)
    if labels is None:
        labels = _labels_from(refs)
    out = []
    for prediction, answers in zip(predictions, refs):
        answer = extract_answer(prediction, labels)
        out.append(answer is not None and normalize_answer(answer) in {normalize_answer(a) for a in answers})
    return out


def accuracy(
    predictions: Sequence[str], references: Sequence[Reference], labels: Sequence[str] | None = None
) -> float:
    """Share (0..1) of predictions whose extracted answer is accepted."""
    per = accuracy_per_example(predictions, references, labels)
    return sum(per) / len(per) if per else 0.0


def _segment_after(text: str, end: int) -> str:
    """The answer's own line: what follows a marker, up to the end of its line."""
    return text[end:].lstrip(" \t\n:：*").split("\n", 1)[0]


@lru_cache(maxsize=64)
def _label_patterns(labels: tuple[str, ...]) -> tuple[list, list]:
    anywhere, after_marker = [], []
    for label in labels:
        # Lookarounds, not \b, so labels such as "(A)" work and "plausible" skips "implausible".
        anywhere.append((label, re.compile(rf"(?<!\w){re.escape(label)}(?!\w)", re.IGNORECASE)))
        bare = re.fullmatch(r"\((\w+)\)", label.strip())
        if bare:
            # Case-sensitive so that "the answer is a dog" is not "(A)".
            after_marker.append((label, re.compile(rf"(?<!\w){re.escape(bare.group(1))}(?!\w)")))
    return anywhere, after_marker


def _first_label(text: str, patterns: list) -> str | None:
    best = None
    for label, pattern in patterns:
        m = pattern.search(text)
        # Earliest match wins; at the same place the longer label ("yes sir" over "yes").
        if m and (best is None or (m.start(), -len(m.group())) < best[0]):
            best = ((m.start(), -len(m.group())), label)
    return best[1] if best else None


def _labels_from(refs: list[tuple[str, ...]]) -> list[str] | None:
    labels: dict[str, str] = {}
    for answers in refs:
        for answer in answers:
            labels.setdefault(normalize_answer(answer), answer.strip())
    labels.pop("", None)
    return list(labels.values()) if len(labels) <= _MAX_DERIVED_LABELS else None


# ---------------------------------------------------------------- diversity


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / all n-grams over all texts (n-grams never span two texts)."""
    if n < 1:
        raise PlaygroundError(f"distinct-n needs n >= 1 (got {n}).")
    grams = [g for text in texts for g in _ngrams(tokenize(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


# ---------------------------------------------------------------- shared


def _as_reference_lists(predictions: Sequence[str], references: Sequence[Reference]) -> list[tuple[str, ...]]:
    if len(predictions) != len(references):
        raise PlaygroundError(
            f"There are {len(predictions)} predictions but {len(references)} references; "
            "they must pair up one to one."
        )
    refs = [(r,) if isinstance(r, str) else tuple(r) for r in references]
    return [r if r else ("",) for r in refs]


def _rouge_metric(key: str) -> Callable[[Sequence[str], Sequence[Reference]], float]:
    def metric(predictions: Sequence[str], references: Sequence[Reference]) -> float:
        return rouge(predictions, references)[key]

    metric.__name__ = key
    metric.__doc__ = f"Mean {key} F1 (0..1)."
    return metric


def _mean_perplexity(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], **kwargs: Any) -> float:
    """Mean per-example perplexity of (prompt, reference) pairs (the homework number)."""
    from playground.evaluation.perplexity import perplexity

    return perplexity(model, tokenizer, pairs, **kwargs).mean_perplexity


METRICS: dict[str, tuple[Callable[..., float], bool]] = {
    "perplexity": (_mean_perplexity, False),
    **{key: (_rouge_metric(key), True) for key in ROUGE_KEYS},
    "bleu": (bleu, True),
    "chrf": (chrf, True),
    "accuracy": (accuracy, True),
}
