"""Builds the whole Blocks app from the tab modules."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from playground.context import AppContext
from playground.identity import Deployment
from playground.limits import Limits, current_limits
from playground.login_throttle import LoginThrottle
from playground.paths import exports_dir
from playground.ui.arena import build_arena_tab
from playground.ui.chat import build_chat_tab
from playground.ui.compare import build_compare_tab
from playground.ui.fair_queue import install_fair_queue
from playground.ui.i18n import I18N, LANGUAGES, t, text
from playground.ui.i18n.language import SWITCH_SCRIPT, LanguageMiddleware, switch_html
from playground.ui.leaderboard import build_leaderboard_tab
from playground.ui.login_guard import LoginGuard
from playground.ui.model_bar import build_model_bar
from playground.ui.prompt_lab import build_prompt_lab_tab
from playground.ui.training import build_training_tab

TITLE = "LLM playground"
CSS = """
.masked-token { color: #9ca3af; }
footer { display: none !important; }
.language-switch { text-align: right; font-size: 0.9em; }
"""

# (tab label's catalogue key, tab id, builder). Each builder lays out one tab inside an open gr.Tab.
TABS: list[tuple[str, str, Callable[[AppContext], None]]] = [
    ("app.tab.chat", "chat", build_chat_tab),
    ("app.tab.prompt_lab", "prompt-lab", build_prompt_lab_tab),
    ("app.tab.compare", "compare", build_compare_tab),
    ("app.tab.arena", "arena", build_arena_tab),
    ("app.tab.training", "training", build_training_tab),
    ("app.tab.leaderboard", "leaderboard", build_leaderboard_tab),
]


def build_app(ctx: AppContext) -> gr.Blocks:
    # Gradio's upload cache: files older than a day go, checked every hour.
    with gr.Blocks(title=TITLE, delete_cache=UPLOAD_CACHE_CLEANUP) as demo:
        gr.HTML(switch_html(), elem_id="language-switch")
        gr.Markdown(t("app.heading"), elem_id="app-title")
        gr.Markdown(t("app.subtitle"))
        gr.Markdown(deployment_note(ctx.deployment), elem_id="deployment-note")
        bar = build_model_bar(ctx)
        with gr.Tabs():
            for label, tab_id, build in TABS:
                with gr.Tab(t(label), id=tab_id):
                    if build is build_chat_tab:
                        build_chat_tab(ctx, bar.chat_adapter)
                    else:
                        build(ctx)
    return demo


def deployment_note(deployment: Deployment) -> Any:
    if not deployment.shared:
        return t("app.deployment.single")
    if not deployment.login:
        return t("app.deployment.anonymous")
    return t("app.deployment.login")


def auth_message() -> str:
    """The login page shows this HTML as it is (gradio does not translate it): every language."""
    return "<br>".join(text(lang, "app.auth_message") for lang in LANGUAGES)


UPLOAD_CACHE_CLEANUP = (3600, 86400)
QUEUE_SIZE = 64
MAX_UPLOAD = "200mb"  # the data loader's own limit; bigger uploads are refused before they land


def auth_from_env(value: str | None = None) -> list[tuple[str, str]] | None:
    """PLAYGROUND_AUTH="alice:secret,bob:other" turns on login for shared deployments."""
    value = os.environ.get("PLAYGROUND_AUTH", "") if value is None else value
    pairs = []
    for item in filter(None, (x.strip() for x in value.split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise ValueError("PLAYGROUND_AUTH must look like user:password[,user2:password2]")
        pairs.append((user, password))
    return pairs or None


def configure_queue(demo: gr.Blocks, limits: Limits | None = None) -> gr.Blocks:
    """The queue app.py runs with: bounded, with fair turns on the model in a shared deployment."""
    limits = limits or current_limits()
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    install_fair_queue(demo, limits.model_requests)
    return demo


def launch_kwargs(throttle: LoginThrottle | None = None, ctx: AppContext | None = None) -> dict:
    """gradio's launch options; with `ctx`, the OpenAI-compatible API (/v1) is served beside the page."""
    from playground.api import api_routes

    return {
        "app_kwargs": {
            # Starlette routes the server checks before gradio's own: the API under /v1.
            "routes": api_routes(ctx) if ctx is not None else [],
            "middleware": [
                # The page's language switch (outermost, so the login page follows it too).
                Middleware(LanguageMiddleware),
                # Throttles failed logins; keeps the API description out of the logged-out login page.
                Middleware(LoginGuard, throttle=throttle or LoginThrottle()),
            ],
        },
        "theme": gr.themes.Soft(),
        "css": CSS,
        "max_file_size": MAX_UPLOAD,
        # Only the exports folder is served (CSV/JSON downloads); never the database or uploads.
        "allowed_paths": [str(exports_dir())],
        "auth": auth_from_env(),
        "auth_message": auth_message(),
        "i18n": I18N,
        "head": SWITCH_SCRIPT,
    }
