"""Bench: batch-1 chat decoding on a GPU, the fast path (static cache + CUDA graph) vs generate().

    python bench/gpu_decode.py [--shapes llama,mistral] [--precisions bf16,4bit,int4] [--int4]

Builds 7B-shaped random-weight models once (bench/_gpu_models.py), loads them through
`load_model` (bitsandbytes NF4 for 4bit, PyTorch's tinygemm kernel for int4), and per model
measures greedy 128-token decoding: warm generate() (median of >= 3 full calls), HF's own
static cache + torch.compile, the fast loop through `stream_generate` (what chat uses now), and
default sampling. The headline ratio is against the faster of the two HF configurations. `--int4` adds the int4 precision
for the Llama shape (as if int4 were in --precisions there). Ends with one `gpu_decode:` line
per model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._gpu_models import LABELS, copy_bandwidth, ensure_saved, weight_bytes  # noqa: E402

PROMPT = "Write a short story about a robot learning to paint."


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _prompt_ids(loaded: Any) -> Any:
    from playground.generation.stream import encode_prompt

    prompt = loaded.default_template.render(PROMPT, tokenizer=loaded.tokenizer)
    return prompt, encode_prompt(loaded, prompt)


def time_generate(loaded: Any, n: int, runs: int, static: bool = False) -> dict[str, Any]:
    """HF generate() greedy, warm: the median of `runs` full calls after full-length warm-ups.

    `static=True` is HF's own fast recipe: a static cache, which generate() compiles with
    torch.compile (mode "reduce-overhead", i.e. CUDA graphs) on its own. The first timed call
    after a 4-token warm-up, as this bench timed generate() before, is kept as `first`.
    """
    import torch

    from playground.generation import GREEDY

    _, inputs = _prompt_ids(loaded)
    kw = GREEDY.with_(max_new_tokens=n).generate_kwargs()
    if static:
        kw["cache_implementation"] = "static"
    pad = loaded.tokenizer.pad_token_id

    def timed(tokens: int) -> tuple[float, list[int]]:
        _sync()
        t0 = time.perf_counter()
        out = loaded.model.generate(**inputs, **dict(kw, max_new_tokens=tokens), pad_token_id=pad)
        _sync()
        ids = out[0, inputs["input_ids"].shape[1] :].tolist()
        return len(ids) / (time.perf_counter() - t0), ids

    with torch.inference_mode():
        timed(4)
        first, _ = timed(n)
        # Compilation specialises on the cache length: two more full calls settle it.
        for _ in range(2 if static else 1):
            timed(n)
        rates, ids = [], []
        for _ in range(max(runs, 3)):
            rate, ids = timed(n)
            rates.append(rate)
    return {"rate": statistics.median(rates), "runs": rates, "first": first, "ids": ids}


def time_fast_loop(loaded: Any, n: int) -> tuple[float, float, list[int]]:
    """The bare fast loop: (first call seconds incl. capture, tokens/s of a later call, ids)."""
    import torch

    from playground.generation import GREEDY
    from playground.generation.fast_decode import decode_tokens, eos_ids

    _, inputs = _prompt_ids(loaded)
    settings = GREEDY.with_(max_new_tokens=n)
    eos = eos_ids(loaded.model, loaded.tokenizer)
    with torch.inference_mode():
        t0 = time.perf_counter()
        list(decode_tokens(loaded.model, inputs["input_ids"], settings, eos))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = list(decode_tokens(loaded.model, inputs["input_ids"], settings, eos))
        rate = len(ids) / (time.perf_counter() - t0)
    return first, rate, ids


def time_stream(loaded: Any, settings: Any, runs: int) -> tuple[float, float, int]:
    """The chat path (`stream_generate`): (median tokens/s, median time to first token, tokens)."""
    from playground.generation import stream_generate

    prompt, _ = _prompt_ids(loaded)
    rates, ttfts = [], []
    for _ in range(runs):
        start, first = time.perf_counter(), None
        for update in stream_generate(loaded, prompt, settings):
            if first is None and update.new_tokens > 0:
                first = time.perf_counter() - start
        rates.append(update.tokens_per_s)
        ttfts.append(first or 0.0)
    return statistics.median(rates), statistics.median(ttfts), update.new_tokens


def agreement(a: list[int], b: list[int]) -> str:
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if same == len(a) == len(b):
        return f"identical ({len(a)} tokens)"
    return f"first {same} of {len(a)}/{len(b)} tokens identical"


def bench_model(loaded: Any, label: str, args: argparse.Namespace, bandwidth: float) -> dict[str, Any]:
    from playground.generation import GREEDY, DecodingSettings

    n = args.new_tokens
    gib = weight_bytes(loaded.model) / (1 << 30)
    limit = bandwidth / weight_bytes(loaded.model)
    print(f"[{label}] weights {gib:.2f} GiB, bandwidth limit {limit:.0f} tokens/s", flush=True)
    nan = {"rate": float("nan"), "runs": [], "first": float("nan"), "ids": []}
    warm = time_generate(loaded, n, args.runs) if not args.skip_generate else nan
    gen_rate, gen_ids = warm["rate"], warm["ids"]
    print(
        f"[{label}] generate(), warm: {gen_rate:.1f} tokens/s median of "
        f"{', '.join(f'{r:.1f}' for r in warm['runs'])} ({len(gen_ids)} tokens); the first call "
        f"after a 4-token warm-up (this bench's old baseline): {warm['first']:.1f}",
        flush=True,
    )
    static = nan
    if not args.skip_generate and not args.skip_static:
        try:
            static = time_generate(loaded, n, args.runs, static=True)
        except Exception as exc:  # noqa: BLE001 - a baseline that cannot run is reported, not fatal
            print(f"[{label}] generate(static cache + torch.compile) failed: {type(exc).__name__}: {exc}")
    print(
        f"[{label}] generate(), static cache + torch.compile: {static['rate']:.1f} tokens/s median of "
        f"{', '.join(f'{r:.1f}' for r in static['runs'])}; greedy vs generate(): "
        f"{agreement(static['ids'], gen_ids)}",
        flush=True,
    )
    from playground.generation.fast_decode import FUSE_SWITCH

    os.environ[FUSE_SWITCH] = "0"
    first, plain_rate, plain_ids = time_fast_loop(loaded, n)
    os.environ.pop(FUSE_SWITCH)
    print(f"[{label}] fast loop, unfused graph: first call {first:.2f} s, then {plain_rate:.1f} tokens/s")
    print(f"[{label}] unfused greedy vs generate(): {agreement(plain_ids, gen_ids)}", flush=True)
    first, loop_rate, fast_ids = time_fast_loop(loaded, n)
    fused = getattr(getattr(loaded.model, "_playground_fast_decode", None), "fused", False)
    print(
        f"[{label}] fast loop, {'fused' if fused else 'UNFUSED (fusion failed)'} graph: first call {first:.2f} s "
        f"(compile + capture included), then {loop_rate:.1f} tokens/s"
    )
    print(f"[{label}] greedy vs generate(): {agreement(fast_ids, gen_ids)}", flush=True)
    chat_rate, ttft, got = time_stream(loaded, GREEDY.with_(max_new_tokens=n), args.runs)
    print(
        f"[{label}] chat (stream_generate) greedy: {chat_rate:.1f} tokens/s, first token {ttft * 1000:.0f} ms"
    )
    sample_rate, _, _ = time_stream(loaded, DecodingSettings(max_new_tokens=n, seed=0), 1)
    print(f"[{label}] chat sampling (T 0.7, top-p 0.9, top-k 50): {sample_rate:.1f} tokens/s", flush=True)
    return dict(
        label=label,
        gen=gen_rate,
        gen_first=warm["first"],
        static=static["rate"],
        loop=loop_rate,
        plain=plain_rate,
        chat=chat_rate,
        sample=sample_rate,
        ttft=ttft,
        first=first,
        limit=limit,
        gib=gib,
        agree=agreement(fast_ids, gen_ids),
    )


def check_oom_message(loaded: Any) -> str:
    """Fill the GPU, then chat: the user must get the clear message, not a traceback."""
    import torch

    from playground.errors import PlaygroundError
    from playground.generation import GREEDY, generate_text

    free, _ = torch.cuda.mem_get_info()
    filler = torch.empty(max(0, free - (64 << 20)), dtype=torch.uint8, device="cuda")
    loaded.model._playground_fast_decode = None  # a new cache must be allocated, and fail
    try:
        generate_text(loaded, _prompt_ids(loaded)[0], GREEDY.with_(max_new_tokens=512))
        return "no OOM happened (GPU not filled enough)"
    except PlaygroundError as exc:
        return f"clear message: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is the check
        return f"FAIL: {type(exc).__name__}: {exc}"
    finally:
        del filler
        torch.cuda.empty_cache()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="llama,mistral")
    parser.add_argument("--precisions", default="bf16,4bit")
    parser.add_argument("--int4", action="store_true", help="also load the Llama in int4 (tinygemm)")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", default="/tmp/gpu-models", help="where the random models are saved")
    parser.add_argument("--skip-generate", action="store_true")
    parser.add_argument("--skip-static", action="store_true", help="skip HF static cache + torch.compile")
    parser.add_argument("--oom-check", action="store_true")
    args = parser.parse_args()

    import logging

    import torch

    # The fast path logs why it is not used or fell back; a bench must show that.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from playground.models import LoadOptions, load_model
    from playground.models.loader import free

    cuda = torch.cuda.is_available()
    where = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"torch {torch.__version__}, {where}", flush=True)
    if not cuda:
        # CPU smoke run of this script: the fast path is CUDA-only, so let it run eagerly here.
        from playground.generation import fast_decode

        fast_decode.unsupported_reason = lambda *a, **k: None
    bandwidth = copy_bandwidth() if cuda else 50e9
    print(f"device-to-device copy: {bandwidth / 1e12:.2f} TB/s (read + write)", flush=True)
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    results = []
    for shape in args.shapes.split(","):
        t0 = time.perf_counter()
        folder = ensure_saved(shape, root)
        print(f"{LABELS[shape]}: model folder ready in {time.perf_counter() - t0:.0f} s", flush=True)
        precisions = args.precisions.split(",")
        if args.int4 and shape == "llama" and "int4" not in precisions:
            precisions.append("int4")
        for precision in precisions:
            t0 = time.perf_counter()
            # The CPU smoke run: no bitsandbytes there, but the int4 CPU kernel runs.
            chosen = precision if cuda or precision == "int4" else "fp32"
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            loaded = load_model(str(folder), LoadOptions(precision=chosen))
            peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else ""
            print(f"loaded {precision} in {time.perf_counter() - t0:.0f} s{peak}: {loaded.model_summary()}")
            for note in loaded.notes:
                print(f"  note: {note}")
            sys.stdout.flush()
            name = {"4bit": "NF4 (bitsandbytes)", "int4": "int4 tinygemm"}.get(precision, precision)
            results.append(bench_model(loaded, f"{LABELS[shape]}, {name}", args, bandwidth))
            if args.oom_check and cuda and precision == "4bit":
                print(f"OOM during chat: {check_oom_message(loaded)}", flush=True)
            free(loaded)
            del loaded
            if cuda:
                torch.cuda.empty_cache()

    print()
    print(
        f"{'model':40} {'gen cold':>8} {'gen warm':>8} {'static+c':>8} {'unfused':>8} {'fused':>8} "
        f"{'chat':>8} {'sampling':>9} {'limit':>7}"
    )
    for r in results:
        print(
            f"{r['label']:40} {r['gen_first']:8.1f} {r['gen']:8.1f} {r['static']:8.1f} {r['plain']:8.1f} "
            f"{r['loop']:8.1f} {r['chat']:8.1f} {r['sample']:9.1f} "
            f"{r['limit']:7.0f}   greedy vs generate(): {r['agree']}"
        )
    print("(gen cold: the old baseline, one call after a 4-token warm-up; gen warm: median of full warm")
    print(" calls; static+c: HF static cache + torch.compile, warm; all batch 1, greedy, tokens/s)")
    for r in results:
        # The headline is against the strongest of HF's own configurations (nan ones are skipped).
        baselines = {"warm generate()": r["gen"], "HF static cache + torch.compile": r["static"]}
        name, best = max(
            ((k, v) for k, v in baselines.items() if v == v),
            key=lambda kv: kv[1],
            default=("none", float("nan")),
        )
        print(
            f"gpu_decode: {r['chat'] / best:.2f}x (chat fast path vs {name}, batch 1 greedy "
            f"{args.new_tokens} tokens, {r['label']}, {where}): {r['chat']:.1f} vs {best:.1f} tokens/s; "
            f"{r['chat'] / r['gen']:.1f}x warm generate(); "
            f"{100 * r['chat'] / r['limit']:.0f}% of the {r['limit']:.0f} tokens/s bandwidth limit"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
