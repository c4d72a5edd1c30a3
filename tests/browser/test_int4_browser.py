"""The int4 precision picked in the model bar: a model loads with int4 layers and chat answers."""

from __future__ import annotations

from playground.models import EMBEDDED_KEY
from tests.tiny_models import build_causal_lm


def test_int4_load_from_the_model_bar_and_chat(page, app_server, tmp_path):
    ctx, _ = app_server
    # Hidden size 128: every decoder layer fits the int4 kernel's groups of 128.
    folder = build_causal_lm(tmp_path / "int4-llama", hidden_size=128, intermediate_size=256)
    try:
        box = page.locator("#model-name input")
        box.fill(str(folder))
        box.press("Enter")
        page.get_by_label("int4 (fast 4-bit)").check()
        page.locator("#model-load").click()
        status = page.locator("#model-status")
        status.get_by_text(f"Loaded: {folder.name}").wait_for(timeout=60_000)
        assert "int4 weight-only" in status.inner_text()
        assert ctx.models.current.quantization.startswith("4-bit int4")
        assert type(ctx.models.current.model.model.layers[0].mlp.up_proj).__name__ == "Int4Linear"

        page.get_by_role("tab", name="Chat").click()
        # The tiny model's context is 256 tokens: 256 new ones would not fit, and the page says so.
        chat = page.locator("#chat-input textarea")
        chat.fill("Hello there")
        chat.press("Enter")
        page.get_by_text("exceeds the model's context").first.wait_for(timeout=60_000)
        max_new = page.locator("#chat-max-new input[type='number']")
        max_new.fill("16")
        max_new.blur()
        page.locator("#chat-regenerate").click()
        page.locator("#chat-stats").get_by_text("done").wait_for(timeout=60_000)
        assert "new " in page.locator("#chat-stats").inner_text()
    finally:
        ctx.models.load(EMBEDDED_KEY)
