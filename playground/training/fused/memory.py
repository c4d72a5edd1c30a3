"""How much GPU memory a layer that keeps its activations (and weights) holds, and how many fit."""

from __future__ import annotations

from typing import Any

import torch

from playground.training.fused.lora_pairs import uses_bf16_pairs
from playground.training.fused.parts import PROJECTIONS, FlatWeights, LayerParts, decoder_layers, layer_parts


def _first_layer(model: Any) -> tuple[LayerParts, int]:
    """The first decoder layer's parts (all layers have the same shape) and its bytes per element."""
    inner, layers = decoder_layers(model)
    parts = layer_parts(layers[0], inner.config)
    return parts, torch.finfo(parts.norm1.dtype).bits // 8


def kept_bytes_per_token(model: Any) -> int:
    """GPU memory that one decoder layer keeping its activations holds per token of a micro-batch
    (an upper bound): norm statistics, LoRA inputs (and dropout masks), q/k/v and the attention output in
    attention's layout, the residual after attention and the gate and up products."""
    parts, size = _first_layer(model)
    hidden, inter = parts.proj["q"].base.in_features, parts.proj["gate"].base.out_features
    total = 2 * 4 + 4 * parts.heads * parts.head_dim * size + hidden * size + 2 * inter * size
    for p in parts.proj.values():
        if p.lora_a is None:
            continue
        r = p.lora_a.shape[0]
        if uses_bf16_pairs(parts.norm1, p):  # bf16 input, x @ A^T as three bf16 blocks
            total += p.base.in_features * (2 + (p.dropout > 0)) + 3 * r * 2
        else:  # fp32 input and x @ A^T
            total += p.base.in_features * (4 + (p.dropout > 0)) + r * 4
    return total


def kept_weight_bytes(model: Any) -> int:
    """GPU memory that one layer keeping its dequantized weights holds (0: they are not 4-bit weights
    of one kind, which are what the budget plans for)."""
    parts, size = _first_layer(model)
    if not FlatWeights.fits([parts.proj[name] for name in PROJECTIONS]):
        return 0
    return sum(p.base.in_features * p.base.out_features * size for p in parts.proj.values())


def kept_layers_for(model: Any, budget_bytes: float, tokens: int) -> tuple[int, int]:
    """How many layers can keep their activations for micro-batches of up to `tokens` tokens in
    `budget_bytes` of memory, and how many of those their dequantized weights as well (activations
    first: per byte they save far more time)."""
    layers = decoder_layers(model)[1]
    if budget_bytes <= 0 or tokens <= 0 or not layers:
        return 0, 0
    activations = kept_bytes_per_token(model) * tokens
    kept = min(len(layers), int(budget_bytes // activations))
    weights = kept_weight_bytes(model)
    if kept < len(layers) or not weights:
        return kept, 0
    return kept, min(kept, int((budget_bytes - kept * activations) // weights))
