"""Bench: four sampling columns in one batched generate call against four separate calls.

    python bench/compare_grid.py [--model smollm2-135m-instruct] [--max-new 64] [--reps 3]

Both sides generate the same number of tokens per column (eos is held off until max new tokens,
so that an early stop on one side cannot flatter it). Ends with one line:
`compare_grid: <ratio>x (4 sampling columns: separate calls vs one batched call, <model>, <device>)`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

INSTRUCTION = "以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。"
INPUT = "相見時難別亦難，"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="a preset or local folder (default: the embedded model)"
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from playground.generation.batch import generate_batch
    from playground.generation.compare import Column, compare_columns
    from playground.generation.settings import DecodingSettings
    from playground.models import EMBEDDED_KEY, LoadOptions, load_model

    loaded = load_model(args.model or EMBEDDED_KEY, LoadOptions(precision=args.precision))
    print(f"loaded {loaded.describe()}")
    # Full-length rows on both sides: the comparison is of call overhead and batching, not of luck
    # in when each sample happens to stop.
    loaded.model.generation_config.min_new_tokens = args.max_new
    prompt = loaded.default_template.render(INSTRUCTION, INPUT, tokenizer=loaded.tokenizer)
    base = DecodingSettings(max_new_tokens=args.max_new, seed=0)
    columns = [
        Column("T 0.7, top-p 0.9", base.with_(temperature=0.7, top_p=0.9)),
        Column("T 1.2, top-k 10, top-p 0.9", base.with_(temperature=1.2, top_k=10, top_p=0.9)),
        Column("T 0.1, top-p 0.3", base.with_(temperature=0.1, top_p=0.3, top_k=0)),
        Column("T 1.0, top-p 0.95, top-k 40", base.with_(temperature=1.0, top_p=0.95, top_k=40)),
    ]

    def separate() -> int:
        return sum(generate_batch(loaded, [prompt], c.settings)[0][0].new_tokens for c in columns)

    def batched() -> int:
        return sum(sum(r.new_tokens) for r in compare_columns(loaded, prompt, columns, seed=0))

    separate()  # warm-up: first calls pay for lazy initialisation
    batched()
    times: dict[str, list[float]] = {"separate": [], "batched": []}
    tokens: dict[str, int] = {}
    for rep in range(args.reps):
        for name, fn in (("separate", separate), ("batched", batched)):
            start = time.perf_counter()
            tokens[name] = fn()
            times[name].append(time.perf_counter() - start)
        print(
            f"rep {rep + 1}: separate {times['separate'][-1]:.2f} s, batched {times['batched'][-1]:.2f} s "
            f"({tokens['separate']} vs {tokens['batched']} new tokens)"
        )
    sep, bat = statistics.median(times["separate"]), statistics.median(times["batched"])
    print(
        f"median: 4 separate calls {sep:.2f} s ({tokens['separate'] / sep:.1f} tokens/s), "
        f"one batched call {bat:.2f} s ({tokens['batched'] / bat:.1f} tokens/s)"
    )
    device = loaded.device if loaded.device != "cpu" else f"cpu ({loaded.dtype})"
    print(
        f"compare_grid: {sep / bat:.2f}x (4 sampling columns: separate calls vs one batched call, "
        f"{loaded.name}, {device})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
