"""LoRA on a bf16 base: fp32 products as bf16 pairs.

peft runs LoRA in fp32 on the bf16 base's activations, and cuBLAS has no fp32 tensor-core
product: the fp32 LoRA products ran on CUDA cores, and each needed an fp32 copy of its bf16
input. But a bf16 activation (even with dropout's zeros) is exactly a bf16 number, and an fp32
number t is hi + lo to 2^-17 with hi = bf16(t), lo = bf16(t - hi). So each LoRA product becomes
bf16 tensor-core products summed in fp32: [x] @ [A_hi; A_lo] with x exact, and for two fp32
operands hi*hi + lo*hi + hi*lo as one product over K-stacked blocks (lo*lo is below 2^-16).
The results agree with fp32 products to about 1e-5 (tests/test_fused_layers.py), far inside
what the bf16 base itself rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from playground.training.fused.elementwise import DropoutMasks
from playground.training.fused.parts import Projection


@dataclass
class LoraInput:
    # The input with dropped-out entries zeroed (not yet scaled by 1 / (1 - p)): fp32, or bf16 (pairs).
    x: torch.Tensor
    mask: torch.Tensor | None
    xa: torch.Tensor  # dropout(x) @ A^T times the LoRA scale: fp32, or bf16 [hi | lo | hi] (pairs)
    keep_scale: float = 1.0  # 1 / (1 - p): dropout's scale, applied to the small [tokens, r] side
    pairs: LoraPairs | None = None


def uses_bf16_pairs(x: torch.Tensor, p: Projection) -> bool:
    """Whether the LoRA of `p` runs as bf16 pairs on an input like `x` (a bf16 base, fp32 LoRA)."""
    return x.dtype == torch.bfloat16 and p.lora_a.dtype == torch.float32


def mm32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for bf16 matrices, summed and returned in fp32 (on CUDA without an fp32 copy of either)."""
    if a.is_cuda and "dtype" in torch.ops.aten.mm.overloads():  # torch >= 2.8
        return torch.mm(a, b, out_dtype=torch.float32)
    return a.float() @ b.float()


def three_blocks(t: torch.Tensor, dim: int, lo_at: int) -> torch.Tensor:
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
class LoraPairs:
    a: torch.Tensor  # [3r, in]: scale * A as [hi; hi; lo]
    b: torch.Tensor  # [out, 3r]: B as [hi | hi | lo]

    @staticmethod
    def of(p: Projection, scale: float) -> LoraPairs:
        return LoraPairs(three_blocks(p.lora_a * scale, 0, lo_at=2), three_blocks(p.lora_b, 1, lo_at=2))


def halves_sum(t: torch.Tensor, dim: int) -> torch.Tensor:
    """The sum of t's two halves along `dim` (the hi and lo parts of a pair product), in place."""
    first, second = t.chunk(2, dim)
    return first.add_(second)


def lora_pairs_forward(
    p: Projection, x: torch.Tensor, y: torch.Tensor, masks: DropoutMasks | None
) -> LoraInput:
    """y += the LoRA of `p` on x (both [tokens, features], bf16), through bf16 pairs."""
    mask, keep_scale = None, 1.0
    if p.dropout > 0:
        mask, keep_scale = masks.draw(x, p.dropout), 1 / (1 - p.dropout)
        x = x * mask  # dropout's zeros: still exactly bf16
    r = p.lora_a.shape[0]
    pairs = LoraPairs.of(p, p.scale * keep_scale)
    xa = halves_sum(mm32(x, pairs.a[r:].t()), 1)  # x @ (scale A)^T, [tokens, r] fp32
    xa = three_blocks(xa, 1, lo_at=1)  # [hi | lo | hi]
    y.addmm_(xa, pairs.b.t())  # hi*hi + lo*hi + hi*lo, added to the bf16 product in fp32: one rounding
    return LoraInput(x, mask, xa, keep_scale, pairs)


def lora_pairs_backward(
    p: Projection, lora: LoraInput, g: torch.Tensor, dx: torch.Tensor | None, grads: dict[int, torch.Tensor]
) -> None:
    """LoRA weight gradients into `grads`, and the LoRA's part of the input gradient into dx
    (all [tokens, features]; g is the bf16 output gradient, exact in bf16)."""
    r, pairs = p.lora_a.shape[0], lora.pairs
    grads[id(p.lora_b)] = halves_sum(mm32(g.t(), lora.xa[:, : 2 * r]), 1)
    d_xa = halves_sum(mm32(g, pairs.b[:, r:]), 1)  # g @ B, [tokens, r] fp32
    d_xa = three_blocks(d_xa, 1, lo_at=1)
    grads[id(p.lora_a)] = halves_sum(mm32(d_xa[:, : 2 * r].t(), lora.x), 0).mul_(p.scale * lora.keep_scale)
    if dx is None:
        return
    if lora.mask is None:
        dx.addmm_(d_xa, pairs.a)
    else:
        dx.addcmul_(mm32(d_xa, pairs.a), lora.mask)
