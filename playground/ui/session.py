"""What the UI knows about the person behind a request, and filling a page after login."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.context import Context

from playground.context import AppContext
from playground.identity import Owner


def owner_of(ctx: AppContext, request: gr.Request | None) -> Owner:
    """The logged-in user, or without login the browser session, behind `request`."""
    return ctx.deployment.owner(getattr(request, "username", None), getattr(request, "session_hash", None))


def on_page_load(fn: Callable[..., Any], inputs: Any = None, outputs: Any = None) -> None:
    """Run `fn` when a page opens, so lists of what users made are filled only for a logged-in page
    (an initial value would sit in the page config and the API description)."""
    root = Context.root_block
    if root is None:
        raise RuntimeError("on_page_load must be called while the app's Blocks are being built")
    root.load(fn, inputs, outputs, queue=False)
