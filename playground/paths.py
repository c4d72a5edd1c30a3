"""Where the app keeps what users create, and its caches.

PLAYGROUND_DATA_DIR holds the database, uploads, recipes and job logs (default ./data);
PLAYGROUND_ADAPTERS_DIR holds trained adapters (default ./adapters);
PLAYGROUND_CACHE_DIR holds converted models, shared across data dirs (default
~/.cache/playground). Functions, not constants, so tests can point them elsewhere.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path


def _dir(env: str, default: Path) -> Path:
    path = Path(os.environ.get(env) or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    return _dir("PLAYGROUND_DATA_DIR", Path.cwd() / "data")


def adapters_dir() -> Path:
    return _dir("PLAYGROUND_ADAPTERS_DIR", Path.cwd() / "adapters")


def cache_dir() -> Path:
    return _dir("PLAYGROUND_CACHE_DIR", Path.home() / ".cache" / "playground")


def exports_dir() -> Path:
    """Downloads the UI offers (CSV/JSON exports): the one data folder the web server may serve."""
    path = data_dir() / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def private_export_dir() -> Path:
    """A fresh folder in the exports folder, named by 128 random bits. The web server hands any
    file of the exports folder to whoever names its path, so a download must not be guessable:
    what one user exports reaches only the browser it was offered to."""
    path = exports_dir() / secrets.token_hex(16)
    path.mkdir()
    return path


def offer_download(path: Path) -> Path:
    """`path` (kept where the server does not serve it) as a file in a fresh private export folder:
    a hard link where the file system allows one, so a merged 7B model is not copied."""
    out = private_export_dir() / path.name
    try:
        os.link(path, out)
    except OSError:
        shutil.copyfile(path, out)
    return out


def merged_dir() -> Path:
    """Merged models (base + adapter): big, and served only through `offer_download`."""
    return _dir("PLAYGROUND_MERGED_DIR", data_dir() / "merged")
