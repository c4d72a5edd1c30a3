"""What every tab shares: turning service errors into messages, and small helpers."""

from __future__ import annotations

import errno
import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import gradio as gr

from playground.errors import PlaygroundError
from playground.ui.i18n import language_of, t, tr

log = logging.getLogger("playground.ui")


def current_request() -> Any:
    """The gr.Request of the event being handled (None outside one), for its language."""
    from gradio.context import LocalContext

    return LocalContext.request.get(None)


def error_text(exc: PlaygroundError, request: Any = None) -> str:
    """A service error in the language of `request` (by default the current event's)."""
    return exc.in_language(language_of(request if request is not None else current_request()))


def _as_gr_error(exc: BaseException) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, PlaygroundError):
        return gr.Error(error_text(exc), print_exception=False)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        # Issue 8 (disk full): user files are written through playground.atomic and the database
        # in transactions, so a full disk leaves what was saved before as it was.
        return gr.Error(tr(current_request(), "error.disk_full"), print_exception=False)
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            from playground.generation.stream import oom_message

            return gr.Error(oom_message("this request"), print_exception=False)
    except ImportError:
        pass
    log.exception("Unexpected error", exc_info=exc)
    return gr.Error(tr(current_request(), "error.unexpected", kind=f"{type(exc).__name__}: {exc}"))


# Events whose model work is generation: they run side by side and the engine batches them.
GENERATION_EVENT: dict[str, Any] = {"concurrency_id": "generation", "concurrency_limit": None}


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show PlaygroundError messages in the UI in the page's language, and never a traceback."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise _as_gr_error(exc) from exc

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _as_gr_error(exc) from exc

    return wrapper


def message_text(content: Any) -> str:
    """Chatbot message content as plain text (gradio may give a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(message_text(c) for c in content)
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    return "" if content is None else str(content)


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    def report(fraction: float, desc: str) -> None:
        progress(fraction, desc=desc)

    return report


def on_tab_shown(fn: Callable[..., Any], inputs: list | None, outputs: list) -> None:
    """Run `fn` whenever a tab around the layout being built is opened (lists made fresh).

    Tabs nest (Side by side > Base model vs adapters), so every enclosing tab gets the event.
    """
    from gradio.context import Context

    block = Context.block
    while block is not None:
        if isinstance(block, gr.Tab):
            block.select(fn, inputs or None, outputs, queue=False)
        block = getattr(block, "parent", None)


def catalogue_dropdown(key: str, names: Iterable[str], value: str, elem_id: str) -> gr.Dropdown:
    """A dropdown labelled with the catalogue's `key`, offering `names`, each shown as `<key>.<name>`."""
    return gr.Dropdown(
        [(t(f"{key}.{name}"), name) for name in names], value=value, label=t(key), elem_id=elem_id
    )
