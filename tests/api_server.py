"""The real app (Blocks, middleware and the /v1 API) served in a thread on a free port, for tests
that talk to it over HTTP as clients do."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    ctx: Any
    demo: Any
    base_url: str  # http://127.0.0.1:PORT/v1

    @property
    def model(self) -> str:
        return self.ctx.models.current.name

    def client(self, key: str = "none", **kwargs: Any) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=120, **kwargs)


def serve(model: str | Path) -> Served:
    """Load `model` into a new app context (deployment and keys from the environment) and serve it."""
    from playground.context import AppContext
    from playground.models import LoadOptions
    from playground.ui.app import build_app, configure_queue, launch_kwargs

    ctx = AppContext()
    ctx.models.load(str(model), LoadOptions(precision="fp32"))
    demo = build_app(ctx)
    configure_queue(demo)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **launch_kwargs(ctx=ctx),
    )
    return Served(ctx, demo, f"http://127.0.0.1:{port}/v1")
