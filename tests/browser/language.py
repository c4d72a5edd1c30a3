"""What the per-tab language tests share: opening a tab in a browser locale, checking its words,
saving a screenshot for docs/screenshots."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from playground.ui.i18n import WORDS

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def open_tab(browser: Any, url: str, locale: str, tab: str, ready: Callable[[Any], None]) -> tuple[Any, Any]:
    """A new page in `locale` on the app, with the tab whose name matches `tab` open and `ready`."""
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#model-status")
    page.get_by_role("tab", name=re.compile(tab)).click()
    ready(page)
    return context, page


def labels_in(page: Any, anchor: str, anchor_key: str, keys: Iterable[str], shown: str, hidden: str) -> str:
    """Waits until `anchor` shows its words in `shown`, checks every key's words are on its tab
    in `shown` and none is left in `hidden`; the tab's text."""
    words = WORDS[shown][anchor_key]
    page.wait_for_function(f"document.querySelector({anchor!r}).innerText.includes({words!r})")
    panel = page.locator(anchor).evaluate("b => b.closest('[role=tabpanel]').innerText")
    for key in keys:
        assert WORDS[shown][key] in panel, key
        assert WORDS[hidden][key] not in panel, key
    return panel


def save_screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
