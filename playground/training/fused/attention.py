"""Attention over a packed row, example by example: varlen flash attention on CUDA, SDPA elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from playground.training.fused.parts import LayerParts


@dataclass
class AttentionPlan:
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


class AttentionPlans:
    """One plan per forward pass: every layer gets the same position_ids tensor, so it is worked out once."""

    def __init__(self) -> None:
        self._key: tuple[Any, Any] = (None, None)
        self._plan = AttentionPlan()

    def plan(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        head_dim: int = 0,
    ) -> AttentionPlan:
        batch, tokens = hidden.shape[:2]
        if batch != 1 or position_ids is None:
            return AttentionPlan(mask=mask)
        if self._key[0] is position_ids and self._key[1] is mask:
            return self._plan
        self._key, self._plan = (position_ids, mask), AttentionPlan(mask=mask)
        starts = (position_ids[0] == 0).nonzero().squeeze(1).tolist()  # one host sync per forward pass
        if len(starts) < 2 or starts[0] != 0:
            return self._plan  # one sequence (or not a packed row): the mask as transformers built it
        ends = starts[1:] + [tokens]
        longest = max(e - s for s, e in zip(starts, ends))
        if _varlen_flash(hidden, head_dim):
            bounds = torch.tensor([*starts, tokens], dtype=torch.int32, device=hidden.device)
            self._plan = AttentionPlan(starts=bounds, longest=longest)
            return self._plan
        gather = [[min(s + j, e - 1) for j in range(longest)] for s, e in zip(starts, ends)]
        scatter = [i * longest + j for i, (s, e) in enumerate(zip(starts, ends)) for j in range(e - s)]
        device = hidden.device
        self._plan = AttentionPlan(
            gather=torch.tensor(gather, device=device), scatter=torch.tensor(scatter, device=device)
        )
        return self._plan


def to_sdpa(t: torch.Tensor, parts: LayerParts, plan: AttentionPlan) -> torch.Tensor:
    """[B, T, h, D] rows -> SDPA's [batch, H, length, D]: example by example for a packed row
    (padded by repeating each example's last token), key/value heads repeated for grouped queries."""
    if t.shape[2] != parts.heads:
        t = t.repeat_interleave(parts.heads // t.shape[2], dim=2)
    if plan.gather is not None:
        t = t[0][plan.gather]
    return t.transpose(1, 2)


def from_sdpa(t: torch.Tensor, parts: LayerParts, plan: AttentionPlan, heads: int) -> torch.Tensor:
    """The way back from to_sdpa, also for gradients: a padded position never receives one (its
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


def grad_to_sdpa(grad: torch.Tensor, plan: AttentionPlan) -> torch.Tensor:
    """The output gradient [B, T, H, D] in SDPA's layout (zero at padded positions)."""
    if plan.gather is not None:
        n, longest = plan.gather.shape
        full = grad.new_zeros(n * longest, *grad.shape[2:])
        full.index_copy_(0, plan.scatter, grad[0])
        grad = full.view(n, longest, *grad.shape[2:])
    return grad.transpose(1, 2)


def sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, parts: LayerParts, plan: AttentionPlan
) -> torch.Tensor:
    if plan.gather is not None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=parts.scaling)
    mask = plan.mask
    if mask is not None and mask.dim() == 4:
        mask = mask[:, :, :, : k.shape[2]]
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=mask is None and q.shape[2] > 1, scale=parts.scaling
    )
