"""Decoder layers that checkpoint themselves and backpropagate by hand: the QLoRA fast path.

Gradient checkpointing through autograd re-runs a whole layer (dequantization, peft and
bitsandbytes Python code included) and then differentiates it op by op. With a frozen base and
LoRA adapters the backward needs much less, and this module does only that:
- a frozen weight needs no weight gradient, so a product's input is never needed to go back
  through it: down_proj's output is not recomputed (a fifth of a layer's arithmetic);
- a layer's 4-bit weights are dequantized by one kernel call (FlatWeights), once for the recompute
  and kept for the backward: two dequantizations per pass instead of three;
- q|k|v run as one product over their stacked weights (fewer kernel launches);
- a packed row attends example by example instead of through a dense block-diagonal mask over the
  whole row: on CUDA with varlen flash attention over the row as it lies, elsewhere with SDPA over
  [examples, longest, heads, dim];
- the chain rule of the norms, rotary embedding and SiLU gate is written out, a few kernels each
  (torch's fused RMSNorm on CUDA), with no autograd graph to build.
What a layer keeps between forward and backward is what checkpointing keeps, its input, unless
it is one of the layers told to keep their activations (`install(model, kept_layers)`, sized to
the GPU memory that is free by `kept_layers_for`): those save what the backward reads during the
forward and skip the recompute, a third of a layer step's arithmetic. With memory to spare, they
also keep their dequantized weights for the backward (`kept_weights`): one dequantization per step.

It applies to Llama-type layers (Llama, Mistral and the presets built on them: pre-norm RMSNorm,
rotary embedding, SiLU-gated MLP, no biases) under gradient checkpointing; anything else trains
through autograd as before (`unsupported_reason` says why). LoRA math runs in fp32, as peft runs it
(on a bf16 base as sums of bf16 tensor-core products that agree with fp32 ones to about 1e-5).

On an H100 a QLoRA step of a 7B model was bound by the host launching kernels as much as by the
GPU, so fewer ops per layer is what counted here; with kept activations the GPU is now busy for
about nine tenths of a step (bench/fused_layer.py, bench/RESULTS.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

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


# What a fused layer keeps from its forward for its backward, beyond its input.
KEEP_INPUT, KEEP_ACTIVATIONS, KEEP_WEIGHTS = 0, 1, 2

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
            return _LazyWeights(self, dtype, keep)
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


def _decoder(model: Any) -> tuple[Any, list[Any]]:
    """The transformers model inside a peft wrapper, and its decoder layers ([] if it has none)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner, list(getattr(getattr(inner, "model", None), "layers", None) or [])


def unsupported_reason(model: Any, max_length: int) -> str | None:
    """Why the fused path cannot train this model (None: it can)."""
    inner, layers = _decoder(model)
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


def install(model: Any, kept_layers: int = 0, kept_weights: int = 0) -> int:
    """Route each decoder layer's training forward through the fused layer. Returns how many.

    The last `kept_layers` layers keep their activations from the forward instead of recomputing
    them in the backward; the last `kept_weights` of those also keep their dequantized weights. Layers keep their own forward for evaluation and generation (no grad or
    eval mode). Installing again replaces what an earlier install set."""
    inner, layers = _decoder(model)
    plans = _AttentionPlans()
    for i, layer in enumerate(layers):
        parts = layer_parts(layer, inner.config)
        projections = [parts.proj[name] for name in PROJECTIONS]
        if FlatWeights.fits(projections):
            flat = getattr(layer, "_fused_flat_weights", None) or FlatWeights(projections)
            parts.flat = layer._fused_flat_weights = flat
        original = layer.__dict__.get("forward")
        if getattr(original, "func", None) is _forward:
            original = original.args[2]
        else:
            original = layer.forward
        # The fused layer is its own checkpoint: autograd's would wrap (and re-run) it again.
        layer.gradient_checkpointing = False
        from_end = len(layers) - i
        kept = KEEP_WEIGHTS if from_end <= min(kept_weights, kept_layers) else int(from_end <= kept_layers)
        layer.forward = functools.partial(_forward, layer, parts, original, plans, kept)
    return len(layers)


