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
