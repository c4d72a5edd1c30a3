"""Decoder layers that checkpoint themselves and backpropagate by hand: the QLoRA fast path.

Gradient checkpointing through autograd re-runs a whole layer (dequantization, peft and
bitsandbytes Python code included) and then differentiates it op by op. With a frozen base and
LoRA adapters the backward needs much less, and this module does only that:
- a frozen weight needs no weight gradient, so a product's input is never needed to go back
  through it: down_proj's output is not recomputed (a fifth of a layer's arithmetic);
- each 4-bit weight is dequantized once for the recompute and kept for the backward: two
  dequantizations per pass instead of three;
- q|k|v and gate|up each run as one product over their stacked weights (fewer kernel launches);
- a packed row attends example by example (flash attention over [examples, longest, heads, dim])
  instead of through a dense block-diagonal mask over the whole row;
- the chain rule of the norms, rotary embedding and SiLU gate is written out, a few kernels each,
  with no autograd graph to build.
What a layer keeps between forward and backward is what checkpointing keeps: its input.

It applies to Llama-type layers (Llama, Mistral and the presets built on them: pre-norm RMSNorm,
rotary embedding, SiLU-gated MLP, no biases) under gradient checkpointing; anything else trains
through autograd as before (`unsupported_reason` says why). LoRA math runs in fp32, as peft runs it.

On an H100 a QLoRA step of a 7B model is bound by the host launching kernels about as much as by
the GPU, so fewer ops per layer is what counts here (bench/fused_layer.py, bench/RESULTS.md).
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

    def weight(self, dtype: torch.dtype, out: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen weight [out, in] in `dtype`, dequantized if it is 4-bit (into `out` if given)."""
        if self.quant_state is not None:
            from bitsandbytes.functional import dequantize_4bit

            return dequantize_4bit(self.base.weight.data, self.quant_state, out=out).to(dtype)
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


def install(model: Any) -> int:
    """Route each decoder layer's training forward through the fused layer. Returns how many.

    Layers keep their own forward for evaluation and generation (no grad or eval mode)."""
    inner, layers = _decoder(model)
    plans = _AttentionPlans()
    for layer in layers:
        parts = layer_parts(layer, inner.config)
        # The fused layer is its own checkpoint: autograd's would wrap (and re-run) it again.
        layer.gradient_checkpointing = False
        layer.forward = functools.partial(_forward, layer, parts, layer.forward, plans)
    return len(layers)


def installed(model: Any) -> bool:
    """Whether `install` routed this model's layers through the fused layer."""
    return any(
        getattr(layer.__dict__.get("forward"), "func", None) is _forward for layer in _decoder(model)[1]
    )


