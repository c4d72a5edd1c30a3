"""Command line: `python -m playground eval ...`, `... train ...` and `... export ...`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground")
    commands = parser.add_subparsers(dest="command", required=True)

    from playground.evaluation import cli as eval_cli

    eval_parser = commands.add_parser(
        "eval", help="evaluate a model on a data set; results go to the leaderboard"
    )
    eval_cli.add_arguments(eval_parser)
    eval_parser.set_defaults(run=eval_cli.main)

    from playground.training import cli as train_cli

    train_parser = commands.add_parser("train", help="train a LoRA/QLoRA adapter")
    train_cli.add_arguments(train_parser)
    train_parser.set_defaults(run=train_cli.main)

    from playground.training import export_cli

    export_parser = commands.add_parser("export", help="zip, merge or push a trained adapter")
    export_cli.add_arguments(export_parser)
    export_parser.set_defaults(run=export_cli.main)

    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
