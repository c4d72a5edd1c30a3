"""Held-out metrics during training: loss with the training labels, and the homework perplexity."""

from __future__ import annotations

import math
from typing import Any

from playground.training.formatting import FormattedExample, pad_batch
from playground.training.loss import token_loss_sum


def evaluate(
    model: Any,
    tokenizer: Any,
    formatted: list[FormattedExample],
    pairs: list[tuple[str, str]],
    batch_size: int,
    max_length: int,
    pad_id: int,
) -> dict[str, float]:
    """eval_loss (token mean, same labels as training) and eval_perplexity (homework mean)."""
    import torch

    from playground.evaluation.perplexity import perplexity

    was_training = model.training
    model.eval()
    try:
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(formatted), batch_size):
                loss, n = token_loss_sum(model, pad_batch(formatted[start : start + batch_size], pad_id))
                total += float(loss)
                count += n
        result = perplexity(model, tokenizer, pairs, batch_size=batch_size, max_length=max_length)
    finally:
        model.train(was_training)
    eval_loss = total / max(count, 1)
    return {
        "eval_loss": eval_loss,
        "eval_perplexity": result.mean_perplexity,
        "eval_corpus_perplexity": result.corpus_perplexity,
        "eval_token_perplexity": math.exp(min(eval_loss, 50.0)),
    }
