"""`python -m playground export ADAPTER (--zip | --merge [FOLDER] | --push user/name)`."""

from __future__ import annotations

import argparse
import os
import sys

from playground.errors import PlaygroundError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter", help="an adapter name (in the adapters folder) or folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--zip", action="store_true", help="a zip of the PEFT folder, with a model card")
    what.add_argument(
        "--merge", nargs="?", const="", metavar="FOLDER", help="fold it into its base model and save"
    )
    what.add_argument("--push", metavar="USER/NAME", help="upload the adapter to a Hub repository")
    parser.add_argument("--token", help="Hub write token (default: $HF_TOKEN)")


def main(args: argparse.Namespace) -> int:
    from playground.training import export

    try:
        if args.zip:
            print(export.adapter_zip(args.adapter))
        elif args.merge is not None:
            print(export.merged_model(args.adapter, args.merge or None))
        else:
            folder = export.resolve_adapter(args.adapter)
            print(export.push_to_hub(folder, args.push, args.token or os.environ.get("HF_TOKEN")))
    except PlaygroundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
