"""Builds the whole Blocks app from the tab modules."""

from __future__ import annotations

import os
from collections.abc import Callable

import gradio as gr
from starlette.middleware import Middleware

from playground.context import AppContext
from playground.paths import exports_dir
from playground.ui.chat import build_chat_tab
from playground.ui.compare import build_compare_tab
from playground.ui.i18n import I18N, t
from playground.ui.i18n.language import SWITCH_SCRIPT, LanguageMiddleware, switch_html
from playground.ui.leaderboard import build_leaderboard_tab
from playground.ui.model_bar import build_model_bar, model_status
from playground.ui.prompt_lab import build_prompt_lab_tab
from playground.ui.training import build_training_tab

TITLE = "LLM playground"
CSS = """
.masked-token { color: #9ca3af; }
footer { display: none !important; }
.language-switch { text-align: right; font-size: 0.9em; }
"""

# (tab label, tab id, builder). Each builder lays out one tab inside an open gr.Tab.
TABS: list[tuple[str, str, Callable[[AppContext], None]]] = [
    ("Chat", "chat", build_chat_tab),
    ("Prompt lab", "prompt-lab", build_prompt_lab_tab),
    ("Side by side", "compare", build_compare_tab),
    ("Training", "training", build_training_tab),
    ("Leaderboard", "leaderboard", build_leaderboard_tab),
]


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.HTML(switch_html(), elem_id="language-switch")
        gr.Markdown(t("app.heading"), elem_id="app-title")
        gr.Markdown(t("app.subtitle"))
        status = build_model_bar(ctx)
        with gr.Tabs():
            for label, tab_id, build in TABS:
                with gr.Tab(label, id=tab_id):
                    build(ctx)
        demo.load(lambda: model_status(ctx), None, status, queue=False)
    return demo


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


def launch_kwargs() -> dict:
    return {
        "theme": gr.themes.Soft(),
        "css": CSS,
        "max_file_size": MAX_UPLOAD,
        # Only the exports folder is served (CSV/JSON downloads); never the database or uploads.
        "allowed_paths": [str(exports_dir())],
        "auth": auth_from_env(),
        "auth_message": "This playground is shared: log in with the account you were given.",
        "i18n": I18N,
        "head": SWITCH_SCRIPT,
        "app_kwargs": {"middleware": [Middleware(LanguageMiddleware)]},
    }
