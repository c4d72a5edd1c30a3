"""Does a greedy row decoded in a batch give the text it gives alone? Agreement, measured.

    python3 bench/engine_agreement.py --shape llama --precision bf16 --users 16   (GPU, 7B shape)
    .venv/bin/python bench/engine_agreement.py --precision fp32 --users 4        (CPU, embedded model)

Each of N prompts is decoded greedily alone (an engine of one row), then all N together (one
continuous batch: a shared left-padded prefill, then slot or padded steps). In fp32 the texts
must be equal; in bf16 a batch changes the shapes of the matrix products, so a near-tie between
two tokens can flip and the rows then part. Ends with `engine_agreement: <ratio>x (...)`: the
share of tokens that match the lone row's, before the first difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_load import SENTENCE  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--shape", help="instead of --model: a random-weight model of bench/_gpu_models.py")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--root", default="/tmp/gpu-models")
    args = parser.parse_args()

    import torch

    from playground.generation.engine import Engine, EngineLimits, Request
    from playground.generation.settings import GREEDY
    from playground.models import LoadOptions, load_model

    name = args.model
    if args.shape:
        from bench._gpu_models import ensure_saved

        name = str(ensure_saved(args.shape, Path(args.root)))
    loaded = load_model(name, LoadOptions(precision=args.precision))
    loaded.model.generation_config.min_new_tokens = args.new_tokens
    tok = loaded.tokenizer
    prompts = [
        tok(f"User {u}: " + SENTENCE * (1 + u % 5), add_special_tokens=False)["input_ids"][: 40 + 7 * u]
        for u in range(args.users)
    ]
    settings = GREEDY.with_(max_new_tokens=args.new_tokens)

    alone_engine = Engine(loaded, EngineLimits(max_rows=1))
    alone = [alone_engine.submit(Request(p, settings)).result().ids for p in prompts]
    alone_engine.close()
    batch_engine = Engine(loaded, EngineLimits(max_rows=max(16, args.users)))
    tickets = [batch_engine.submit(Request(p, settings)) for p in prompts]
    together = [t.result().ids for t in tickets]
    batch_engine.close()

    same_rows, agreeing = 0, 0
    for a, b in zip(alone, together, strict=True):
        prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        same_rows += a == b
        agreeing += prefix
    total = sum(len(a) for a in alone)
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"{same_rows} of {len(prompts)} rows equal alone; {agreeing} of {total} tokens before the first difference"
    )
    print(
        f"engine_agreement: {agreeing / total:.3f}x (greedy tokens in a batch of {len(prompts)} equal to the row "
        f"alone, before the first difference; {loaded.name}, {args.precision}, {where})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
