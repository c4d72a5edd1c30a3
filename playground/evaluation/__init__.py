"""Scoring model outputs: text metrics and perplexity of reference answers."""

from playground.evaluation.metrics import (
    METRICS,
    ROUGE_KEYS,
    accuracy,
    accuracy_per_example,
    bleu,
    chrf,
    distinct_n,
    extract_answer,
    lcs_length,
    normalize_answer,
    rouge,
    rouge_per_example,
    tokenize,
)
from playground.evaluation.perplexity import (
    PerplexityResult,
    ScoredExample,
    looped_perplexity,
    perplexity,
)

__all__ = [
    "METRICS",
    "ROUGE_KEYS",
    "PerplexityResult",
    "ScoredExample",
    "accuracy",
    "accuracy_per_example",
    "bleu",
    "chrf",
    "distinct_n",
    "extract_answer",
    "lcs_length",
    "looped_perplexity",
    "normalize_answer",
    "perplexity",
    "rouge",
    "rouge_per_example",
    "tokenize",
]
