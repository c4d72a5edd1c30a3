"""Small helpers shared by tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, every: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def pick(page: Any, dropdown: str, option: str) -> None:
    """Choose `option` in the gradio dropdown whose element id selector is `dropdown`."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def generate_reference(loaded: Any, ids: Any, settings: Any) -> list[int]:
    """The new tokens transformers' generate() gives for `ids` with `settings` (a DecodingSettings)."""
    import torch

    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            **settings.generate_kwargs(),
            pad_token_id=loaded.tokenizer.pad_token_id,
        )
    return out[0, ids.shape[1] :].tolist()


def save_random_lora(model_path: Any, folder: Any, scale: float = 5.0) -> None:
    """A LoRA adapter of the model at `model_path` with random weights large enough to move its
    numbers visibly, saved (peft files only) into `folder`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from playground.models import LoadOptions, load_model

    base = load_model(str(model_path), LoadOptions(precision="fp32"))
    lora = get_peft_model(base.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, scale)
    lora.save_pretrained(folder)
