"""Where the app keeps what users create, and its caches.

PLAYGROUND_DATA_DIR holds the database, uploads, recipes and job logs (default ./data);
PLAYGROUND_ADAPTERS_DIR holds trained adapters (default ./adapters);
PLAYGROUND_CACHE_DIR holds converted models, shared across data dirs (default
~/.cache/playground). Functions, not constants, so tests can point them elsewhere.
"""

from __future__ import annotations

import os
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
