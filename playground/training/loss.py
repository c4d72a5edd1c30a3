"""The training loss: summed cross-entropy over the trained (label != -100) tokens of a batch.

Only positions that predict a trained token go through the LM head and the softmax: with the
prompt masked that skips a large share of the biggest tensors of the step (batch x length x
vocabulary), in time and in memory, and gives the same sum.

Encoder-decoder models: labels are the decoder's targets, position for position (no shift);
the decoder input is the labels shifted right, as the model itself builds it.
"""

from __future__ import annotations

from typing import Any

from playground.models.unwrap import base_model, takes_logits_to_keep

IGNORE = -100


def is_seq2seq(model: Any) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def count_trained(batch: dict[str, Any], seq2seq: bool) -> int:
    """Trained tokens that the forward pass predicts (a causal model never predicts position 0)."""
    labels = batch["labels"] if seq2seq else batch["labels"][:, 1:]
    return int((labels != IGNORE).sum())


def token_loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """(summed cross-entropy over trained tokens, number of trained tokens) for one padded or packed batch."""
    import torch
    import torch.nn.functional as F

    if is_seq2seq(model):
        return _seq2seq_loss_sum(model, batch)
    device = next(model.parameters()).device
    labels = batch["labels"]
    # targets[:, t] is the token that position t predicts; the last position predicts nothing.
    targets = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], IGNORE)], dim=1)
    trained = targets != IGNORE
    n_trained = int(trained.sum())
    kwargs: dict[str, Any] = {}
    if "position_ids" in batch:
        # A packed row (packing.py): no mask, so that transformers builds the block-diagonal one.
        kwargs["position_ids"] = batch["position_ids"].to(device)
    else:
        kwargs["attention_mask"] = batch["attention_mask"].to(device)
    if n_trained and takes_logits_to_keep(model):
        if "position_ids" in batch and labels.shape[0] == 1:
            # Trained positions lie scattered along a packed row: keep exactly those.
            keep = trained[0].nonzero().squeeze(1)
            kwargs["logits_to_keep"] = keep.to(device)
            targets, trained = targets[:, keep], trained[:, keep]
        else:
            # Keep the tail from the first position that predicts a trained token in any row.
            first = int(trained.any(dim=0).nonzero()[0])
            kwargs["logits_to_keep"] = targets.shape[1] - first
            targets, trained = targets[:, first:], trained[:, first:]
    # Every copy to the device before the forward is queued: a copy from pageable memory waits for
    # the GPU to drain, and after the forward that would stall the host until the forward is done.
    everything = bool(trained.all())  # a packed row's kept positions: no mask to apply (and no sync)
    trained, targets = trained.to(device), targets.to(device)
    logits = model(input_ids=batch["input_ids"].to(device), use_cache=False, **kwargs).logits
    if everything:
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="sum")
    else:
        loss = F.cross_entropy(logits[trained].float(), targets[trained], reduction="sum")
    return loss, n_trained


def _seq2seq_loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    import torch.nn.functional as F

    device = next(model.parameters()).device
    labels = batch["labels"].to(device)
    inner = base_model(model)
    # Passing labels makes the model compute a mean loss of its own too; its decoder input is enough.
    if hasattr(inner, "prepare_decoder_input_ids_from_labels"):
        decoder = {"decoder_input_ids": inner.prepare_decoder_input_ids_from_labels(labels=labels)}
    else:
        decoder = {"labels": labels}
    logits = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        use_cache=False,
        **decoder,
    ).logits
    trained = labels != IGNORE
    loss = F.cross_entropy(logits[trained].float(), labels[trained], reduction="sum")
    return loss, int(trained.sum())
