"""The fused layer: its forward (which keeps what the backward reads) and its hand-written backward."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from playground.training.fused.attention import AttentionPlan, from_sdpa, grad_to_sdpa, sdpa, to_sdpa
from playground.training.fused.elementwise import (
    DropoutMasks,
    rms_norm,
    rms_norm_backward,
    rope,
    rope_backward,
    silu_mul,
    silu_mul_backward,
)
from playground.training.fused.lora_pairs import (
    LoraInput,
    lora_pairs_backward,
    lora_pairs_forward,
    uses_bf16_pairs,
)
from playground.training.fused.parts import DOWN, GATE, OUT, QKV, UP, Keep, LayerParts, stack_slices


def project_stack(
    parts: LayerParts,
    names: tuple[str, ...],
    x: torch.Tensor,
    weight: torch.Tensor,
    masks: DropoutMasks | None,
    saved: dict[str, LoraInput | None],
) -> torch.Tensor:
    """x through the stacked projections `names`, each LoRA added to its own slice of the output.

    Dropout's 1 / (1 - p) is applied to x @ A^T, a [tokens, r] tensor, rather than to x itself:
    the same product, one fewer pass over the widest fp32 tensor of the layer."""
    y = F.linear(x, weight)
    plain = None  # x in fp32, shared by the LoRAs of this stack that have no dropout
    for name, p, cols in stack_slices(parts, names):
        saved[name] = None
        if p.lora_a is None:
            continue
        if uses_bf16_pairs(x, p) and not torch.is_grad_enabled():  # out= is not differentiable
            rows = y.view(-1, y.shape[-1])[:, cols]
            saved[name] = lora_pairs_forward(p, x.view(-1, x.shape[-1]), rows, masks)
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
        saved[name] = LoraInput(xf, mask, xa, keep_scale)
    return y


def project_stack_backward(
    parts: LayerParts,
    names: tuple[str, ...],
    grad: torch.Tensor,
    weight: torch.Tensor,
    saved: dict[str, LoraInput | None],
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
    for name, p, cols in stack_slices(parts, names):
        lora = saved.get(name)
        if lora is None:
            continue
        if lora.pairs is not None:
            rows = grad.reshape(-1, grad.shape[-1])[:, cols]
            lora_pairs_backward(p, lora, rows, None if dx is None else dx.view(-1, dx.shape[-1]), grads)
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


def run_layer(
    parts: LayerParts,
    plan: AttentionPlan,
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
    masks = DropoutMasks(seed, x.device) if parts.dropout else None
    # A recompute keeps its weights for the backward; otherwise each is freed after its product.
    keep_weights = keep is not None and (keep_weights or not output)
    weights = parts.weights(dtype, keep=keep_weights)
    saved: dict[str, LoraInput | None] = {}

    def project(names: tuple[str, ...], inp: torch.Tensor) -> torch.Tensor:
        return project_stack(parts, names, inp, weights[names], masks, saved)

    n1, rstd1 = rms_norm(x, parts.norm1, parts.eps1)
    qkv = project(QKV, n1)
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    qk = rope(qkv[..., : (heads + kv_heads) * dim].view(batch, tokens, heads + kv_heads, dim), cos, sin)
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
        q, k, v = (to_sdpa(t, parts, plan) for t in (qk[:, :, :heads], qk[:, :, heads:], v))
        attn = from_sdpa(sdpa(q, k, v, parts, plan), parts, plan, heads)
    else:
        q, k, v = (to_sdpa(t, parts, plan) for t in (qk[:, :, :heads], qk[:, :, heads:], v))
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (q, k, v)]
            attn = sdpa(*leaves, parts, plan)
        keep.update(attn=attn, leaves=leaves)
        attn = from_sdpa(attn.detach(), parts, plan, heads)
    attn = attn.reshape(batch, tokens, -1)
    h = x + project(OUT, attn)
    n2, rstd2 = rms_norm(h, parts.norm2, parts.eps2)
    gate, up = project(GATE, n2), project(UP, n2)
    act = silu_mul(gate, up)
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


class FusedLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        parts: LayerParts,
        plan: AttentionPlan,
        seed: int,
        kept: Keep,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        *params: torch.Tensor,
    ) -> torch.Tensor:
        ctx.parts, ctx.plan, ctx.seed, ctx.keep = parts, plan, seed, None
        ctx.save_for_backward(x, cos, sin)
        with torch.no_grad():
            if kept == Keep.INPUT:
                return run_layer(parts, plan, seed, x, cos, sin)
            ctx.keep = {}
            return run_layer(parts, plan, seed, x, cos, sin, keep=ctx.keep, keep_weights=kept >= Keep.WEIGHTS)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        parts: LayerParts = ctx.parts
        x, cos, sin = ctx.saved_tensors
        keep, ctx.keep = ctx.keep, None  # let go of the activations as the backward uses them up
        if keep is None:
            keep = {}
            run_layer(parts, ctx.plan, ctx.seed, x, cos, sin, keep=keep, output=False)
        w, saved = keep["weights"] or parts.weights(x.dtype), keep["saved"]
        grads: dict[int, torch.Tensor] = {}

        def weight(names: tuple[str, ...]) -> torch.Tensor:
            return w.pop(names) if names in w else w[names]  # let go of each stack after use

        # MLP: out = h + down(silu(gate) * up)
        d_act = project_stack_backward(parts, DOWN, grad_out, weight(DOWN), saved, grads)
        d_gate, d_up = silu_mul_backward(d_act, keep["gate"], keep["up"])
        del d_act
        d_n2 = project_stack_backward(parts, GATE, d_gate, weight(GATE), saved, grads)
        project_stack_backward(parts, UP, d_up, weight(UP), saved, grads, into=d_n2)
        del d_gate, d_up
        d_h = grad_out + rms_norm_backward(d_n2, keep["h"], parts.norm2, keep["rstd2"])
        del d_n2

        # Attention: h = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1)))
        batch, tokens = x.shape[:2]
        plan = ctx.plan
        d_attn = project_stack_backward(parts, OUT, d_h, weight(OUT), saved, grads)
        d_attn = d_attn.view(batch, tokens, parts.heads, parts.head_dim)
        if plan.varlen:
            q, k, v, out, lse, rng, unused = keep["flash"]
            dq, dk, dv = torch.ops.aten._flash_attention_backward(
                d_attn[0], q, k, v, out, lse, plan.starts, plan.starts, plan.longest, plan.longest,
                0.0, True, rng, unused, scale=parts.scaling,
            )  # fmt: skip
            dq, dk, dv = dq.unsqueeze(0), dk.unsqueeze(0), dv.unsqueeze(0)
        else:
            dq, dk, dv = torch.autograd.grad(keep["attn"], keep["leaves"], grad_to_sdpa(d_attn, plan))
            dq = from_sdpa(dq, parts, plan, parts.heads)
            dk, dv = (from_sdpa(t, parts, plan, parts.kv_heads) for t in (dk, dv))
        # q, k and v's gradients go straight into their places in [d_q | d_k | d_v].
        heads, kv_heads, dim = parts.heads, parts.kv_heads, parts.head_dim
        d_qkv = x.new_empty(batch, tokens, (heads + 2 * kv_heads) * dim)
        d_heads = d_qkv.view(batch, tokens, heads + 2 * kv_heads, dim)
        rope_backward(dq, keep["cos"], keep["sin"], out=d_heads[:, :, :heads])
        rope_backward(dk, keep["cos"], keep["sin"], out=d_heads[:, :, heads : heads + kv_heads])
        d_heads[:, :, heads + kv_heads :].copy_(dv)
        del dq, dk, dv, d_heads
        need_x = ctx.needs_input_grad[4]
        d_n1 = project_stack_backward(parts, QKV, d_qkv, weight(QKV), saved, grads, need_x)
        d_x = d_h + rms_norm_backward(d_n1, x, parts.norm1, keep["rstd1"]) if need_x else None
        param_grads = [grads.get(id(p)) for p in parts.params()]
        return (None, None, None, None, d_x, None, None, *param_grads)
