"""Bench: perplexity on a GPU, the batched service vs the homework's one-example loop.

    python bench/gpu_perplexity.py [--shape llama] [--n 128] [--batch-sizes 16,32,64] [--dtypes bf16]

A 7B-shaped random-weight model (bench/_gpu_models.py), homework-style Tang poem pairs (the
carried .gpu/tang256.json sample, else synthetic ones) and a char-level tokenizer. Both ways
score the same pairs; per-example perplexities must agree to 1e-3. Ends with one line per dtype:
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


def batched_at(model, timed, bs: int):
    from playground.evaluation.perplexity import perplexity

    return timed(perplexity, model, batch_size=bs)[0]


def fp32_reference(model, timed, looped, batched, bs: int, dtype: str) -> str:
    """Both ways again with the weights upcast to float32: is the gap batching or low precision?"""
    from playground.evaluation.perplexity import looped_perplexity, perplexity

    model.float()
    looped32, t_loop = timed(looped_perplexity, model)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama")
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--dtypes", default="bf16")
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument(
        "--fp32-reference",
        action="store_true",
        help="also score with the same weights in float32, to show how far each bf16 way is from it",
    )
    args = parser.parse_args()

    import torch

    from playground.evaluation.perplexity import looped_perplexity, perplexity

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    where = torch.cuda.get_device_name() if cuda else "CPU"
    tokenizer = tokenizer_for_bench()
    pairs = tang_pairs(args.n)
    lengths = [len(tokenizer(p + o)["input_ids"]) + 2 for p, o in pairs]
    print(
        f"torch {torch.__version__}, {where}; {len(pairs)} Tang pairs, tokens per example "
        f"mean {statistics.mean(lengths):.0f}, max {max(lengths)}",
        flush=True,
    )

    def timed(fn, model, **kwargs):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn(model, tokenizer, pairs, max_length=args.max_length, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        return result, time.perf_counter() - t0

    lines, failed = [], False
    for dtype in args.dtypes.split(","):
        torch_dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[dtype]
        t0 = time.perf_counter()
        model = build_model(args.shape, device=device, dtype=torch_dtype)
        print(f"[{dtype}] built {LABELS[args.shape]} in {time.perf_counter() - t0:.0f} s", flush=True)
        looped_perplexity(model, tokenizer, pairs[:2], args.max_length)  # warm-up
        perplexity(model, tokenizer, pairs[:8], batch_size=8, max_length=args.max_length)
        looped, t_loop = timed(looped_perplexity, model)
        print(f"[{dtype}] homework loop: {t_loop:.2f} s, mean ppl {looped.mean_perplexity:.4f}", flush=True)
        best = None
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            batched, t_batch = timed(perplexity, model, batch_size=bs)
            worst = max(
                abs(b.perplexity - a.perplexity) / a.perplexity
                for a, b in zip(looped.examples, batched.examples)
            )
            tokens_s = sum(lengths) / t_batch
            print(
                f"[{dtype}] batched, batch size {bs}: {t_batch:.3f} s ({tokens_s:,.0f} tokens/s), "
                f"{t_loop / t_batch:.1f}x, largest per-example difference {worst:.1e}",
                flush=True,
            )
            if best is None or t_batch < best[1]:
                best = (bs, t_batch, worst)
        bs, t_batch, worst = best
        ok = worst <= AGREEMENT
        failed |= not ok
        lines.append(
            f"gpu_perplexity: {t_loop / t_batch:.1f}x (batched service, batch size {bs}, vs homework one-example "
            f"loop, {len(pairs)} Tang pairs, {LABELS[args.shape]} {dtype}, {where}); per-example agreement "
            f"{worst:.1e} ({'within' if ok else 'OUTSIDE'} {AGREEMENT:g})"
        )
        if args.fp32_reference and dtype != "fp32":
            lines.append(fp32_reference(model, timed, looped, batched_at(model, timed, bs), bs, dtype))
        del model
        if cuda:
            torch.cuda.empty_cache()
    print()
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
