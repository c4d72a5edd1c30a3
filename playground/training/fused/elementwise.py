"""The elementwise pieces of a layer and their chain rules, a few kernels each, plus dropout masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _fused_rms_norm(x: torch.Tensor, weight: torch.Tensor) -> bool:
    # torch's one-kernel RMSNorm on CUDA (fp32 inside, one rounding at the end; transformers rounds
    # twice). Its backward has no CPU kernel: CPU runs the ops written out below.
    return x.is_cuda and hasattr(torch.ops.aten, "_fused_rms_norm") and weight.dtype == x.dtype


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSNorm (fp32 statistics) and 1/rms."""
    if _fused_rms_norm(x, weight):
        return torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], weight, eps)
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * (xf * rstd).to(x.dtype), rstd


def rms_norm_backward(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, rstd: torch.Tensor
) -> torch.Tensor:
    if _fused_rms_norm(x, weight):
        return torch.ops.aten._fused_rms_norm_backward(grad, x, [x.shape[-1]], rstd, weight, [True, False])[0]
    g = grad.float() * weight.float()
    normed = x.float() * rstd
    return (rstd * (g - normed * (g * normed).mean(-1, keepdim=True))).to(x.dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1], without materialising rotate_half."""
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1)
    out[..., half:].addcmul_(x[..., :half], sin[..., half:])
    return out


def rope_backward(
    grad: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    # rotate_half is a signed permutation P with P^T = -P: d = g * cos + [g2 * sin2, -g1 * sin1].
    half = grad.shape[-1] // 2
    d = torch.mul(grad, cos) if out is None else torch.mul(grad, cos, out=out)
    d[..., :half].addcmul_(grad[..., half:], sin[..., half:])
    d[..., half:].addcmul_(grad[..., :half], sin[..., :half], value=-1)
    return d


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def silu_mul_backward(
    grad: torch.Tensor, gate: torch.Tensor, up: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    # Autograd's own steps (and kernels) for silu(gate) * up, so the numbers are its numbers.
    d_gate = torch.mul(grad, up)
    torch.ops.aten.silu_backward.grad_input(d_gate, gate, grad_input=d_gate)
    return d_gate, F.silu(gate).mul_(grad)


class DropoutMasks:
    """Dropout keep-masks (bool) drawn in a fixed order from one seed."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def draw(self, like: torch.Tensor, p: float) -> torch.Tensor:
        return torch.empty(like.shape, dtype=torch.bool, device=like.device).bernoulli_(
            1 - p, generator=self.generator
        )
