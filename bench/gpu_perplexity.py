"""Bench: perplexity on a GPU, the batched service vs the homework's one-example loop.

    python bench/gpu_perplexity.py [--shape llama] [--n 128] [--batch-sizes 16,32,64] [--dtypes bf16]
                                   [--reps 3] [--fp32-reference]

A 7B-shaped random-weight model (bench/_gpu_models.py), homework-style Tang poem pairs (the
carried .gpu/tang256.json sample, else synthetic ones) and a char-level tokenizer. Both ways
score the same pairs; per-example perplexities must agree to 1e-3. Every time is the median of
`--reps` runs (the loop's time varies from run to run with the host's launch speed). The service
is timed with and without running the shared prompt prefix once. Ends with one line per dtype:
`gpu_perplexity: <ratio>x (...)`, the ratio taken at the fastest batch size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._gpu_models import LABELS, build_model, tang_pairs, tokenizer_for_bench  # noqa: E402

AGREEMENT = 1e-3


def _worst(a, b) -> float:
    return max(abs(y.perplexity - x.perplexity) / x.perplexity for x, y in zip(a.examples, b.examples))


def fp32_reference(model, timed, looped, batched, bs: int, dtype: str) -> str:
    """Both ways again with the weights upcast to float32: is the gap batching or low precision?"""
    from playground.evaluation.perplexity import looped_perplexity, perplexity

    model.float()
    looped32, t_loop = timed(looped_perplexity, model, reps=1)
    batched32, t_batch = timed(perplexity, model, batch_size=bs)
    print(
        f"[fp32 reference] loop {t_loop:.2f} s, batched {t_batch:.2f} s ({t_loop / t_batch:.1f}x); "
        f"batched vs loop in fp32 {_worst(looped32, batched32):.1e}; vs fp32: {dtype} loop "
        f"{_worst(looped32, looped):.1e}, {dtype} batched {_worst(looped32, batched):.1e}",
        flush=True,
    )
    return (
        f"gpu_perplexity fp32: {t_loop / t_batch:.1f}x (batched service, batch size {bs}, vs homework loop, same "
        f"weights in float32); per-example agreement {_worst(looped32, batched32):.1e}; distance from fp32 of the "
        f"{dtype} loop {_worst(looped32, looped):.1e} and of the {dtype} batched service {_worst(looped32, batched):.1e}"
    )


def profile(model, tokenizer, pairs, bs: int, max_length: int) -> None:
    """Where one service call's time goes: device kernels against the wall clock."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from playground.evaluation.perplexity import perplexity

    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perplexity(model, tokenizer, pairs, batch_size=bs, max_length=max_length)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    from torch.autograd import DeviceType

    events = prof.key_averages()
    # Kernels only: operator rows repeat their kernels' device time.
    busy = sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA) / 1e6
    print(f"[profile] wall {wall:.3f} s (profiled), device kernels {busy:.3f} s ({busy / wall:.0%} busy)")
    print(events.table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=60))
    cpu = sorted(events, key=lambda e: -e.self_cpu_time_total)[:10]
    print(
        "[profile] top host time: " + "; ".join(f"{e.key} {e.self_cpu_time_total / 1e3:.0f} ms" for e in cpu)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--dtypes", default="bf16")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--reps", type=int, default=3, help="runs per timing; the median is reported")
    parser.add_argument(
        "--fp32-reference",
        action="store_true",
        help="also score with the same weights in float32, to show how far each bf16 way is from it",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one service call: device busy time and top kernels"
    )
    parser.add_argument(
        "--fused-experiment",
        action="store_true",
        help="also time the service with RMSNorm and rotary compiled (fast_decode's fused ops; not the service)",
    )
    parser.add_argument(
        "--gguf",
        help="a trained model from this GGUF file (with its own tokenizer) instead of the random-weight "
        "7B shape: bf16 rounding on random weights is far from what it is on trained ones",
    )
    args = parser.parse_args()

    import torch

    from playground.evaluation.perplexity import looped_perplexity, perplexity

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    where = torch.cuda.get_device_name() if cuda else "CPU"
    if args.gguf:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = Path(args.gguf)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        label = f"{gguf.stem} (trained weights)"

        def build(shape: str, device: str, dtype: str):
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype)
            )
            # Dequantized already: unmarked, the fp32 reference can upcast it.
            model.hf_quantizer, model.is_quantized = None, False
            return model.to(device).eval()
    else:
        tokenizer, label, build = tokenizer_for_bench(), LABELS[args.shape], build_model
    pairs = tang_pairs(args.n)
    lengths = [len(tokenizer(p + o)["input_ids"]) + 2 for p, o in pairs]
    print(
        f"torch {torch.__version__}, {where}; {len(pairs)} Tang pairs, tokens per example "
        f"mean {statistics.mean(lengths):.0f}, max {max(lengths)}",
        flush=True,
    )

    def timed(fn, model, reps: int = args.reps, **kwargs):
        """The result and the median wall time of `reps` runs."""
        times = []
        for _ in range(reps):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            result = fn(model, tokenizer, pairs, max_length=args.max_length, **kwargs)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        timed.spread = ", ".join(f"{t:.2f}" for t in times)
        return result, statistics.median(times)

    lines, failed = [], False
    for dtype in args.dtypes.split(","):
        torch_dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[dtype]
        t0 = time.perf_counter()
        model = build(args.shape, device=device, dtype=torch_dtype)
        print(f"[{dtype}] built {label} in {time.perf_counter() - t0:.0f} s", flush=True)
        looped_perplexity(model, tokenizer, pairs[:2], args.max_length)  # warm-up
        perplexity(model, tokenizer, pairs[:8], batch_size=8, max_length=args.max_length)
        looped, t_loop = timed(looped_perplexity, model)
        print(
            f"[{dtype}] homework loop: {t_loop:.2f} s (median of {timed.spread}), "
            f"mean ppl {looped.mean_perplexity:.4f}",
            flush=True,
        )
        best, best_unshared = None, None
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            for share in (True, False):
                batched, t_batch = timed(perplexity, model, batch_size=bs, share_prefix=share)
                worst = _worst(looped, batched)
                tokens_s = sum(lengths) / t_batch
                print(
                    f"[{dtype}] batched, batch size {bs}, shared prefix {'run once' if share else 'per example'}: "
                    f"{t_batch:.3f} s ({timed.spread}; {tokens_s:,.0f} example tokens/s), "
                    f"{t_loop / t_batch:.1f}x, largest per-example difference {worst:.1e}",
                    flush=True,
                )
                if share and (best is None or t_batch < best[1]):
                    best = (bs, t_batch, worst, batched)
                if not share and (best_unshared is None or t_batch < best_unshared[1]):
                    best_unshared = (bs, t_batch)
        bs, t_batch, worst, batched = best
        ok = worst <= AGREEMENT
        failed |= not ok
        lines.append(
            f"gpu_perplexity: {t_loop / t_batch:.1f}x (batched service, batch size {bs}, shared prefix run once, "
            f"vs homework one-example loop, medians of {args.reps}, {len(pairs)} Tang pairs, "
            f"{label} {dtype}, {where}); per-example agreement "
            f"{worst:.1e} ({'within' if ok else 'OUTSIDE'} {AGREEMENT:g})"
        )
        if args.profile and cuda:
            profile(model, tokenizer, pairs, bs, args.max_length)
        if args.fused_experiment and cuda:
            from playground.generation.fast_decode import _fused_ops

            with _fused_ops(model):
                timed(perplexity, model, reps=1, batch_size=bs)  # compiles for this batch's shapes
                fused, t_fused = timed(perplexity, model, batch_size=bs)
            print(
                f"[{dtype}] experiment, RMSNorm and rotary compiled: {t_fused:.3f} s ({timed.spread}), "
                f"{t_loop / t_fused:.1f}x, largest per-example difference {_worst(looped, fused):.1e}",
                flush=True,
            )
        lines.append(
            f"gpu_perplexity, prefix run per example: {t_loop / best_unshared[1]:.1f}x (batching alone, batch "
            f"size {best_unshared[0]}, same loop, data and model)"
        )
        if args.fp32_reference and dtype != "fp32":
            lines.append(fp32_reference(model, timed, looped, batched, bs, dtype))
        del model
        if cuda:
            torch.cuda.empty_cache()
    print()
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
