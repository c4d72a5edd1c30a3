"""Bench: four sampling columns in one batched call against one column alone, and four separate calls.

    python bench/compare_grid.py [--model smollm2-135m-instruct | --shape llama] [--precision auto]
                                 [--max-new 64] [--reps 3] [--generate-reps 1] [--int4]

Every side runs through `compare_columns`, the side-by-side tab's service: on a GPU that is the
batched CUDA-graph loop (fast_decode.decode_rows), elsewhere `generate()` with the per-row
processor. Both sides generate the same number of tokens per column (eos is held off until max
new tokens, so that an early stop on one side cannot flatter it). Times are medians of `--reps`.
On a GPU, one column is also timed in chat's one-row loop (the fastest single-column run),
`--generate-reps` times the `generate()` path (PLAYGROUND_FAST_DECODE=0) for reference, and a
greedy column's token ids are checked against the same column alone, chat and generate().
`--int4` is `--precision int4`: PyTorch's int4 weight-only kernel (playground/models/int4.py).
Ends with one line:
`compare_grid: <ratio>x (4 sampling columns: separate runs vs one batched call, ...); the grid takes
<r>x the time of one column`, where one column's time is its fastest single-column run (on a GPU,
chat's one-row loop when that beats the service's one-column call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

INSTRUCTION = "以下是一首唐詩的第一句話，請用你的知識判斷並完成整首詩。"
INPUT = "相見時難別亦難，"


@contextmanager
def generate_path():
    """compare_columns and chat without the fast loops: plain generate(), as before them."""
    from playground.generation.fast_decode import ENV_SWITCH

    old = os.environ.get(ENV_SWITCH)
    os.environ[ENV_SWITCH] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[ENV_SWITCH]
        else:
            os.environ[ENV_SWITCH] = old


def agreement(a: list[int], b: list[int]) -> str:
    if a == b:
        return f"identical ({len(a)} tokens)"
    same = next(i for i, (x, y) in enumerate(zip(a + [-1], b + [-2])) if x != y)
    return f"first {same} of {len(a)}/{len(b)} tokens identical"


@contextmanager
def ids_as_text():
    """compare_columns' texts become the token ids (the random models' ids mostly decode to nothing)."""
    from playground.generation import compare

    real = compare.decode_new
    compare.decode_new = lambda tok, ids: " ".join(str(i) for i in ids.tolist())
    try:
        yield
    finally:
        compare.decode_new = real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="a preset or local folder (default: the embedded model)"
    )
    parser.add_argument(
        "--shape", default=None, help="a 7B shape from bench/_gpu_models.py instead of --model"
    )
    parser.add_argument("--root", default="/tmp/gpu-models", help="where --shape models are saved")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--generate-reps", type=int, default=1, help="GPU only; 0 skips the generate() path")
    parser.add_argument("--int4", action="store_true", help="the same as --precision int4 (tinygemm)")
    args = parser.parse_args()

    import torch

    from playground.generation import GREEDY
    from playground.generation.compare import Column, compare_columns
    from playground.generation.settings import DecodingSettings
    from playground.models import EMBEDDED_KEY, LoadOptions, load_model

    model = args.model or EMBEDDED_KEY
    if args.shape:
        from bench._gpu_models import ensure_saved

        model = str(ensure_saved(args.shape, Path(args.root)))
    precision = "int4" if args.int4 else args.precision
    loaded = load_model(model, LoadOptions(precision=precision))
    cuda = loaded.device != "cpu"
    print(f"loaded {loaded.model_summary()}", flush=True)
    for note in loaded.notes:
        print(f"  note: {note}", flush=True)
    label = "int4 tinygemm" if precision == "int4" else f"{loaded.dtype}, precision {precision}"
    gen = loaded.model.generation_config
    prompt = loaded.default_template.render(INSTRUCTION, INPUT, tokenizer=loaded.tokenizer)
    base = DecodingSettings(max_new_tokens=args.max_new, seed=0)
    columns = [
        Column("T 0.7, top-p 0.9", base.with_(temperature=0.7, top_p=0.9)),
        Column("T 1.2, top-k 10, top-p 0.9", base.with_(temperature=1.2, top_k=10, top_p=0.9)),
        Column("T 0.1, top-p 0.3", base.with_(temperature=0.1, top_p=0.3, top_k=0)),
        Column("T 1.0, top-p 0.95, top-k 40", base.with_(temperature=1.0, top_p=0.95, top_k=40)),
    ]

    def run(cols) -> tuple[float, int]:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = sum(sum(r.new_tokens) for r in compare_columns(loaded, prompt, cols, seed=0))
        return time.perf_counter() - start, tokens

    def measure(reps: int, label: str) -> tuple[float, float, int]:
        """Median time of one column alone (mean over the four) and of the four in one call."""
        one, grid = [], []
        for rep in range(reps):
            alone = [run([c]) for c in columns]
            together = run(columns)
            one.append(statistics.mean(t for t, _ in alone))
            grid.append(together[0])
            tokens = together[1]
            print(
                f"{label} rep {rep + 1}: one column {one[-1]:.3f} s (mean of "
                f"{', '.join(f'{t:.3f}' for t, _ in alone)}), four in one call {grid[-1]:.3f} s "
                f"({sum(n for _, n in alone)} vs {tokens} new tokens)",
                flush=True,
            )
        return statistics.median(one), statistics.median(grid), tokens

    # Full-length rows on both sides: the comparison is of call overhead and batching, not of luck
    # in when each sample happens to stop.
    gen.min_new_tokens = args.max_new
    run(columns)  # warm-up: first calls pay for lazy initialisation (and, on a GPU, graph capture)
    for c in columns:
        run([c])
    one, grid, tokens = measure(args.reps, "service")
    lines = [
        f"median: one column {one:.3f} s ({args.max_new / one:.1f} tokens/s), four columns in one call "
        f"{grid:.3f} s ({tokens / grid:.1f} tokens/s): {grid / one:.2f}x the time of one column"
    ]
    if cuda and args.generate_reps > 0:
        with generate_path():
            g_one, g_grid, _ = measure(args.generate_reps, "generate()")
        lines.append(
            f"generate() path (before the batched loop): one column {g_one:.3f} s, four columns {g_grid:.3f} s "
            f"({g_grid / g_one:.2f}x); the service is {g_one / one:.1f}x / {g_grid / grid:.1f}x faster"
        )
    if cuda:
        from playground.generation.fast_decode import decode_tokens, eos_ids
        from playground.generation.stream import encode_prompt

        ids = encode_prompt(loaded, prompt)["input_ids"]

        def chat_ids(settings: DecodingSettings, eos: set[int]) -> list[int]:
            with torch.inference_mode():
                return list(decode_tokens(loaded.model, ids, settings, eos))

        chat_ids(columns[0].settings, set())
        times = []
        for _ in range(args.reps):
            torch.cuda.synchronize()
            start = time.perf_counter()
            chat_ids(columns[0].settings, set())  # no eos: the full max new tokens
            times.append(time.perf_counter() - start)
        chat_one = statistics.median(times)
        lines.append(
            f"one column in chat's one-row loop: {chat_one:.3f} s; the grid takes {grid / chat_one:.2f}x that"
        )
        gen.min_new_tokens = None
        greedy = Column("greedy", GREEDY.with_(max_new_tokens=args.max_new))
        with ids_as_text():
            in_grid = compare_columns(loaded, prompt, [greedy, *columns[:3]], seed=0)[0].texts[0]
            alone = compare_columns(loaded, prompt, [greedy], seed=0)[0].texts[0]
        in_grid, alone = [int(t) for t in in_grid.split()], [int(t) for t in alone.split()]
        eos = eos_ids(loaded.model, loaded.tokenizer)
        chat = chat_ids(greedy.settings, eos)
        with torch.inference_mode():
            out = loaded.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                **greedy.settings.generate_kwargs(),
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
        plain = out[0, ids.shape[1] :].tolist()
        plain = plain[: next((i + 1 for i, t in enumerate(plain) if t in eos), len(plain))]
        lines.append(
            f"greedy column in a 4-column grid vs alone: {agreement(alone, in_grid)}; alone vs chat: "
            f"{agreement(alone, chat)}; alone vs generate(): {agreement(alone, plain)}"
        )
    print("\n".join(lines))
    device = f"{torch.cuda.get_device_name()}, {label}" if cuda else f"cpu ({loaded.dtype})"
    # One column's baseline is its fastest single-column run: chat's one-row loop where it is faster.
    solo, solo_name = (chat_one, "chat's one-row loop") if cuda and chat_one < one else (one, "one column")
    print(
        f"compare_grid: {4 * solo / grid:.2f}x (4 sampling columns: 4 separate runs of {solo_name} vs one "
        f"batched call, {loaded.name}, {device}); the grid takes {grid / solo:.2f}x the time of one column"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
