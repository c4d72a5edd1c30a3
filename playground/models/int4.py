"""4-bit weight-only linear layers through PyTorch's built-in int4 kernels ("tinygemm").

Each row of a weight is cut into groups of `group` inputs; a group stores 4-bit codes q in 0..15
and a scale and zero in the compute dtype, with w ~ (q - 8) * scale + zero (asymmetric, as the
kernels expect). At batch 1 a 7B model decodes about 1.5x as fast as with bitsandbytes NF4,
whose kernels are launch-overhead bound there, and four rows cost about what one does (the
side-by-side grid; bench/RESULTS.md). NF4 stays QLoRA's precision: peft cannot wrap these layers.

CUDA runs `_weight_int4pack_mm` (Ampere or newer, bf16 activations); the CPU has its own pair
of ops (`*_for_cpu`) with another packing, so a layer is packed for one device type and cannot
move to the other. A Linear is swapped only where both kernels take its shape (`fits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

INT4_QUANTIZATION = "4-bit int4 weight-only (tinygemm, groups of 128)"
DEFAULT_GROUP = 128
# The CUDA packing lays k out in tiles of 16, `INNER_K_TILES` of them side by side; 8 is the
# fastest layout for 7B shapes and needs in_features % 128 == 0.
INNER_K_TILES = 8
_GROUPS = (32, 64, 128, 256)  # the group sizes the CUDA kernel is built for
# The CUDA kernel tiles n by 8, the CPU packing needs n % 16; one rule for both keeps the same
# layers quantized whichever device loads the model.
_N_MULTIPLE = 16
# The packed kernel must match the dequantized weights within bf16 rounding (about 1e-2);
# a wrong packing gives errors near 1.
_KERNEL_TOLERANCE = 0.05


class Int4Error(RuntimeError):
    """The int4 kernel is missing here or disagrees with the weights it was given."""


def unsupported_reason(device: str) -> str | None:
    """Why int4 layers cannot run on `device` ("cuda" or "cpu") here, or None when they can."""
    if device == "cuda":
        if not hasattr(torch.ops.aten, "_weight_int4pack_mm"):
            return f"this PyTorch ({torch.__version__}) has no int4 CUDA kernel"
        major, minor = torch.cuda.get_device_capability()
        if major < 8:
            return (
                "the int4 kernel needs an Ampere or newer GPU (compute capability 8.0+), "
                f"this one is {major}.{minor}"
            )
        return None
    if not (
        hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")
        and hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu")
    ):
        return f"this PyTorch ({torch.__version__}) has no int4 CPU kernel (it came in 2.6)"
    return None


def fits(linear: nn.Linear, group: int = DEFAULT_GROUP) -> bool:
    """Whether both kernels take this layer's shape (see the constants above)."""
    n, k = linear.out_features, linear.in_features
    return (
        group in _GROUPS
        and k % group == 0
        and k % (INNER_K_TILES * 16) == 0
        and n % _N_MULTIPLE == 0
        and linear.weight.dtype.is_floating_point
    )


