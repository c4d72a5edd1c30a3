"""A decoder layer as the fused path sees it: its projections (frozen weight + LoRA pair), its norms and
shapes, and its 4-bit weights in one buffer (FlatWeights)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import torch

from playground.models.unwrap import base_model

SUPPORTED_TYPES = ("llama", "mistral")
PROJECTIONS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass
class Projection:
    """One linear layer of a decoder layer: its frozen weight and, if it has one, its LoRA pair."""

    base: Any
    lora_a: torch.nn.Parameter | None = None  # [r, in]
    lora_b: torch.nn.Parameter | None = None  # [out, r]
    scale: float = 0.0
    dropout: float = 0.0

    @property
    def quant_state(self) -> Any:
        """bitsandbytes' state of a 4-bit weight (None: a float weight)."""
        return getattr(self.base.weight, "quant_state", None)

    def weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The frozen weight [out, in] in `dtype`, dequantized if it is 4-bit."""
        if self.quant_state is not None:
            from bitsandbytes.functional import dequantize_4bit

            return dequantize_4bit(self.base.weight.data, self.quant_state).to(dtype)
        return self.base.weight.to(dtype)


def projection_of(module: Any) -> Projection | None:
    """The Projection for a (LoRA-wrapped) linear layer, or None if the fused path cannot run it."""
    wrapped = hasattr(module, "lora_A") and hasattr(module, "base_layer")
    base = module.base_layer if wrapped else module
    if not isinstance(base, torch.nn.Linear) or base.bias is not None:
        return None
    if getattr(base.weight, "quant_state", None) is None and not base.weight.is_floating_point():
        return None  # 8-bit or another quantized format
    if not wrapped:
        return Projection(base)
    if module.disable_adapters or module.merged:
        return None
    active = [name for name in module.active_adapters if name in module.lora_A]
    if len(active) != 1:
        return None
    name = active[0]
    if name in getattr(module, "lora_variant", {}) or module.lora_B[name].bias is not None:
        return None  # DoRA and other variants, LoRA biases
    dropout = module.lora_dropout[name]
    return Projection(
        base,
        lora_a=module.lora_A[name].weight,
        lora_b=module.lora_B[name].weight,
        scale=float(module.scaling[name]),
        dropout=float(dropout.p) if isinstance(dropout, torch.nn.Dropout) else 0.0,
    )


class Keep(IntEnum):
    """What a fused layer keeps from its forward for its backward (ordered: each keeps more)."""

    INPUT = 0  # its input only, as checkpointing does: the backward recomputes the layer
    ACTIVATIONS = 1  # what the backward reads, so the recompute is skipped
    WEIGHTS = 2  # that, and its dequantized weights: one dequantization per step


# The layer's products, in PROJECTIONS order. q, k and v read the same input and run as one product
# over their stacked weights. gate and up do too, but run as two: SiLU's kernels on a strided half
# of a [gate | up] product were not vectorized, at half the speed.
QKV, OUT, GATE, UP, DOWN = ("q", "k", "v"), ("o",), ("gate",), ("up",), ("down",)
STACKS = (QKV, OUT, GATE, UP, DOWN)


class FlatWeights:
    """A layer's 4-bit weights in one buffer, so that one kernel call dequantizes all seven.

    Dequantizing weight by weight costs three kernels each (a nested 4-bit state first restores
    its absmax) and a few dozen microseconds of host time per call, which at a QLoRA step's sizes
    is more than the GPU spends on it. Blocks of 4-bit weights are independent, so dequantizing
    the concatenation is the concatenation of the dequantized weights. The layer's own Params4bit
    are re-pointed at views of the one buffer (the 4-bit data is not held twice); the absmax is
    held restored, in fp32 (4 bytes per 64 weights: 0.4 GB for a 7B model)."""

    def __init__(self, projections: list[Projection]) -> None:
        states = [p.quant_state for p in projections]
        first = states[0]
        self.blocksize, self.quant_type = first.blocksize, first.quant_type
        self.numel = sum(s.shape.numel() for s in states)
        self.packed = torch.cat([p.base.weight.data.reshape(-1) for p in projections])
        self.absmax = torch.cat([_restored_absmax(s) for s in states])
        offset = 0
        for p in projections:
            n = p.base.weight.data.numel()
            p.base.weight.data = self.packed[offset : offset + n].view(p.base.weight.data.shape)
            offset += n

    @staticmethod
    def fits(projections: list[Projection]) -> bool:
        states = [p.quant_state for p in projections]
        if any(s is None for s in states) or states[0].quant_type not in ("nf4", "fp4"):
            return False
        same = {(s.blocksize, s.quant_type, p.base.weight.device) for s, p in zip(states, projections)}
        return len(same) == 1 and all(s.shape.numel() % s.blocksize == 0 for s in states)

    def dequantize(self, dtype: torch.dtype, out: torch.Tensor | None = None) -> torch.Tensor:
        """All of the layer's weights, flat, in PROJECTIONS order."""
        out = torch.empty(self.numel, dtype=dtype, device=self.packed.device) if out is None else out
        torch.ops.bitsandbytes.dequantize_4bit.out(
            self.packed, self.absmax, self.blocksize, self.quant_type, [self.numel], dtype, out=out
        )
        return out


