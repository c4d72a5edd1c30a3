"""Explorer generation (each step's top candidates kept) against plain generation, same engine.

    python bench/explorer_overhead.py                                  # CPU, embedded model
    python3 bench/explorer_overhead.py --device cuda --shape llama     # GPU, 7B-shaped random weights

Both paths are rows of the one generation engine on the same prompt, greedy, 128 new tokens
(eos is held back until then, so both always decode 128); the explorer row is
`explorer.explore` (Request.keep_top = 64: top-64 logits and ids, logsumexp, entropy and the
after-processor numbers per step). Runs alternate plain / explorer after warm-up, and the
medians are compared. Imports nothing of the UI (the GPU machine has no gradio).
Ends with `explorer_overhead: <ratio>x (...)`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = "Write a short story about a robot learning to paint, in the style of a Tang poem."


def load(args: argparse.Namespace):
    from playground.models import LoadOptions, load_model

    if args.shape:
        from bench._gpu_models import LABELS, ensure_saved

        root = Path(args.root)
        root.mkdir(parents=True, exist_ok=True)
        loaded = load_model(str(ensure_saved(args.shape, root)), LoadOptions(precision=args.precision))
        return loaded, LABELS[args.shape]
    return load_model(args.model, LoadOptions(precision=args.precision)), args.model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", default="smollm2-135m-instruct", help="preset, folder or hub id")
    parser.add_argument("--shape", help="instead of --model: a random-weight shape of bench/_gpu_models.py")
    parser.add_argument("--root", default=".gpu/models", help="where --shape models are saved")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--keep", type=int, default=64, help="candidates kept per step")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    args = parser.parse_args()

    import torch

    from playground.explorer.explore import explore
    from playground.generation.engine import Request, engine_for
    from playground.generation.settings import GREEDY
    from playground.generation.stream import encode_prompt

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no GPU is visible", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    loaded, label = load(args)
    device = loaded.model.device
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} thread(s)"
    )
    print(f"torch {torch.__version__}, {where}; {label} ({loaded.dtype})")
    # Both rows decode exactly --tokens tokens: eos is held back until then.
    loaded.model.generation_config.min_new_tokens = args.tokens
    settings = GREEDY.with_(max_new_tokens=args.tokens)
    ids = encode_prompt(loaded, PROMPT)["input_ids"][0].tolist()
    engine = engine_for(loaded)
    print(f"engine cache: {engine.cache_choice}; prompt {len(ids)} tokens, {args.tokens} new, greedy")

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def plain() -> int:
        return len(engine.submit(Request(list(ids), settings)).result().ids)

    def explorer() -> int:
        return len(explore(loaded, PROMPT, settings, keep_top=args.keep).ids)

    times: dict[str, list[float]] = {"plain": [], "explorer": []}
    for run in range(args.warmup + args.runs):
        for name, fn in (("plain", plain), ("explorer", explorer)):
            sync()
            t0 = time.perf_counter()
            n = fn()
            sync()
            seconds = time.perf_counter() - t0
            if n != args.tokens:
                print(f"error: {name} decoded {n} tokens, not {args.tokens}", file=sys.stderr)
                return 1
            if run >= args.warmup:
                times[name].append(seconds)
            tag = "warm-up" if run < args.warmup else f"run {run - args.warmup + 1}"
            print(f"{tag:8s} {name:8s} {seconds:7.3f} s  ({n / seconds:6.1f} tokens/s)", flush=True)
    plain_s, explorer_s = (statistics.median(times[k]) for k in ("plain", "explorer"))
    ratio = explorer_s / plain_s
    print(f"median plain {plain_s:.3f} s, explorer {explorer_s:.3f} s over {args.runs} runs")
    place = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"explorer_overhead: {ratio:.2f}x (explorer vs plain generation, {args.tokens} greedy tokens, "
        f"top-{args.keep} kept, {label}, {place})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
