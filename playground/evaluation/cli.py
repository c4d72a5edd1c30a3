"""`python -m playground eval ...`: evaluation from scripts and notebooks.

With --json the last line of stdout is one JSON object: metric means (mean_perplexity,
corpus_perplexity, rouge1..., accuracy), "std" per metric and "per_seed" rows.
"""

from __future__ import annotations

import argparse
import json
import sys

from tqdm.auto import tqdm

from playground.data import load_dataset
from playground.errors import PlaygroundError
from playground.evaluation.runner import METRIC_GROUPS, EvalConfig, evaluate, summarize
from playground.generation.settings import GREEDY
from playground.leaderboard import Leaderboard
from playground.models import LoadOptions, load_model
from playground.models.adapters import attach_adapter
from playground.number_lists import parse_number_list
from playground.prompts.fewshot import SELECTIONS, FewShotConfig, strategy_name
from playground.prompts.templates import resolve_template


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="preset, HF id or local folder")
    parser.add_argument("--adapter", help="adapter folder (PEFT, safetensors)")
    parser.add_argument("--data", required=True, help="test set: JSON, JSONL or CSV")
    parser.add_argument("--references", help="ground-truth text file, one answer per line")
    parser.add_argument(
        "--template", help="template name, or raw text with {instruction} and {input}, used as is"
    )
    parser.add_argument("--system", help="system text for the template")
    parser.add_argument("--shots", type=int, default=0, help="k in-context examples")
    parser.add_argument("--selection", choices=SELECTIONS, default="first")
    parser.add_argument("--example-template", help="format of one in-context example")
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 1,2,3")
    parser.add_argument("--train", help="file the in-context examples are drawn from (default: the test set)")
    parser.add_argument("--cot", action="store_true", help="chain of thought trigger")
    parser.add_argument(
        "--metrics", default="perplexity", help=f"comma-separated from {','.join(METRIC_GROUPS)}"
    )
    parser.add_argument("--limit", type=int, help="only the first N examples")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--no-store", action="store_true", help="do not write the runs to the leaderboard")
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    parser.add_argument(
        "--logprobs",
        type=int,
        metavar="N",
        help="with --json and a generation metric: each generated token's log-probability and N alternatives",
    )


def main(args: argparse.Namespace) -> int:
    try:
        seeds = tuple(parse_number_list(args.seeds, "--seeds"))
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        dataset = load_dataset(args.data, references=args.references)
        pool = load_dataset(args.train).examples if args.train else None
        fewshot = FewShotConfig(k=args.shots, selection=args.selection, cot=args.cot)
        if args.example_template:
            fewshot = FewShotConfig(**{**fewshot.to_dict(), "example_template": args.example_template})
        config = EvalConfig(
            metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()),
            fewshot=fewshot,
            seeds=seeds,
            limit=args.limit,
            batch_size=args.batch_size,
            decoding=GREEDY.with_(max_new_tokens=args.max_new_tokens),
            logprobs=args.logprobs,
        ).validate()
        loaded = load_model(args.model, LoadOptions(precision=args.precision))
        template = resolve_template(args.template, "", loaded.default_template, args.system)
        adapter = attach_adapter(loaded, args.adapter) if args.adapter else None
        board = None if args.no_store else Leaderboard()
        bar = tqdm(total=1000, desc="evaluating", file=sys.stderr, disable=None)

        def progress(fraction: float, desc: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_description(desc[:60])
            bar.refresh()

        outcomes = evaluate(
            loaded,
            dataset,
            template,
            config,
            pool=pool,
            leaderboard=board,
            adapter=adapter,
            progress=progress,
        )
        bar.close()
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = summarize(outcomes)
    summary.update(
        model=loaded.name,
        adapter=adapter,
        data=dataset.name,
        strategy=strategy_name(config.fewshot),
        shots=config.fewshot.k,
    )
    for o in outcomes:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in o.metrics.items())
        print(f"seed {o.seed}: {shown} ({o.seconds:.1f} s, run #{o.run_id})")
    if args.json:
        if config.logprobs is not None:
            summary["logprobs"] = [
                {"seed": o.seed, "examples": [[t.to_dict() for t in tokens] for tokens in o.logprobs or []]}
                for o in outcomes
            ]
        print(json.dumps(summary, ensure_ascii=False, default=str))
    return 0
