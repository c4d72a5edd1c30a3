"""QLoRA decoder layers, forward and backward: fused layers vs autograd with gradient checkpointing.

A few Llama-2-7B-shaped layers (random weights, NF4 through the real load path, LoRA r=64 on q,v,
dropout 0.05) train on one packed row of Tang-length examples (about 2,100 tokens, as a step of
the homework's 16 pairs). Each variant runs the same row: wall time per step (after a
synchronize), host time (until the Python calls return) and MFU of the layers (4N per token,
N = the layers' linear weights, against 790 TFLOP/s). Variants:
- autograd: transformers layers, peft LoRA, bitsandbytes, gradient checkpointing (fused_layers=False);
- fused: fused_layers as shipped (own recompute, hand-written backward).

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
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        time_steps(model, batch, 1)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", default="autograd,fused")
    parser.add_argument("--host-profile", default="", help="print where the host time of this variant goes")
    args = parser.parse_args()

    import torch

    from playground.training import TrainingConfig
    from playground.training import fused_layers as fl
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
    results: dict[str, float] = {}
    for variant in args.variants.split(","):
        if variant.startswith("fused") and not fl.installed(model):
            fl.install(model)
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
    best = min((v for v in results if v.startswith("fused")), key=results.get)
    print(
        f"fused_layer: {results['autograd'] / results[best]:.2f}x (fused vs autograd s/step, {best}, "
        f"{args.layers} Llama-7B-shaped NF4 layers, {args.tokens} packed tokens, cuda)"
    )


if __name__ == "__main__":
    main()
