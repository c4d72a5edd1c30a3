"""A chat on a playground whose generation runs on an external engine (PLAYGROUND_ENGINE_URL):
here the browser tests' own app, through its OpenAI-compatible /v1 API."""

from __future__ import annotations

import re

import pytest

from tests.api_server import free_port


@pytest.fixture
def remote_page(browser, app_server, monkeypatch):
    from playground.context import AppContext
    from playground.models import EMBEDDED_KEY
    from playground.ui.app import build_app, configure_queue, launch_kwargs

    engine_ctx, engine_url = app_server
    monkeypatch.setenv("PLAYGROUND_ENGINE_URL", f"{engine_url}v1")
    monkeypatch.setenv("PLAYGROUND_ENGINE_MODEL", engine_ctx.models.current.name)
    ctx = AppContext()
    ctx.models.load(EMBEDDED_KEY)
    demo = configure_queue(build_app(ctx))
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs()
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"http://127.0.0.1:{port}/")
    yield page, ctx, engine_ctx, f"{engine_url}v1"
    context.close()
    demo.close()


def test_chat_answers_from_the_external_engine(remote_page):
    page, ctx, engine_ctx, url = remote_page
    page.locator("#model-status").get_by_text(f"external engine at {url}").wait_for()
    engine = engine_ctx.models.current
    steps_before = engine.__dict__["_engine"].steps if "_engine" in engine.__dict__ else 0
    box = page.locator("#chat-input textarea")
    box.fill("What is the capital of France?")
    box.press("Enter")
    page.locator("#chat-stats").get_by_text(re.compile(r"· done ·")).wait_for(timeout=180_000)
    answer = page.locator("#chatbot [data-testid='bot']").last.inner_text()
    assert answer.strip()
    # Generated over there, by the other app's engine; nothing ran in this app's own.
    assert engine.__dict__["_engine"].steps > steps_before
    assert "_engine" not in ctx.models.current.__dict__
