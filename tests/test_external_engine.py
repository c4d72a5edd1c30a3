"""PLAYGROUND_ENGINE_URL: generation on an external OpenAI-compatible engine, against a real
`transformers serve` process and against a second playground's own /v1 API."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import httpx
import pytest

from playground.generation import DecodingSettings, stream_generate
from playground.generation.compare import RowRequest, generate_rows
from tests.api_server import free_port, serve
from tests.helpers import wait_for

GREEDY = DecodingSettings(do_sample=False, max_new_tokens=8)


def _remote_context(monkeypatch, url: str, model: str | None, load: str):
    from playground.context import AppContext
    from playground.models import LoadOptions

    monkeypatch.setenv("PLAYGROUND_ENGINE_URL", url)
    if model:
        monkeypatch.setenv("PLAYGROUND_ENGINE_MODEL", model)
    ctx = AppContext()
    monkeypatch.delenv("PLAYGROUND_ENGINE_URL")
    monkeypatch.delenv("PLAYGROUND_ENGINE_MODEL", raising=False)
    ctx.models.load(load, LoadOptions(precision="fp32"))
    return ctx


def _local_greedy(loaded, prompt: str, settings: DecodingSettings) -> str:
    *_, last = stream_generate(loaded, prompt, settings)
    return last.text


def test_generation_goes_to_another_playgrounds_api(tiny_llama, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(tiny_llama.parent))
    engine = serve(tiny_llama)  # the external engine: a second app, its own /v1 API
    try:
        ctx = _remote_context(monkeypatch, engine.base_url, engine.model, str(tiny_llama))
        loaded = ctx.models.current
        updates = list(stream_generate(loaded, "the cat sat", GREEDY))
        expected = _local_greedy(engine.ctx.models.current, "the cat sat", GREEDY)
        assert updates[-1].finished and updates[-1].text == expected
        assert updates[-1].new_tokens == 8 and updates[-1].reason == "length"
        assert any("external engine" in u.queue for u in updates[:-1])
        # The request really ran over there: this app's own engine never started.
        assert "_engine" not in loaded.__dict__ and engine.ctx.models.current.__dict__["_engine"].steps > 0
        stop = expected[3:5]
        *_, cut = stream_generate(loaded, "the cat sat", GREEDY.with_(stop=(stop,)))
        # Cut at the stop string (by the engine, which honours `stop`, or here for one that does not).
        assert cut.text == expected[: expected.index(stop)] and cut.reason in ("eos", "stop string")
        # Side-by-side columns go there too, each with its own settings.
        sampled = DecodingSettings(temperature=1.0, max_new_tokens=6)
        rows = generate_rows(loaded, [RowRequest("the cat sat", GREEDY, 0), RowRequest("hello", sampled, 3)])
        assert rows[0].text == expected
        assert rows[1].text == _local_greedy(engine.ctx.models.current, "hello", sampled.with_(seed=3))
        from playground.ui.model_bar import model_status

        assert engine.base_url in model_status(ctx)
        with pytest.raises(Exception, match="not available with the external engine"):
            list(stream_generate(loaded, "x", GREEDY, adapter="any"))
    finally:
        engine.demo.close()


@pytest.fixture
def transformers_serve(embedded_model):
    """`transformers serve` on the embedded model's converted folder, offline, on a free port."""
    cli = shutil.which("transformers") or os.path.join(os.path.dirname(os.sys.executable), "transformers")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [cli, "serve", embedded_model.source, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, "transformers serve exited"
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=180, every=0.5)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_streams_from_transformers_serve(transformers_serve, monkeypatch):
    from playground.models import EMBEDDED_KEY

    ctx = _remote_context(monkeypatch, transformers_serve, None, EMBEDDED_KEY)
    loaded = ctx.models.current
    prompt = loaded.default_template.render_conversation(
        [], "What is the capital of France?", None, loaded.tokenizer
    )
    settings = DecodingSettings(do_sample=False, max_new_tokens=12)
    updates = list(stream_generate(loaded, prompt, settings, threading.Event()))
    assert len(updates) > 2 and updates[-1].finished  # streamed piece by piece
    assert "Paris" in updates[-1].text
    assert "_engine" not in loaded.__dict__  # nothing was generated in this process