def _forward(
    layer: Any,
    parts: LayerParts,
    original: Any,
    plans: _AttentionPlans,
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
    plan = plans.plan(hidden_states, attention_mask, position_ids)
    # Dropout masks come from a generator seeded here, so the backward's recompute draws the same ones.
    seed = int(torch.randint(0, 2**62, (1,))) if parts.dropout else 0
    return _FusedLayer.apply(parts, plan, seed, hidden_states, cos, sin, *parts.params())


# -- attention -------------------------------------------------------------------------------


@dataclass
class _AttentionPlan:
    mask: torch.Tensor | None = None
    gather: torch.Tensor | None = None  # [examples, longest]: row positions, the last one repeated
    scatter: torch.Tensor | None = None  # [tokens]: where each row position sits in the gathered layout


class _AttentionPlans:
    """One plan per forward pass: every layer gets the same position_ids tensor, so it is worked out once."""

    def __init__(self) -> None:
        self._key: tuple[Any, Any] = (None, None)
        self._plan = _AttentionPlan()

    def plan(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, position_ids: torch.Tensor | None
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


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' RMSNorm (fp32 statistics, weight applied in the input dtype) and 1/rms."""
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (xf * rstd).to(x.dtype), rstd


def _rms_norm_backward(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor
) -> torch.Tensor:
    g = grad.float() * weight.float()
    normed = x.float() * rstd
    return (rstd * (g - normed * (g * normed).mean(-1, keepdim=True))).to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


def _rope_backward(grad: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # rotate_half is a signed permutation P with P^T = -P.
    return grad * cos - _rotate_half(grad * sin)


def _silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def _silu_mul_backward(
    grad: torch.Tensor, gate: torch.Tensor, up: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # Autograd's own steps (and kernels) for silu(gate) * up, so the numbers are its numbers.
    return torch.ops.aten.silu_backward(grad * up, gate), grad * F.silu(gate)


class _Masks:
    """Dropout keep-masks (0/1) drawn in a fixed order from one seed."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def draw(self, like: torch.Tensor, p: float) -> torch.Tensor:
        return torch.empty_like(like).bernoulli_(1 - p, generator=self.generator)


@dataclass
class _LoraInput:
    x: torch.Tensor  # the dropped-out fp32 input
    mask: torch.Tensor | None
    xa: torch.Tensor  # x @ A^T, times the LoRA scale


# Projections that read the same input run as one product over their stacked weights.
QKV, OUT, GATE_UP, DOWN = ("q", "k", "v"), ("o",), ("gate", "up"), ("down",)


def _slices(parts: LayerParts, names: tuple[str, ...]) -> list[tuple[str, Projection, slice]]:
    """Each projection of a stack with the columns of the stacked output that are its own."""
    out, row = [], 0
    for name in names:
        p = parts.proj[name]
        out.append((name, p, slice(row, row + p.base.out_features)))
        row += p.base.out_features
    return out


def _stacked_weight(parts: LayerParts, names: tuple[str, ...], dtype: torch.dtype) -> torch.Tensor:
    """The frozen weights of `names` as one [outputs, in] matrix (4-bit ones dequantized in place)."""
    projs = [parts.proj[name] for name in names]
    if len(projs) == 1:
        return projs[0].weight(dtype)
    if any(p.quant_state is None or p.quant_state.dtype != dtype for p in projs):
        return torch.cat([p.weight(dtype) for p in projs])
    base = projs[0].base
    stacked = torch.empty(
        sum(p.base.out_features for p in projs), base.in_features, dtype=dtype, device=base.weight.device
    )
    for _, p, rows in _slices(parts, names):
        p.weight(dtype, out=stacked[rows])
    return stacked


def _project(
    parts: LayerParts,
    names: tuple[str, ...],
    x: torch.Tensor,
    weight: torch.Tensor,
    masks: _Masks | None,
    saved: dict[str, _LoraInput | None],
) -> torch.Tensor:
    """x through the stacked projections `names`, each LoRA added to its own slice of the output."""
    y = F.linear(x, weight)
    for name, p, cols in _slices(parts, names):
        saved[name] = None
        if p.lora_a is not None:
            mask = masks.draw(x, p.dropout) if p.dropout > 0 else None
            xf = x.float() if mask is None else x.float() * mask * (1 / (1 - p.dropout))
            xa = F.linear(xf, p.lora_a) * p.scale
            y[..., cols] += F.linear(xa, p.lora_b).to(y.dtype)
            saved[name] = _LoraInput(xf, mask, xa)
    return y


def _project_backward(
    parts: LayerParts,
    names: tuple[str, ...],
    grad: torch.Tensor,
    weight: torch.Tensor,
    saved: dict[str, _LoraInput | None],
    grads: dict[int, torch.Tensor],
    input_grad: bool = True,
) -> torch.Tensor | None:
    """Gradient of the projections' input; LoRA weight gradients go to `grads` (keyed by id)."""
    dx = grad @ weight if input_grad else None
    for name, p, cols in _slices(parts, names):
        lora = saved.get(name)
        if lora is None:
            continue
        g = grad[..., cols].float().reshape(-1, p.base.out_features)
        grads[id(p.lora_b)] = g.t() @ lora.xa.reshape(-1, lora.xa.shape[-1])
        gb = (g @ p.lora_b) * p.scale
        grads[id(p.lora_a)] = gb.t() @ lora.x.reshape(-1, lora.x.shape[-1])
        if input_grad:
            lora_dx = (gb @ p.lora_a).view(dx.shape)
            if lora.mask is not None:
                lora_dx = lora_dx * lora.mask * (1 / (1 - p.dropout))
            dx = dx + lora_dx.to(dx.dtype)
    return dx


def _run(
    parts: LayerParts,
    plan: _AttentionPlan,
    seed: int,
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    keep: dict[str, Any] | None = None,
) -> torch.Tensor:
    """The layer's forward. With `keep`, it also records there what the backward needs (and the
    dequantized weights), and runs attention under autograd so its backward can be asked for."""
    dtype, (batch, tokens) = x.dtype, x.shape[:2]
    heads, kv_heads, dim = parts.heads, parts.kv_heads, parts.head_dim
    masks = _Masks(seed, x.device) if parts.dropout else None
    weights: dict[tuple[str, ...], torch.Tensor] = {}
    saved: dict[str, _LoraInput | None] = {}

    def project(names: tuple[str, ...], inp: torch.Tensor) -> torch.Tensor:
        weight = _stacked_weight(parts, names, dtype)
        if keep is not None:
            weights[names] = weight  # forward only: each dequantized weight is freed after its product
        return _project(parts, names, inp, weight, masks, saved)

    n1, rstd1 = _rms_norm(x, parts.norm1, parts.eps1)
    qkv = project(QKV, n1)
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    qk = _rope(qkv[..., : (heads + kv_heads) * dim].view(batch, tokens, heads + kv_heads, dim), cos, sin)
    v = qkv[..., (heads + kv_heads) * dim :].view(batch, tokens, kv_heads, dim)
    q, k, v = (_to_sdpa(t, parts, plan) for t in (qk[:, :, :heads], qk[:, :, heads:], v))
    if keep is None:
        attn = _sdpa(q, k, v, parts, plan)
    else:
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (q, k, v)]
            attn = _sdpa(*leaves, parts, plan)
        keep.update(attn=attn, leaves=leaves)
        attn = attn.detach()
    attn = _from_sdpa(attn, parts, plan, heads).reshape(batch, tokens, -1)
    h = x + project(OUT, attn)
    n2, rstd2 = _rms_norm(h, parts.norm2, parts.eps2)
    gate_up = project(GATE_UP, n2)
    gate, up = gate_up.chunk(2, dim=-1)
    act = _silu_mul(gate, up)
    if keep is not None:
        keep.update(
            weights=weights, saved=saved, rstd1=rstd1, h=h, rstd2=rstd2, gate=gate, up=up, cos=cos, sin=sin
        )
        if parts.proj["down"].lora_a is None:
            return x  # nothing in the backward needs down_proj's output: skip it and its dequantization
    return h + project(DOWN, act)


class _FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        parts: LayerParts,
        plan: _AttentionPlan,
        seed: int,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *params: torch.Tensor,
    ) -> torch.Tensor:
        ctx.parts, ctx.plan, ctx.seed = parts, plan, seed
        ctx.save_for_backward(x, cos, sin)
        with torch.no_grad():
            return _run(parts, plan, seed, x, cos, sin)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        parts: LayerParts = ctx.parts
        x, cos, sin = ctx.saved_tensors
        keep: dict[str, Any] = {}
        _run(parts, ctx.plan, ctx.seed, x, cos, sin, keep=keep)
        w, saved = keep["weights"], keep["saved"]
        grads: dict[int, torch.Tensor] = {}

        # MLP: out = h + down(silu(gate) * up)
        w_down = w[DOWN] if DOWN in w else _stacked_weight(parts, DOWN, x.dtype)
        d_act = _project_backward(parts, DOWN, grad_out, w_down, saved, grads)
        del w_down
        d_gate_up = torch.cat(_silu_mul_backward(d_act, keep["gate"], keep["up"]), dim=-1)
        del d_act
        d_n2 = _project_backward(parts, GATE_UP, d_gate_up, w[GATE_UP], saved, grads)
        del d_gate_up
        d_h = grad_out + _rms_norm_backward(d_n2, keep["h"], parts.norm2, keep["rstd2"])
        del d_n2

        # Attention: h = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1)))
        batch, tokens = x.shape[:2]
        plan = ctx.plan
        d_attn = _project_backward(parts, OUT, d_h, w[OUT], saved, grads)
        d_attn = _grad_to_sdpa(d_attn.view(batch, tokens, parts.heads, parts.head_dim), plan)
        dq, dk, dv = torch.autograd.grad(keep["attn"], keep["leaves"], d_attn)
        d_qk = torch.cat(
            [_from_sdpa(dq, parts, plan, parts.heads), _from_sdpa(dk, parts, plan, parts.kv_heads)], 2
        )
        d_qk = _rope_backward(d_qk, keep["cos"], keep["sin"])
        dv = _from_sdpa(dv, parts, plan, parts.kv_heads)
        d_qkv = torch.cat([d_qk.reshape(batch, tokens, -1), dv.reshape(batch, tokens, -1)], dim=-1)
        need_x = ctx.needs_input_grad[3]
        d_n1 = _project_backward(parts, QKV, d_qkv, w[QKV], saved, grads, need_x)
        d_x = d_h + _rms_norm_backward(d_n1, x, parts.norm1, keep["rstd1"]) if need_x else None
        param_grads = [grads.get(id(p)) for p in parts.params()]
        return (None, None, None, d_x, None, None, *param_grads)
