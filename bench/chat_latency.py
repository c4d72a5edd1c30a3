"""Chat latency on the embedded model: cold start, warm start, time to first token, tokens/s.

Cold start converts the GGUF into a fresh cache folder (what a first `make run` does);
warm start loads the cached safetensors (every later start). Run: python bench/chat_latency.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()

    from playground.generation import GREEDY, stream_generate
    from playground.models import EMBEDDED_KEY, LoadOptions, load_model

    cold = None
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["PLAYGROUND_CACHE_DIR"] = tmp
            t = time.perf_counter()
            load_model(EMBEDDED_KEY)
            cold = time.perf_counter() - t
        os.environ.pop("PLAYGROUND_CACHE_DIR")
    load_model(EMBEDDED_KEY)  # make sure the default cache exists before timing warm starts
    t = time.perf_counter()
    loaded = load_model(EMBEDDED_KEY)
    warm = time.perf_counter() - t

    prompt = loaded.default_template.render(
        "Write a short story about a robot learning to paint.", tokenizer=loaded.tokenizer
    )
    settings = GREEDY.with_(max_new_tokens=args.new_tokens)
    results = {}
    for precision in ("bf16", "fp32"):
        model = load_model(EMBEDDED_KEY, LoadOptions(precision=precision))
        list(stream_generate(model, prompt, settings.with_(max_new_tokens=8)))  # warm-up
        ttfts, rates = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            first = None
            for update in stream_generate(model, prompt, settings):
                if first is None and update.new_tokens > 0:
                    first = time.perf_counter() - start
            ttfts.append(first)
            rates.append(update.tokens_per_s)
        results[precision] = (min(ttfts), max(rates), update.new_tokens)

    where = f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads default"
    if cold is not None:
        print(f"cold start (GGUF -> safetensors conversion + load): {cold:.1f} s")
    print(f"warm start (cached safetensors): {warm:.2f} s")
    for precision, (ttft, rate, n) in results.items():
        print(
            f"{precision}: time to first token {ttft * 1000:.0f} ms, {rate:.1f} tokens/s ({n} new tokens, greedy)"
        )
    speedup = results["bf16"][1] / results["fp32"][1]
    print(f"decode bf16 vs fp32: {speedup:.2f}x")
    if cold is not None:
        print(
            f"chat_latency: {cold / warm:.1f}x (cold GGUF-converting start vs warm cached start, SmolLM2-135M, {where})"
        )
    else:
        print(f"chat_latency: {speedup:.2f}x (bf16 vs fp32 decode tokens/s, SmolLM2-135M, {where})")


if __name__ == "__main__":
    main()
