"""Start the playground: `python app.py` (see README for options)."""

from __future__ import annotations

import argparse
import logging
import os

from playground.context import AppContext
from playground.identity import Deployment
from playground.models import EMBEDDED_KEY
from playground.ui.app import build_app, configure_queue, launch_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description="LLM playground")
    parser.add_argument("--model", default=os.environ.get("PLAYGROUND_MODEL", EMBEDDED_KEY))
    parser.add_argument("--no-preload", action="store_true", help="start without loading a model")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    deployment = Deployment.from_env(args.host)
    if deployment.shared:
        # Training workers and every limit read this: they apply the shared deployment's rules too.
        os.environ["PLAYGROUND_SHARED"] = "1"
    ctx = AppContext(deployment=deployment)
    try:
        kwargs = launch_kwargs(ctx=ctx)
    except ValueError as exc:  # a malformed PLAYGROUND_AUTH or PLAYGROUND_API_KEYS: say so, no traceback
        raise SystemExit(f"error: {exc}") from None
    if not args.no_preload:
        print(f"Loading {args.model} (the first start converts the embedded model, ~25 s)...", flush=True)
        ctx.models.load(args.model)
        print(ctx.models.current.model_summary(), flush=True)
    demo = build_app(ctx)
    configure_queue(demo)
    demo.launch(server_name=args.host, server_port=args.port, **kwargs)


if __name__ == "__main__":
    main()
