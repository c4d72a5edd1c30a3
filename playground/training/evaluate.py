"""Held-out metrics during training: loss with the training labels, and the homework perplexity."""

from __future__ import annotations

import math
from typing import Any

from playground.training.formatting import FormattedExample, pad_batch


def token_loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """(summed cross-entropy over trained tokens, number of trained tokens) for one padded batch."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    ids = batch["input_ids"].to(device)
    labels = batch["labels"]
    # Shift the labels, not the logits: slicing the logits would copy the largest tensor of the step.
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1).to(device)
    logits = model(input_ids=ids, attention_mask=batch["attention_mask"].to(device), use_cache=False).logits
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss, int((targets != -100).sum())


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
