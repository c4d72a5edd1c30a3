"""QLoRA decoder layers, forward and backward: fused layers vs autograd with gradient checkpointing.

A few Llama-2-7B-shaped layers (random weights, NF4 through the real load path, LoRA r=64 on q,v,
dropout 0.05) train on one packed row of Tang-length examples (about 2,100 tokens, as a step of
the homework's 16 pairs). Each variant runs the same row: wall time per step (after a
synchronize), host time (until the Python calls return) and MFU of the layers (4N per token,
N = the layers' linear weights, against 790 TFLOP/s). Variants:
- autograd: transformers layers, peft LoRA, bitsandbytes, gradient checkpointing (fused_layers=False);
- fused: fused layers that recompute (own recompute, hand-written backward);
- fused-kept: fused layers that keep their activations from the forward (no recompute);
- fused-kept-weights: and their dequantized weights (one dequantization per step).

    python bench/fused_layer.py --layers 8 --steps 10

The last line is: fused_layer: <ratio>x (fused vs autograd s/step, ...)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEAK_FLOPS = 790e12


def build(layers: int, folder: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from bench._gpu_models import SHAPES, tokenizer_for_bench

    if (folder / "config.json").is_file():
        return folder
    config = LlamaConfig(
        **{**SHAPES["llama"], "num_hidden_layers": layers},
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer_for_bench().save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def packed_row(tokens: int, vocab: int) -> dict:
    from playground.training.formatting import FormattedExample
    from playground.training.packing import packed_batch

    rng = random.Random(0)
    examples, total = [], 0
    while total < tokens:
        n = min(rng.randint(100, 170), tokens - total)
        ids = [rng.randrange(4, vocab) for _ in range(n)]
        examples.append(FormattedExample(ids, ids, n // 2))
        total += n
    return packed_batch(examples)


def time_steps(model, batch: dict, steps: int) -> tuple[float, float]:
    import torch

    from playground.training.loss import token_loss_sum
    from playground.training.modeling import training_attention

    def step() -> None:
        with training_attention("cuda"):
            loss, n = token_loss_sum(model, batch)
            (loss / n).backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    walls, hosts = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        hosts.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return sorted(walls)[len(walls) // 2], sorted(hosts)[len(hosts) // 2]


def lora_grads(model, batch: dict, kept: tuple[int, int] | None = None, math_attention: bool = False) -> dict:
    """LoRA gradients of one step with dropout off (the paths draw their dropout masks differently),
    through autograd (kept None) or fused layers, `kept` of them keeping their activations and weights."""
    import torch

    from playground.training import fused as fl
    from playground.training.loss import token_loss_sum
    from playground.training.modeling import training_attention

    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in dropouts]
    for m in dropouts:
        m.p = 0.0
    if kept is not None:
        fl.install(model, *kept)  # fused layers read the dropout rate when installed
    model.zero_grad(set_to_none=True)
    if math_attention:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        attention = sdpa_kernel([SDPBackend.MATH])
    else:
        attention = training_attention("cuda")
    with attention:
        loss, n = token_loss_sum(model, batch)
        (loss / n).backward()
    for m, rate in zip(dropouts, rates):
        m.p = rate
    if kept is not None:
        fl.install(model, *kept)
    grads = {name: p.grad.float().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def relative_error(got: dict, want: dict) -> float:
    import torch

    assert got.keys() == want.keys() and want
    diff = sum(float(torch.linalg.vector_norm(got[k] - want[k]) ** 2) for k in want)
    return (diff / sum(float(torch.linalg.vector_norm(w) ** 2) for w in want.values())) ** 0.5


def host_profile(model, batch: dict) -> None:
    """cProfile of a few steps (the host is what limits these steps), and torch's own host times."""
    import cProfile
    import io
    import pstats

    import torch

    profile = cProfile.Profile()
    profile.enable()
    time_steps(model, batch, 3)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue()[-6000:])
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        time_steps(model, batch, 1)  # 3 warm-up steps and 1 timed
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=90))
    print(averages.table(sort_by="self_device_time_total", row_limit=25, max_name_column_width=90))
    # Which ops (and on what shapes) the GPU time goes to.
    by_shape = prof.key_averages(group_by_input_shape=True)
    print(
        by_shape.table(
            sort_by="device_time_total", row_limit=40, max_name_column_width=40, max_shapes_column_width=90
        )
    )
    busy = sum(e.self_device_time_total for e in averages) / 4 / 1e3
    print(f"GPU busy per step (kernels only, no gaps): {busy:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", default="autograd,fused,fused-kept,fused-kept-weights")
    parser.add_argument("--host-profile", default="", help="print where the host time of this variant goes")
    args = parser.parse_args()

    import torch

    from playground.training import TrainingConfig
    from playground.training.modeling import load_base, wrap_lora

    folder = build(args.layers, Path(tempfile.gettempdir()) / f"fused-layer-llama-{args.layers}")
    config = TrainingConfig(
        model=str(folder), method="qlora", r=64, alpha=16, dropout=0.05, target_modules="q,v",
        gradient_checkpointing=True, fused_layers=False, max_length=1024,
    )  # fmt: skip
    model = wrap_lora(load_base(config), config)
    batch = packed_row(args.tokens, model.config.vocab_size)
    n_params = args.layers * sum(
        m.in_features * m.out_features
        for name, m in model.get_base_model().model.layers[0].named_modules()
        if name.endswith("_proj") and hasattr(m, "in_features")
    )
    print(
        f"{args.layers} Llama-2-7B-shaped layers, NF4, LoRA r=64 on q,v, dropout 0.05, one packed row of "
        f"{batch['input_ids'].shape[1]} tokens, median of {args.steps} steps, {torch.cuda.get_device_name()}"
    )
    reference = lora_grads(model, batch)  # autograd, before anything is installed
    # bf16 sums in another order give other gradients: how far apart two autograd runs that differ
    # only in their attention kernel are is the yardstick for the fused paths.
    floor = relative_error(lora_grads(model, batch, math_attention=True), reference)
    print(f"  autograd with the math attention kernel vs the default: relative error {floor:.1e}")
    results: dict[str, float] = {}
    errors: list[str] = []
    for variant in args.variants.split(","):
        if variant.startswith("fused"):
            kept = {"fused-kept": (args.layers, 0), "fused-kept-weights": (args.layers, args.layers)}.get(
                variant, (0, 0)
            )
            error = relative_error(lora_grads(model, batch, kept), reference)
            print(f"  {variant:12s} LoRA gradients vs autograd (dropout off): relative error {error:.1e}")
            if error > max(3 * floor, 1e-3):
                errors.append(f"{variant}: LoRA gradients differ from autograd's by {error:.1e}")
        t0 = time.perf_counter()
        wall, host = time_steps(model, batch, args.steps)
        mfu = batch["input_ids"].shape[1] * 4 * n_params / wall / PEAK_FLOPS
        results[variant] = wall
        print(
            f"  {variant:12s} {wall * 1e3:7.1f} ms/step  host {host * 1e3:7.1f} ms  MFU {mfu:5.1%}  "
            f"({time.perf_counter() - t0:.0f} s with warm-up)",
            flush=True,
        )
        if variant == args.host_profile:
            host_profile(model, batch)
    # Layers back on their own forward: bitsandbytes now reads the 4-bit weights that install()
    # moved into one buffer per layer, and must give what it gave before.
    for layer in model.get_base_model().model.layers:
        layer.__dict__.pop("forward", None)
    error = relative_error(lora_grads(model, batch), reference)
    print(f"  autograd again, over the moved 4-bit weights: relative error {error:.1e}")
    if error > 1e-5:
        errors.append(f"autograd over the moved 4-bit weights differs by {error:.1e}")
    if errors:
        sys.exit("; ".join(errors))
    best = min((v for v in results if v.startswith("fused")), key=results.get)
    print(
        f"fused_layer: {results['autograd'] / results[best]:.2f}x (fused vs autograd s/step, {best}, "
        f"{args.layers} Llama-7B-shaped NF4 layers, {args.tokens} packed tokens, cuda)"
    )


if __name__ == "__main__":
    main()