def quantize_groups(w: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scales, zeros): int32 codes of shape (n, k), scales and zeros of shape (n, k // group)."""
    n, k = w.shape
    g = w.float().reshape(n, k // group, group)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scales = (hi - lo).clamp(min=1e-6) / 15
    q = ((g - lo) / scales).round().clamp(0, 15).to(torch.int32).reshape(n, k)
    zeros = lo + scales * 8  # the kernels subtract 8 from each code
    return q, scales.reshape(n, -1), zeros.reshape(n, -1)


def dequantize_groups(q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:
    """The float32 weights that the codes stand for: (q - 8) * scale + zero."""
    n, k = q.shape
    groups = scales.shape[1]
    return ((q.float().reshape(n, groups, -1) - 8) * scales.unsqueeze(-1) + zeros.unsqueeze(-1)).reshape(n, k)


class Int4Linear(nn.Module):
    """A Linear whose weight is held as packed int4 codes plus per-group scale and zero."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        packed: torch.Tensor,
        scales_and_zeros: torch.Tensor,
        group: int,
        bias: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.group = in_features, out_features, group
        self.register_buffer("packed", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        # The two devices pack differently: remember which one these codes are laid out for.
        self.packed_for = packed.device.type

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        group: int = DEFAULT_GROUP,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.bfloat16,
    ) -> Int4Linear:
        """Quantize `linear` on `device` (default: where its weight is); `dtype` is the compute dtype."""
        if not fits(linear, group):
            raise ValueError(
                f"int4 needs in_features % {max(group, INNER_K_TILES * 16)} == 0 and out_features % "
                f"{_N_MULTIPLE} == 0; this layer is {linear.in_features} -> {linear.out_features}"
            )
        device = torch.device(device) if device is not None else linear.weight.device
        w = linear.weight.detach().to(device)
        q, scales, zeros = quantize_groups(w, group)
        if device.type == "cuda":
            pairs = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8)
            packed = torch.ops.aten._convert_weight_to_int4pack(pairs, INNER_K_TILES)
        else:
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)  # inner tiles unused on CPU
        # (k // group, n, 2): each group's scale and zero for every output, as both kernels read them.
        sz = torch.stack([scales, zeros], dim=2).transpose(0, 1).contiguous().to(dtype)
        bias = None if linear.bias is None else linear.bias.detach().to(device=device, dtype=dtype)
        return cls(linear.in_features, linear.out_features, packed, sz, group, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != self.packed_for:
            raise Int4Error(
                f"int4 weights packed for {self.packed_for} cannot run on {x.device.type}; "
                "load the model again on that device"
            )
        flat = x.reshape(-1, self.in_features).to(self.scales_and_zeros.dtype).contiguous()
        if self.packed_for == "cuda":
            y = torch.ops.aten._weight_int4pack_mm(flat, self.packed, self.group, self.scales_and_zeros)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(
                flat, self.packed, self.group, self.scales_and_zeros
            )
        y = y.reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, group={self.group}, "
            f"bias={self.bias is not None}, packed_for={self.packed_for}"
        )


@dataclass
class Int4Summary:
    quantized: int = 0
    skipped: list[str] = field(default_factory=list)  # Linear layers whose shape the kernels refuse
    kernel_error: float | None = None  # first layer: kernel vs its dequantized weights (relative)
    quantization_error: float | None = None  # first layer: dequantized vs original weights (relative)

    def quantization_report(self) -> str:
        line = f"{self.quantized} layers int4"
        if self.skipped:
            line += f", {len(self.skipped)} left as they were ({', '.join(self.skipped[:3])}...)"
        if self.kernel_error is not None:
            line += (
                f"; kernel vs dequantized {self.kernel_error:.1e}, "
                f"quantization error {self.quantization_error:.1e}"
            )
        return line


def has_int4_layers(model: nn.Module) -> bool:
    return any(isinstance(m, Int4Linear) for m in model.modules())


def int4_parameter_count(model: nn.Module) -> int:
    """Weights held as int4 codes (buffers, so model.parameters() does not count them)."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, Int4Linear))


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module, str, nn.Linear]]:
    """(full name, parent, attribute, layer) of every Linear but the output head."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    found = []
    for parent_name, parent in model.named_modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and child is not head:
                found.append((f"{parent_name}.{name}" if parent_name else name, parent, name, child))
    return found


def quantizable(model: nn.Module, group: int = DEFAULT_GROUP) -> int:
    """How many of the model's layers `quantize_model_int4` would swap."""
    return sum(fits(child, group) for _, _, _, child in linear_layers(model))


@torch.no_grad()
def quantize_model_int4(
    model: nn.Module,
    group: int = DEFAULT_GROUP,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.bfloat16,
) -> Int4Summary:
    """Swap the model's Linear layers for Int4Linear in place; the output head stays as it is.

    With `device`, each layer is moved there as it is quantized and the rest of the model follows
    at the end, so a model loaded on the CPU reaches the GPU at about its int4 size, never its
    full one. Layers that `fits` refuses stay as they are (listed in the summary). The first
    layer is checked against its dequantized weights: a kernel that disagrees raises Int4Error.
    """
    summary = Int4Summary()
    for full_name, parent, name, child in linear_layers(model):
        if not fits(child, group):
            summary.skipped.append(full_name)
            continue
        new = Int4Linear.from_linear(child, group, device, dtype)
        if summary.kernel_error is None:
            _check_kernel(child, new, summary)
        setattr(parent, name, new)
        summary.quantized += 1
    if device is not None:
        model.to(device)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return summary


def _check_kernel(linear: nn.Linear, new: Int4Linear, summary: Int4Summary) -> None:
    w = linear.weight.detach().to(new.packed.device).float()
    deq = dequantize_groups(*quantize_groups(w, new.group))
    # A private generator: the check must not move the seeded global one that sampling uses.
    x = torch.randn(3, new.in_features, generator=torch.Generator().manual_seed(0))
    x = x.to(device=w.device, dtype=new.scales_and_zeros.dtype)
    ref = x.float() @ deq.T
    got = new(x).float() - (0 if new.bias is None else new.bias.float())
    summary.kernel_error = float((got - ref).norm() / ref.norm().clamp(min=1e-12))
    summary.quantization_error = float((deq - w).norm() / w.norm().clamp(min=1e-12))
    if summary.kernel_error > _KERNEL_TOLERANCE:
        raise Int4Error(
            f"the int4 kernel disagrees with its weights (relative error {summary.kernel_error:.2f}); "
            "this PyTorch packs int4 differently than expected"
        )