def _first_layer(model: Any) -> tuple[LayerParts, int]:
    """The first decoder layer's parts (all layers have the same shape) and its bytes per element."""
    inner, layers = _decoder(model)
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
        if _bf16_pairs(parts.norm1, p):  # bf16 input, x @ A^T as three bf16 blocks
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
    layers = _decoder(model)[1]
    if budget_bytes <= 0 or tokens <= 0 or not layers:
        return 0, 0
    activations = kept_bytes_per_token(model) * tokens
    kept = min(len(layers), int(budget_bytes // activations))
    weights = kept_weight_bytes(model)
    if kept < len(layers) or not weights:
        return kept, 0
    return kept, min(kept, int((budget_bytes - kept * activations) // weights))


def installed(model: Any) -> bool:
    """Whether `install` routed this model's layers through the fused layer."""
    return any(
        getattr(layer.__dict__.get("forward"), "func", None) is _forward for layer in _decoder(model)[1]
    )


def kept_layers(model: Any) -> tuple[int, int]:
    """How many fused layers keep their activations, and how many their weights too (see `install`)."""
    kept = [
        layer.__dict__["forward"].args[4]
        for layer in _decoder(model)[1]
        if getattr(layer.__dict__.get("forward"), "func", None) is _forward
    ]
    return sum(k >= KEEP_ACTIVATIONS for k in kept), sum(k >= KEEP_WEIGHTS for k in kept)


def _forward(
    layer: Any,
    parts: LayerParts,
    original: Any,
    plans: _AttentionPlans,
    kept: int,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    past_key_values: Any = None,
    use_cache: bool | None = False,
    position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    if (
        not (torch.is_grad_enabled() and layer.training)
        or past_key_values is not None
        or position_embeddings is None
    ):
        return original(
            hidden_states,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
    cos, sin = position_embeddings
    plan = plans.plan(hidden_states, attention_mask, position_ids, parts.head_dim)
    # Dropout masks come from a generator seeded here, so the backward's recompute draws the same ones.
    seed = int(torch.randint(0, 2**62, (1,))) if parts.dropout else 0
    return _FusedLayer.apply(parts, plan, seed, kept, hidden_states, cos, sin, *parts.params())


# -- attention -------------------------------------------------------------------------------


@dataclass
class _AttentionPlan:
    mask: torch.Tensor | None = None
    gather: torch.Tensor | None = None  # [examples, longest]: row positions, the last one repeated
    scatter: torch.Tensor | None = None  # [tokens]: where each row position sits in the gathered layout
    starts: torch.Tensor | None = None  # int32 [examples + 1]: where each example starts, then the end
    longest: int = 0

    @property
    def varlen(self) -> bool:
        """Flash attention over the packed row as it lies (CUDA): no gather, no scatter."""
        return self.starts is not None


def _varlen_flash(hidden: torch.Tensor, head_dim: int) -> bool:
    return (
        hidden.is_cuda
        and hidden.dtype in (torch.float16, torch.bfloat16)
        and head_dim <= 256
        and torch.cuda.get_device_capability(hidden.device) >= (8, 0)
    )


class _AttentionPlans:
    """One plan per forward pass: every layer gets the same position_ids tensor, so it is worked out once."""

    def __init__(self) -> None:
        self._key: tuple[Any, Any] = (None, None)
        self._plan = _AttentionPlan()

    def plan(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        head_dim: int = 0,
    ) -> _AttentionPlan:
        batch, tokens = hidden.shape[:2]
        if batch != 1 or position_ids is None:
            return _AttentionPlan(mask=mask)
        if self._key[0] is position_ids and self._key[1] is mask:
            return self._plan
        self._key, self._plan = (position_ids, mask), _AttentionPlan(mask=mask)
        starts = (position_ids[0] == 0).nonzero().squeeze(1).tolist()  # one host sync per forward pass
        if len(starts) < 2 or starts[0] != 0:
            return self._plan  # one sequence (or not a packed row): the mask as transformers built it
        ends = starts[1:] + [tokens]
        longest = max(e - s for s, e in zip(starts, ends))
        if _varlen_flash(hidden, head_dim):
            bounds = torch.tensor([*starts, tokens], dtype=torch.int32, device=hidden.device)
            self._plan = _AttentionPlan(starts=bounds, longest=longest)
            return self._plan
        gather = [[min(s + j, e - 1) for j in range(longest)] for s, e in zip(starts, ends)]
        scatter = [i * longest + j for i, (s, e) in enumerate(zip(starts, ends)) for j in range(e - s)]
        device = hidden.device
        self._plan = _AttentionPlan(
            gather=torch.tensor(gather, device=device), scatter=torch.tensor(scatter, device=device)
        )
        return self._plan


def _to_sdpa(t: torch.Tensor, parts: LayerParts, plan: _AttentionPlan) -> torch.Tensor:
    """[B, T, h, D] rows -> SDPA's [batch, H, length, D]: example by example for a packed row
    (padded by repeating each example's last token), key/value heads repeated for grouped queries."""
    if t.shape[2] != parts.heads:
        t = t.repeat_interleave(parts.heads // t.shape[2], dim=2)
    if plan.gather is not None:
        t = t[0][plan.gather]
    return t.transpose(1, 2)


def _from_sdpa(t: torch.Tensor, parts: LayerParts, plan: _AttentionPlan, heads: int) -> torch.Tensor:
    """The way back from _to_sdpa, also for gradients: a padded position never receives one (its
    outputs are not read, and causality hides its keys), so dropping those positions is exact;
    a key/value head's gradient is the sum over the query heads that shared it."""
    t = t.transpose(1, 2)
    if plan.gather is not None:
        n, longest, h, d = t.shape
        t = t.reshape(n * longest, h, d)[plan.scatter].unsqueeze(0)
    if heads != parts.heads:
        b, n, h, d = t.shape
        t = t.view(b, n, heads, h // heads, d).sum(3)
    return t


def _grad_to_sdpa(grad: torch.Tensor, plan: _AttentionPlan) -> torch.Tensor:
    """The output gradient [B, T, H, D] in SDPA's layout (zero at padded positions)."""
    if plan.gather is not None:
        n, longest = plan.gather.shape
        full = grad.new_zeros(n * longest, *grad.shape[2:])
        full.index_copy_(0, plan.scatter, grad[0])
        grad = full.view(n, longest, *grad.shape[2:])
    return grad.transpose(1, 2)


def _sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, parts: LayerParts, plan: _AttentionPlan
) -> torch.Tensor:
    if plan.gather is not None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=parts.scaling)
    mask = plan.mask
    if mask is not None and mask.dim() == 4:
        mask = mask[:, :, :, : k.shape[2]]
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=mask is None and q.shape[2] > 1, scale=parts.scaling
    )


# -- the elementwise pieces and their chain rules -----------------------------------------------


def _fused_rms_norm(x: torch.Tensor, weight: torch.Tensor) -> bool:
    # torch's one-kernel RMSNorm on CUDA (fp32 inside, one rounding at the end; transformers rounds
    # twice). Its backward has no CPU kernel: CPU runs the ops written out below.
    return x.is_cuda and hasattr(torch.ops.aten, "_fused_rms_norm") and weight.dtype == x.dtype


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSNorm (fp32 statistics) and 1/rms."""
    if _fused_rms_norm(x, weight):
        return torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], weight, eps)
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (xf * rstd).to(x.dtype), rstd


def _rms_norm_backward(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor
) -> torch.Tensor:
    if _fused_rms_norm(x, weight):
        return torch.ops.aten._fused_rms_norm_backward(grad, x, [x.shape[-1]], rstd, weight, [True, False])[0]
    g = grad.float() * weight.float()
    normed = x.float() * rstd
    return (rstd * (g - normed * (g * normed).mean(-1, keepdim=True))).to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1], without materialising rotate_half."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


def _rope_backward(
    grad: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    # rotate_half is a signed permutation P with P^T = -P: d = g * cos + [g2 * sin2, -g1 * sin1].
    half = grad.shape[-1] // 2
    d = torch.mul(grad, cos) if out is None else torch.mul(grad, cos, out=out)
    d[..., :half].addcmul_(grad[..., half:], sin[..., half:])
    d[..., half:].addcmul_(grad[..., :half], sin[..., :half], value=-1)
    return d


def _silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def _silu_mul_backward(
    grad: torch.Tensor, gate: torch.Tensor, up: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # Autograd's own steps (and kernels) for silu(gate) * up, so the numbers are its numbers.
    d_gate = torch.mul(grad, up)
    torch.ops.aten.silu_backward.grad_input(d_gate, gate, grad_input=d_gate)
    return d_gate, F.silu(gate).mul_(grad)


class _Masks:
    """Dropout keep-masks (bool) drawn in a fixed order from one seed."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def draw(self, like: torch.Tensor, p: float) -> torch.Tensor:
        return torch.empty(like.shape, dtype=torch.bool, device=like.device).bernoulli_(
            1 - p, generator=self.generator
        )


@dataclass
class _LoraInput:
    # The input with dropped-out entries zeroed (not yet scaled by 1 / (1 - p)): fp32, or bf16 (pairs).
    x: torch.Tensor
    mask: torch.Tensor | None
    xa: torch.Tensor  # dropout(x) @ A^T times the LoRA scale: fp32, or bf16 [hi | lo | hi] (pairs)
    keep_scale: float = 1.0  # 1 / (1 - p): dropout's scale, applied to the small [tokens, r] side
    pairs: _LoraPairs | None = None


# -- LoRA on a bf16 base: fp32 products as bf16 pairs --------------------------------------------
#
# peft runs LoRA in fp32 on the bf16 base's activations, and cuBLAS has no fp32 tensor-core
# product: the fp32 LoRA products ran on CUDA cores, and each needed an fp32 copy of its bf16
# input. But a bf16 activation (even with dropout's zeros) is exactly a bf16 number, and an fp32
# number t is hi + lo to 2^-17 with hi = bf16(t), lo = bf16(t - hi). So each LoRA product becomes
# bf16 tensor-core products summed in fp32: [x] @ [A_hi; A_lo] with x exact, and for two fp32
# operands hi*hi + lo*hi + hi*lo as one product over K-stacked blocks (lo*lo is below 2^-16).
# The results agree with fp32 products to about 1e-5 (tests/test_fused_layers.py), far inside
# what the bf16 base itself rounds.


def _bf16_pairs(x: torch.Tensor, p: Projection) -> bool:
    """Whether the LoRA of `p` runs as bf16 pairs on an input like `x` (a bf16 base, fp32 LoRA)."""
    return x.dtype == torch.bfloat16 and p.lora_a.dtype == torch.float32


def _mm32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for bf16 matrices, summed and returned in fp32 (on CUDA without an fp32 copy of either)."""
    if a.is_cuda and "dtype" in torch.ops.aten.mm.overloads():  # torch >= 2.8
        return torch.mm(a, b, out_dtype=torch.float32)
    return a.float() @ b.float()


def _three_blocks(t: torch.Tensor, dim: int, lo_at: int) -> torch.Tensor:
    """fp32 `t` as three bf16 blocks side by side along `dim`: bf16(t) twice and the rest,
    bf16(t - bf16(t)), in block `lo_at` (two kernels)."""
    n = t.shape[dim]
    shape = list(t.shape)
    shape[dim] = 3 * n
    out = torch.empty(shape, dtype=torch.bfloat16, device=t.device)
    blocks = out.unflatten(dim, (3, n))
    index = [slice(None)] * blocks.dim()
    index[dim] = slice(0, 2) if lo_at == 2 else slice(0, 3, 2)
    blocks[tuple(index)].copy_(t.unsqueeze(dim))
    torch.sub(t, blocks.select(dim, 0 if lo_at else 1), out=blocks.select(dim, lo_at))
    return out


@dataclass
class _LoraPairs:
    a: torch.Tensor  # [3r, in]: scale * A as [hi; hi; lo]
    b: torch.Tensor  # [out, 3r]: B as [hi | hi | lo]

    @staticmethod
    def of(p: Projection, scale: float) -> _LoraPairs:
        return _LoraPairs(_three_blocks(p.lora_a * scale, 0, lo_at=2), _three_blocks(p.lora_b, 1, lo_at=2))


def _halves_sum(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The sum of t's two halves along `dim` (the hi and lo parts of a pair product), in place."""
    first, second = t.chunk(2, dim)
    return first.add_(second)


def _lora_pairs_forward(p: Projection, x: torch.Tensor, y: torch.Tensor, masks: _Masks | None) -> _LoraInput:
    """y += the LoRA of `p` on x (both [tokens, features], bf16), through bf16 pairs."""
    mask, keep_scale = None, 1.0
    if p.dropout > 0:
        mask, keep_scale = masks.draw(x, p.dropout), 1 / (1 - p.dropout)
        x = x * mask  # dropout's zeros: still exactly bf16
    r = p.lora_a.shape[0]
    pairs = _LoraPairs.of(p, p.scale * keep_scale)
    xa = _halves_sum(_mm32(x, pairs.a[r:].t()), 1)  # x @ (scale A)^T, [tokens, r] fp32
    xa = _three_blocks(xa, 1, lo_at=1)  # [hi | lo | hi]
    y.addmm_(xa, pairs.b.t())  # hi*hi + lo*hi + hi*lo, added to the bf16 product in fp32: one rounding
    return _LoraInput(x, mask, xa, keep_scale, pairs)


def _lora_pairs_backward(
    p: Projection, lora: _LoraInput, g: torch.Tensor, dx: torch.Tensor | None, grads: dict[int, torch.Tensor]
) -> None:
    """LoRA weight gradients into `grads`, and the LoRA's part of the input gradient into dx
    (all [tokens, features]; g is the bf16 output gradient, exact in bf16)."""
    r, pairs = p.lora_a.shape[0], lora.pairs
    grads[id(p.lora_b)] = _halves_sum(_mm32(g.t(), lora.xa[:, : 2 * r]), 1)
    d_xa = _halves_sum(_mm32(g, pairs.b[:, r:]), 1)  # g @ B, [tokens, r] fp32
    d_xa = _three_blocks(d_xa, 1, lo_at=1)
    grads[id(p.lora_a)] = _halves_sum(_mm32(d_xa[:, : 2 * r].t(), lora.x), 0).mul_(p.scale * lora.keep_scale)
    if dx is None:
        return
    if lora.mask is None:
        dx.addmm_(d_xa, pairs.a)
    else:
        dx.addcmul_(_mm32(d_xa, pairs.a), lora.mask)


def _slices(parts: LayerParts, names: tuple[str, ...]) -> list[tuple[str, Projection, slice]]:
    """Each projection of a stack with the columns of the stacked output that are its own."""
    out, row = [], 0
    for name in names:
        p = parts.proj[name]
        out.append((name, p, slice(row, row + p.base.out_features)))
        row += p.base.out_features
    return out


class _LazyWeights(dict):
    """Stacked weights made on first use (float weights, or 4-bit ones that are not alike)."""

    def __init__(self, parts: LayerParts, dtype: torch.dtype, keep: bool) -> None:
        super().__init__()
        self.parts, self.dtype, self.keep = parts, dtype, keep

    def __missing__(self, names: tuple[str, ...]) -> torch.Tensor:
        weight = _stacked_weight(self.parts, names, self.dtype)
        if self.keep:
            self[names] = weight
        return weight


def _stacked_weight(parts: LayerParts, names: tuple[str, ...], dtype: torch.dtype) -> torch.Tensor:
    """The frozen weights of `names` as one [outputs, in] matrix."""
    projs = [parts.proj[name] for name in names]
    return projs[0].weight(dtype) if len(projs) == 1 else torch.cat([p.weight(dtype) for p in projs])


def _project(
    parts: LayerParts,
    names: tuple[str, ...],
    x: torch.Tensor,
    weight: torch.Tensor,
    masks: _Masks | None,
    saved: dict[str, _LoraInput | None],
) -> torch.Tensor:
    """x through the stacked projections `names`, each LoRA added to its own slice of the output.

    Dropout's 1 / (1 - p) is applied to x @ A^T, a [tokens, r] tensor, rather than to x itself:
    the same product, one fewer pass over the widest fp32 tensor of the layer."""
    y = F.linear(x, weight)
    plain = None  # x in fp32, shared by the LoRAs of this stack that have no dropout
    for name, p, cols in _slices(parts, names):
        saved[name] = None
        if p.lora_a is None:
            continue
        if _bf16_pairs(x, p) and not torch.is_grad_enabled():  # out= is not differentiable
            rows = y.view(-1, y.shape[-1])[:, cols]
            saved[name] = _lora_pairs_forward(p, x.view(-1, x.shape[-1]), rows, masks)
            continue
        if p.dropout > 0:
            mask = masks.draw(x, p.dropout)
            if torch.is_grad_enabled():  # out= cannot be differentiated (the tests' reference runs)
                xf = x.float() * mask
            else:
                xf = torch.mul(x, mask, out=torch.empty(x.shape, dtype=torch.float32, device=x.device))
            keep_scale = 1 / (1 - p.dropout)
        else:
            mask, keep_scale = None, 1.0
            xf = plain = x.float() if plain is None else plain
        xa = F.linear(xf, p.lora_a) * (p.scale * keep_scale)
        y[..., cols] += F.linear(xa, p.lora_b)  # fp32 into the bf16 output: one rounding
        saved[name] = _LoraInput(xf, mask, xa, keep_scale)
    return y


def _project_backward(
    parts: LayerParts,
    names: tuple[str, ...],
    grad: torch.Tensor,
    weight: torch.Tensor,
    saved: dict[str, _LoraInput | None],
    grads: dict[int, torch.Tensor],
    input_grad: bool = True,
    into: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Gradient of the projections' input (added to `into` if given); LoRA weight gradients go to
    `grads` (keyed by id)."""
    if not input_grad:
        dx = None
    elif into is None:
        dx = grad @ weight
    else:
        dx = into
        dx.view(-1, dx.shape[-1]).addmm_(grad.reshape(-1, grad.shape[-1]), weight)
    for name, p, cols in _slices(parts, names):
        lora = saved.get(name)
        if lora is None:
            continue
        if lora.pairs is not None:
            rows = grad.reshape(-1, grad.shape[-1])[:, cols]
            _lora_pairs_backward(p, lora, rows, None if dx is None else dx.view(-1, dx.shape[-1]), grads)
            continue
        g = grad[..., cols].float().reshape(-1, p.base.out_features)
        grads[id(p.lora_b)] = g.t() @ lora.xa.reshape(-1, lora.xa.shape[-1])
        gb = (g @ p.lora_b) * (p.scale * lora.keep_scale)
        grads[id(p.lora_a)] = gb.t() @ lora.x.reshape(-1, lora.x.shape[-1])
        if input_grad:
            lora_dx = (gb @ p.lora_a).view(dx.shape)
            if lora.mask is not None:
                lora_dx.mul_(lora.mask)
            dx.add_(lora_dx)
    return dx


def _run(
    parts: LayerParts,
    plan: _AttentionPlan,
    seed: int,
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    keep: dict[str, Any] | None = None,
    output: bool = True,
    keep_weights: bool = False,
) -> torch.Tensor:
    """The layer's forward. With `keep`, it also records there what the backward needs (and the
    dequantized weights, if `keep_weights`). A recompute (output=False) always keeps the weights,
    and skips what only the layer's output needs."""
    dtype, (batch, tokens) = x.dtype, x.shape[:2]
    heads, kv_heads, dim = parts.heads, parts.kv_heads, parts.head_dim
    masks = _Masks(seed, x.device) if parts.dropout else None
    # A recompute keeps its weights for the backward; otherwise each is freed after its product.
    keep_weights = keep is not None and (keep_weights or not output)
    weights = parts.weights(dtype, keep=keep_weights)
    saved: dict[str, _LoraInput | None] = {}

    def project(names: tuple[str, ...], inp: torch.Tensor) -> torch.Tensor:
        return _project(parts, names, inp, weights[names], masks, saved)

    n1, rstd1 = _rms_norm(x, parts.norm1, parts.eps1)
    qkv = project(QKV, n1)
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    qk = _rope(qkv[..., : (heads + kv_heads) * dim].view(batch, tokens, heads + kv_heads, dim), cos, sin)
    v = qkv[..., (heads + kv_heads) * dim :].view(batch, tokens, kv_heads, dim)
    if plan.varlen:
        # A copy of v, so that a layer keeping its activations does not keep all of q|k|v as well.
        q, k, v = qk[0, :, :heads], qk[0, :, heads:], v[0].contiguous()
        attn, lse, rng, unused, _ = torch.ops.aten._flash_attention_forward(
            q,
            k,
            v,
            plan.starts,
            plan.starts,
            plan.longest,
            plan.longest,
            0.0,
            True,
            False,
            scale=parts.scaling,
        )
        if keep is not None:
            keep.update(flash=(q, k, v, attn, lse, rng, unused))
    elif keep is None:
        q, k, v = (_to_sdpa(t, parts, plan) for t in (qk[:, :, :heads], qk[:, :, heads:], v))
        attn = _from_sdpa(_sdpa(q, k, v, parts, plan), parts, plan, heads)
    else:
        q, k, v = (_to_sdpa(t, parts, plan) for t in (qk[:, :, :heads], qk[:, :, heads:], v))
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (q, k, v)]
            attn = _sdpa(*leaves, parts, plan)
        keep.update(attn=attn, leaves=leaves)
        attn = _from_sdpa(attn.detach(), parts, plan, heads)
    attn = attn.reshape(batch, tokens, -1)
    h = x + project(OUT, attn)
    n2, rstd2 = _rms_norm(h, parts.norm2, parts.eps2)
    gate, up = project(GATE, n2), project(UP, n2)
    act = _silu_mul(gate, up)
    if keep is not None:
        keep.update(
            weights=weights if keep_weights else None,
            saved=saved,
            rstd1=rstd1,
            h=h,
            rstd2=rstd2,
            gate=gate,
            up=up,
            cos=cos,
            sin=sin,
        )
        if not output and parts.proj["down"].lora_a is None:
            return x  # nothing in the backward needs down_proj's output: skip it and its dequantization
    return h + project(DOWN, act)


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        parts: LayerParts,
        plan: _AttentionPlan,
        seed: int,
        kept: int,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *params: torch.Tensor,
    ) -> torch.Tensor:
        ctx.parts, ctx.plan, ctx.seed, ctx.keep = parts, plan, seed, None
        ctx.save_for_backward(x, cos, sin)
        with torch.no_grad():
            if kept == KEEP_INPUT:
                return _run(parts, plan, seed, x, cos, sin)
            ctx.keep = {}
            return _run(parts, plan, seed, x, cos, sin, keep=ctx.keep, keep_weights=kept >= KEEP_WEIGHTS)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        parts: LayerParts = ctx.parts
        x, cos, sin = ctx.saved_tensors
        keep, ctx.keep = ctx.keep, None  # let go of the activations as the backward uses them up
        if keep is None:
            keep = {}
            _run(parts, ctx.plan, ctx.seed, x, cos, sin, keep=keep, output=False)
        w, saved = keep["weights"] or parts.weights(x.dtype), keep["saved"]
        grads: dict[int, torch.Tensor] = {}

        def weight(names: tuple[str, ...]) -> torch.Tensor:
            return w.pop(names) if names in w else w[names]  # let go of each stack after use

        # MLP: out = h + down(silu(gate) * up)
        d_act = _project_backward(parts, DOWN, grad_out, weight(DOWN), saved, grads)
        d_gate, d_up = _silu_mul_backward(d_act, keep["gate"], keep["up"])
        del d_act
        d_n2 = _project_backward(parts, GATE, d_gate, weight(GATE), saved, grads)
        _project_backward(parts, UP, d_up, weight(UP), saved, grads, into=d_n2)
        del d_gate, d_up
        d_h = grad_out + _rms_norm_backward(d_n2, keep["h"], parts.norm2, keep["rstd2"])
        del d_n2

        # Attention: h = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1)))
        batch, tokens = x.shape[:2]
        plan = ctx.plan
        d_attn = _project_backward(parts, OUT, d_h, weight(OUT), saved, grads)
        d_attn = d_attn.view(batch, tokens, parts.heads, parts.head_dim)
        if plan.varlen:
            q, k, v, out, lse, rng, unused = keep["flash"]
            dq, dk, dv = torch.ops.aten._flash_attention_backward(
                d_attn[0], q, k, v, out, lse, plan.starts, plan.starts, plan.longest, plan.longest,
                0.0, True, rng, unused, scale=parts.scaling,
            )  # fmt: skip
            dq, dk, dv = dq.unsqueeze(0), dk.unsqueeze(0), dv.unsqueeze(0)
        else:
            dq, dk, dv = torch.autograd.grad(keep["attn"], keep["leaves"], _grad_to_sdpa(d_attn, plan))
            dq = _from_sdpa(dq, parts, plan, parts.heads)
            dk, dv = (_from_sdpa(t, parts, plan, parts.kv_heads) for t in (dk, dv))
        # q, k and v's gradients go straight into their places in [d_q | d_k | d_v].
        heads, kv_heads, dim = parts.heads, parts.kv_heads, parts.head_dim
        d_qkv = x.new_empty(batch, tokens, (heads + 2 * kv_heads) * dim)
        d_heads = d_qkv.view(batch, tokens, heads + 2 * kv_heads, dim)
        _rope_backward(dq, keep["cos"], keep["sin"], out=d_heads[:, :, :heads])
        _rope_backward(dk, keep["cos"], keep["sin"], out=d_heads[:, :, heads : heads + kv_heads])
        d_heads[:, :, heads + kv_heads :].copy_(dv)
        del dq, dk, dv, d_heads
        need_x = ctx.needs_input_grad[4]
        d_n1 = _project_backward(parts, QKV, d_qkv, weight(QKV), saved, grads, need_x)
        d_x = d_h + _rms_norm_backward(d_n1, x, parts.norm1, keep["rstd1"]) if need_x else None
        param_grads = [grads.get(id(p)) for p in parts.params()]
        return (None, None, None, None, d_x, None, None, *param_grads)