def _restored_absmax(state: Any) -> torch.Tensor:
    if not state.nested:
        return state.absmax.float()
    from bitsandbytes.functional import dequantize_blockwise

    return (dequantize_blockwise(state.absmax, state.state2) + state.offset).float()


@dataclass
class LayerParts:
    """What the fused forward and backward read from one decoder layer."""

    proj: dict[str, Projection]
    norm1: torch.Tensor
    eps1: float
    norm2: torch.Tensor
    eps2: float
    heads: int
    kv_heads: int
    head_dim: int
    scaling: float
    flat: FlatWeights | None = None  # set by install() when all seven weights are 4-bit alike

    def weights(self, dtype: torch.dtype, keep: bool = False) -> dict[tuple[str, ...], torch.Tensor]:
        """Each stack's frozen weights [outputs, in], all from one dequantization when the layer
        has flat 4-bit weights; otherwise each stack is made when asked for (and with `keep`,
        held for when it is asked for again)."""
        if self.flat is None:
            return LazyWeights(self, dtype, keep)
        flat, out, offset = self.flat.dequantize(dtype), {}, 0
        for names in STACKS:
            rows = sum(self.proj[n].base.out_features for n in names)
            cols = self.proj[names[0]].base.in_features
            out[names] = flat[offset : offset + rows * cols].view(rows, cols)
            offset += rows * cols
        return out

    def params(self) -> list[torch.nn.Parameter]:
        """The LoRA weights, in the order the backward returns their gradients."""
        out = []
        for name in PROJECTIONS:
            p = self.proj[name]
            if p.lora_a is not None:
                out.extend([p.lora_a, p.lora_b])
        return out

    @property
    def dropout(self) -> bool:
        return any(p.dropout > 0 for p in self.proj.values())


def layer_parts(layer: Any, config: Any) -> LayerParts | None:
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    if attn is None or mlp is None:
        return None
    modules = {
        "q": getattr(attn, "q_proj", None),
        "k": getattr(attn, "k_proj", None),
        "v": getattr(attn, "v_proj", None),
        "o": getattr(attn, "o_proj", None),
        "gate": getattr(mlp, "gate_proj", None),
        "up": getattr(mlp, "up_proj", None),
        "down": getattr(mlp, "down_proj", None),
    }
    proj = {name: projection_of(m) if m is not None else None for name, m in modules.items()}
    norms = (getattr(layer, "input_layernorm", None), getattr(layer, "post_attention_layernorm", None))
    if any(p is None for p in proj.values()) or any(not hasattr(n, "variance_epsilon") for n in norms):
        return None
    return LayerParts(
        proj=proj,
        norm1=norms[0].weight,
        eps1=float(norms[0].variance_epsilon),
        norm2=norms[1].weight,
        eps2=float(norms[1].variance_epsilon),
        heads=int(config.num_attention_heads),
        kv_heads=int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads),
        head_dim=int(attn.head_dim),
        scaling=float(attn.scaling),
    )


def decoder_layers(model: Any) -> tuple[Any, list[Any]]:
    """The transformers model inside a peft wrapper, and its decoder layers ([] if it has none)."""
    inner = base_model(model)
    return inner, list(getattr(getattr(inner, "model", None), "layers", None) or [])


def stack_slices(parts: LayerParts, names: tuple[str, ...]) -> list[tuple[str, Projection, slice]]:
    """Each projection of a stack with the columns of the stacked output that are its own."""
    out, row = [], 0
    for name in names:
        p = parts.proj[name]
        out.append((name, p, slice(row, row + p.base.out_features)))
        row += p.base.out_features
    return out


class LazyWeights(dict):
    """Stacked weights made on first use (float weights, or 4-bit ones that are not alike)."""

    def __init__(self, parts: LayerParts, dtype: torch.dtype, keep: bool) -> None:
        super().__init__()
        self.parts, self.dtype, self.keep = parts, dtype, keep

    def __missing__(self, names: tuple[str, ...]) -> torch.Tensor:
        weight = stacked_weight(self.parts, names, self.dtype)
        if self.keep:
            self[names] = weight
        return weight


def stacked_weight(parts: LayerParts, names: tuple[str, ...], dtype: torch.dtype) -> torch.Tensor:
    """The frozen weights of `names` as one [outputs, in] matrix."""
    projs = [parts.proj[name] for name in names]
    return projs[0].weight(dtype) if len(projs) == 1 else torch.cat([p.weight(dtype) for p in projs])
