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


The package, one idea a module: `parts` (what a layer is made of: projections, norms, 4-bit
weights in one buffer), `attention` (packed rows, example by example), `elementwise` (norms,
rotary embedding, SiLU gate and their chain rules), `lora_pairs` (fp32 LoRA as bf16 tensor-core
pairs), `layer` (the autograd Function: forward and hand-written backward), `memory` (how many
layers may keep what), `install` (routing a model's layers through it).
"""

from playground.training.fused.install import (
    FusedForward,
    install,
    installed,
    kept_layers,
    unsupported_reason,
)
from playground.training.fused.memory import kept_bytes_per_token, kept_layers_for, kept_weight_bytes
from playground.training.fused.parts import SUPPORTED_TYPES, Keep, Projection, layer_parts

__all__ = [
    "SUPPORTED_TYPES",
    "FusedForward",
    "Keep",
    "Projection",
    "install",
    "installed",
    "kept_bytes_per_token",
    "kept_layers",
    "kept_layers_for",
    "kept_weight_bytes",
    "layer_parts",
    "unsupported_reason",
]
