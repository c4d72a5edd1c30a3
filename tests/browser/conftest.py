"""Real-browser tests: the app runs in this process, Debian's chromium drives it headless."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("PLAYGROUND_REQUIRE_BROWSER"):
            pytest.fail(f"chromium not found at {CHROMIUM}; install Debian's chromium package")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The playground on the embedded model, launched once for all browser tests."""
    data = tmp_path_factory.mktemp("browser-data")
    os.environ["PLAYGROUND_DATA_DIR"] = str(data / "data")
    os.environ["PLAYGROUND_ADAPTERS_DIR"] = str(data / "adapters")
    from playground.context import AppContext
    from playground.models import EMBEDDED_KEY
    from playground.ui.app import build_app, launch_kwargs

    ctx = AppContext()
    ctx.models.load(EMBEDDED_KEY)
    demo = build_app(ctx)
    demo.queue(default_concurrency_limit=4, max_size=64)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, **launch_kwargs(ctx=ctx))
    yield ctx, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(autouse=True)
def _browser_dirs(app_server, monkeypatch):
    """Browser tests share the app's folders instead of per-test ones."""
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", os.environ["PLAYGROUND_DATA_DIR"])


@pytest.fixture
def page(browser, app_server, request):
    ctx, url = app_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#model-status")
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    if not page.is_closed():  # a test may close its tab on purpose
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def make_adapter(app_server):
    """Writes a LoRA adapter for the embedded model into the app's adapters folder, as training would
    (playground.json with its base model and template), without a training run."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model

    from playground.models import EMBEDDED_KEY, load_model
    from playground.paths import adapters_dir

    base = load_model(EMBEDDED_KEY)  # a copy of its own: peft changes the model it wraps
    peft_model = get_peft_model(
        base.model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    )

    def make(name: str, template: str = "alpaca", system: str | None = None) -> Path:
        with torch.no_grad():
            for param_name, param in peft_model.named_parameters():
                if "lora_B" in param_name:
                    param.normal_(0, 0.02)
        folder = adapters_dir() / name
        peft_model.save_pretrained(folder)
        meta = {
            "base_model": EMBEDDED_KEY,
            "name": name,
            "created": "2026-01-01T00:00:00+00:00",
            "settings": {"template": template, "system": system},
        }
        (folder / "playground.json").write_text(json.dumps(meta), encoding="utf-8")
        return folder

    return make
