"""Hugging Face datasets as data: a folder written by `save_to_disk`, a parquet file, or a hub id
(`hf:ORG/NAME` or `hf:ORG/NAME:SPLIT`) that is online or already in the Hugging Face cache.

They become plain rows (one dict each) and column names, so playground.data detects their shape
and checks every row exactly as it does for JSON and CSV.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import DatasetError
from playground.limits import current_limits

HUB_PREFIX = "hf:"
PARQUET = ".parquet"
# The files `save_to_disk` writes beside its Arrow files: a Dataset, or a DatasetDict of splits.
SAVED_MARKERS = ("state.json", "dataset_dict.json")


@dataclass
class HFRows:
    rows: list[dict[str, Any]]
    columns: list[str]
    sha256: str
    notes: list[str] = field(default_factory=list)


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS)


def is_hf_source(source: str | Path) -> bool:
    """Whether `source` names a Hugging Face dataset rather than a JSON / CSV file."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return True
    path = Path(text)
    return path.suffix.lower() == PARQUET or is_saved_dataset(path)


def read_hf(source: str | Path, label: str, max_bytes: int) -> HFRows:
    """Rows of a saved folder, parquet file or hub id; DatasetError says what is wrong with it."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return _from_hub(text[len(HUB_PREFIX) :], label)
    path = Path(text)
    if not path.exists():
        raise DatasetError(label, "file not found.")
    size = sum(f.stat().st_size for f in _files(path))
    if size > max_bytes:
        raise DatasetError(label, f"is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit.")
    import datasets

    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        else:  # read by pyarrow itself: datasets refuses a parquet file with no rows
            import pyarrow.parquet

            loaded = pyarrow.parquet.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's file's problem
        what = "a dataset folder written by save_to_disk" if path.is_dir() else "a parquet file"
        raise DatasetError(label, f"cannot be read as {what} ({type(exc).__name__}: {exc}).") from None
    return _rows(loaded, label, _sha256_files(path))


def _from_hub(spec: str, label: str) -> HFRows:
    name, _, split = spec.partition(":")
    if name.count("/") > 1 or not name.strip() or ".." in name:
        raise DatasetError(label, "write a hub data set as hf:ORG/NAME or hf:ORG/NAME:SPLIT.")
    import datasets

    try:
        loaded = datasets.load_dataset(name, split=split or None)
    except Exception as exc:  # noqa: BLE001 - offline, missing, private: the same advice
        raise DatasetError(
            label,
            f"could not be loaded from the Hugging Face Hub or its cache ({type(exc).__name__}). With no "
            f"network it must already be in the cache: on a machine with network run "
            f"`hf download --repo-type dataset {name}`, or save it with save_to_disk and use that "
            "folder (or a parquet file) instead.",
        ) from None
    return _rows(loaded, label, hashlib.sha256(f"hub:{spec}".encode()).hexdigest())


def _rows(loaded: Any, label: str, sha: str) -> HFRows:
    notes: list[str] = []
    if hasattr(loaded, "keys"):  # a DatasetDict: train if there is one, else its first split
        splits = list(loaded.keys())
        if not splits:
            raise DatasetError(label, "has no splits.")
        chosen = "train" if "train" in splits else splits[0]
        if len(splits) > 1:
            notes.append(f"Used its '{chosen}' split (it has {', '.join(splits)}).")
        loaded = loaded[chosen]
        sha = hashlib.sha256(f"{sha}:{chosen}".encode()).hexdigest()
    if len(loaded) == 0:
        raise DatasetError(label, "contains no rows.")
    current_limits().check_rows(len(loaded), label)
    rows = loaded.to_list() if hasattr(loaded, "to_list") else loaded.to_pylist()  # datasets / pyarrow
    return HFRows(rows, list(loaded.column_names), sha, notes)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(f for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _sha256_files(path: Path) -> str:
    digest = hashlib.sha256()
    for file in _files(path):
        digest.update(os.fsencode(file.relative_to(path) if path.is_dir() else file.name) + b"\x00")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
