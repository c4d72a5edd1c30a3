"""An OpenAI-compatible HTTP API on the app's own server (no gradio here).

GET /v1/models, POST /v1/chat/completions (streaming as server-sent events) and
POST /v1/completions (logprobs, echo, token-id prompts), behind PLAYGROUND_API_KEYS; every
generation joins the same engine as the page's chat (playground/generation/engine.py).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute


def api_routes(ctx: Any) -> list[BaseRoute]:
    """The /v1 routes for one app's context, to hand to the server next to the page's."""
    from playground.api.routes import ApiServer

    return ApiServer(ctx).routes()
