"""Routing a model's decoder layers through the fused layer, and what was installed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from playground.training.fused.attention import AttentionPlans
from playground.training.fused.layer import FusedLayer
from playground.training.fused.parts import (
    PROJECTIONS,
    SUPPORTED_TYPES,
    FlatWeights,
    Keep,
    LayerParts,
    decoder_layers,
    layer_parts,
)


def unsupported_reason(model: Any, max_length: int) -> str | None:
    """Why the fused path cannot train this model (None: it can)."""
    inner, layers = decoder_layers(model)
    config = inner.config
    if config.model_type not in SUPPORTED_TYPES:
        return f"model type {config.model_type} (fused layers cover {', '.join(SUPPORTED_TYPES)})"
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "attention_dropout", 0.0):
        return "activation other than SiLU, or attention dropout"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "linear layers with biases"
    window = getattr(config, "sliding_window", None)
    if window is not None and window < max_length:
        return f"sliding-window attention ({window} tokens) shorter than max_length"
    if getattr(config, "_attn_implementation", "sdpa") not in ("sdpa", "eager"):
        return f"attention implementation {config._attn_implementation}"
    if not layers:
        return "no decoder layers found"
    if any(layer_parts(layer, config) is None for layer in layers):
        return "a layer the fused path does not know (8-bit weights, DoRA, biases or several adapters)"
    return None


@dataclass(eq=False)
class FusedForward:
    """A decoder layer's forward once `install` routed it: training steps go through the fused
    layer, everything else (evaluation, generation with a cache) through the layer's own forward."""

    layer: Any
    parts: LayerParts
    original: Any  # the layer's own forward
    plans: AttentionPlans  # shared by all layers of the model: one plan per forward pass
    keep: Keep

    def __call__(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if (
            not (torch.is_grad_enabled() and self.layer.training)
            or past_key_values is not None
            or position_embeddings is None
        ):
            return self.original(
                hidden_states,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past_key_values,
                use_cache=use_cache,
                position_embeddings=position_embeddings,
                **kwargs,
            )
        parts = self.parts
        cos, sin = position_embeddings
        plan = self.plans.plan(hidden_states, attention_mask, position_ids, parts.head_dim)
        # Dropout masks come from a generator seeded here, so the backward's recompute draws the same ones.
        seed = int(torch.randint(0, 2**62, (1,))) if parts.dropout else 0
        return FusedLayer.apply(parts, plan, seed, self.keep, hidden_states, cos, sin, *parts.params())


def _installed_forward(layer: Any) -> FusedForward | None:
    forward = layer.__dict__.get("forward")
    return forward if isinstance(forward, FusedForward) else None


def install(model: Any, kept_layers: int = 0, kept_weights: int = 0) -> int:
    """Route each decoder layer's training forward through the fused layer. Returns how many.

    The last `kept_layers` layers keep their activations from the forward instead of recomputing
    them in the backward; the last `kept_weights` of those also keep their dequantized weights.
    Layers keep their own forward for evaluation and generation (no grad or eval mode).
    Installing again replaces what an earlier install set."""
    inner, layers = decoder_layers(model)
    plans = AttentionPlans()
    for i, layer in enumerate(layers):
        parts = layer_parts(layer, inner.config)
        projections = [parts.proj[name] for name in PROJECTIONS]
        if FlatWeights.fits(projections):
            flat = getattr(layer, "_fused_flat_weights", None) or FlatWeights(projections)
            parts.flat = layer._fused_flat_weights = flat
        earlier = _installed_forward(layer)
        original = earlier.original if earlier is not None else layer.forward
        # The fused layer is its own checkpoint: autograd's would wrap (and re-run) it again.
        layer.gradient_checkpointing = False
        from_end = len(layers) - i
        if from_end <= min(kept_weights, kept_layers):
            keep = Keep.WEIGHTS
        else:
            keep = Keep.ACTIVATIONS if from_end <= kept_layers else Keep.INPUT
        layer.forward = FusedForward(layer, parts, original, plans, keep)
    return len(layers)


def installed(model: Any) -> bool:
    """Whether `install` routed this model's layers through the fused layer."""
    return any(_installed_forward(layer) is not None for layer in decoder_layers(model)[1])


def kept_layers(model: Any) -> tuple[int, int]:
    """How many fused layers keep their activations, and how many their weights too (see `install`)."""
    kept = [f.keep for f in map(_installed_forward, decoder_layers(model)[1]) if f is not None]
    return sum(k >= Keep.ACTIVATIONS for k in kept), sum(k >= Keep.WEIGHTS for k in kept)
