"""Where a shared playground may load models from, and whether their own code may run.

Models load from the presets, the Hugging Face cache (hub ids), the playground's model cache and
the folders listed in PLAYGROUND_MODELS_DIR (separated by ':'); never from the data, adapter or
upload folders, where anyone can put files. Code shipped with a model (`trust_remote_code`) runs
only when the operator sets PLAYGROUND_TRUST_REMOTE_CODE=1: it is never a choice on the page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from playground.errors import ModelLoadError
from playground.messages import Message
from playground.models.presets import find_preset
from playground.names import inside
from playground.paths import adapters_dir, cache_dir, data_dir


def trust_remote_code_allowed() -> bool:
    return os.environ.get("PLAYGROUND_TRUST_REMOTE_CODE", "").strip().lower() in ("1", "true", "yes", "on")


def allowed_model_roots() -> list[Path]:
    from huggingface_hub import constants

    listed = [
        Path(p).expanduser() for p in os.environ.get("PLAYGROUND_MODELS_DIR", "").split(os.pathsep) if p
    ]
    return [*listed, Path(constants.HF_HUB_CACHE), cache_dir()]


def forbidden_model_roots() -> list[Path]:
    """Folders users can write into: the data folder (uploads), adapters and gradio's upload cache."""
    gradio_uploads = os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")
    return [data_dir(), adapters_dir(), Path(gradio_uploads)]


def check_model_source(name: str, shared: bool = True) -> str:
    """`name` if the app may load it: a preset, a hub id, or a folder under an allowed root.

    On a single-user playground its user (the machine's owner) may load any folder except the
    ones users write into. The refusal reads the same whether the folder exists or not, so it
    reveals nothing about the server's files.
    """
    text = (name or "").strip()
    if not text:
        raise ModelLoadError(Message("models.none_typed_shared"))
    if find_preset(text):
        return text
    path = Path(text).expanduser()
    if text.startswith(("/", ".", "~")) or path.exists() or "\\" in text:
        allowed = not shared or any(inside(root, path) for root in allowed_model_roots())
        if allowed and not any(inside(root, path) for root in forbidden_model_roots()):
            return str(path.resolve())
        raise ModelLoadError(Message("models.not_allowed", name=repr(text[:80])))
    return text
