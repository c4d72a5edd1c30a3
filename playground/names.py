"""The one rule for names users give to things stored on disk (adapters, recipes, jobs, exports).

A name is one path part of letters, digits, spaces, '.', '_' and '-' (no '/', no '..'), and
the path it names is resolved and must stay inside its folder: a symlinked folder or a
crafted name cannot reach anything outside.
"""

from __future__ import annotations

import re
from pathlib import Path

from playground.errors import PlaygroundError

_NAME = re.compile(r"\w[\w .\-]{0,99}")


def check_name(name: object, what: str) -> str:
    """`name` stripped, or a PlaygroundError saying what a valid `what` name looks like."""
    clean = name.strip() if isinstance(name, str) else ""
    if not _NAME.fullmatch(clean) or ".." in clean or clean.endswith("."):
        shown = repr(name)[:60] if isinstance(name, str) else "that"
        raise PlaygroundError(
            f"{shown} cannot be a {what} name: use letters, digits, spaces, '-', '_' or '.' "
            "(up to 100 characters, no '/' or '..')."
        )
    return clean


def is_valid_name(name: object) -> bool:
    try:
        check_name(name, "file")
    except PlaygroundError:
        return False
    return True


def inside(folder: Path, path: Path) -> bool:
    """Whether `path`, once resolved (symlinks followed), lies inside `folder`."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):
        return False


def named_path(folder: Path, name: object, what: str, suffix: str = "") -> Path:
    """folder/NAME[suffix] for a valid name, checked to stay inside `folder` after resolve()."""
    clean = check_name(name, what)
    path = Path(folder) / f"{clean}{suffix}"
    if not inside(folder, path):
        raise PlaygroundError(f"{clean!r} cannot be a {what} name here: it points outside its folder.")
    return path


def safe_file_name(text: str, fallback: str = "file") -> str:
    """A valid name made from any text (a data set name for an export file), never a path."""
    clean = re.sub(r"[^\w.\-]+", "_", text or "").strip("._ ")[:100]
    clean = re.sub(r"\.{2,}", ".", clean)
    return clean if is_valid_name(clean) else fallback
