"""The one rule for names users give to things stored on disk (adapters, recipes, jobs, exports).

A name is one path part of letters, digits, spaces, '.', '_' and '-' (no '/', no '..'), and
the path it names is resolved and must stay inside its folder: a symlinked folder or a
crafted name cannot reach anything outside.
"""

from __future__ import annotations

import re
from pathlib import Path

from playground.errors import PlaygroundError
from playground.messages import DEFAULT, WORDS, Message

_NAME = re.compile(r"\w[\w .\-]{0,99}")


def check_name(name: object, what: str) -> str:
    """`name` stripped, or a PlaygroundError saying what a valid `what` name looks like."""
    clean = name.strip() if isinstance(name, str) else ""
    if not _NAME.fullmatch(clean) or ".." in clean or clean.endswith("."):
        shown = repr(name)[:60] if isinstance(name, str) else "that"
        raise PlaygroundError(Message("names.invalid", shown=shown, what=_thing(what)))
    return clean


def _thing(what: str) -> Message | str:
    """The kind of thing named, in the reader's language where the catalogue knows it."""
    key = f"names.thing.{what}"
    return Message(key) if key in WORDS[DEFAULT] else what


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
        raise PlaygroundError(Message("names.outside", shown=repr(clean), what=_thing(what)))
    return path


def safe_file_name(text: str, fallback: str = "file") -> str:
    """A valid name made from any text (a data set name for an export file), never a path."""
    clean = re.sub(r"[^\w.\-]+", "_", text or "").strip("._ ")[:100]
    clean = re.sub(r"\.{2,}", ".", clean)
    return clean if is_valid_name(clean) else fallback
