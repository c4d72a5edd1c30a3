"""Trained adapters on disk: standard PEFT folders plus playground.json, listed for the UI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playground.atomic import atomic_directory
from playground.errors import PlaygroundError
from playground.models.adapters import METADATA_FILE, AdapterInfo, list_adapters, read_adapter
from playground.paths import adapters_dir

# AdapterInfo, read_adapter and list_adapters live with the other adapter code in
# playground.models.adapters; they are re-exported here because training writes adapters.
__all__ = ["METADATA_FILE", "AdapterInfo", "list_adapters", "read_adapter", "merge_adapter", "save_adapter"]


def free_name(final: Path) -> Path:
    """`final`, or final-2, final-3... when a folder of that name already exists."""
    candidate, n = final, 2
    while candidate.exists():
        candidate = final.with_name(f"{final.name}-{n}")
        n += 1
    return candidate


def _saved_by(path: Path) -> str | None:
    try:
        return json.loads((path / METADATA_FILE).read_text(encoding="utf-8")).get("job")
    except (OSError, ValueError):
        return None


def adapter_owner(path: Path) -> str | None:
    """Who made an adapter: the owner of the training job that saved it (None: placed by hand or
    trained from the command line, so the operator's)."""
    from playground.names import is_valid_name
    from playground.training.job_files import jobs_root

    job = _saved_by(Path(path))
    if not is_valid_name(job):
        return None
    try:
        status = json.loads((jobs_root() / str(job) / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    owner = status.get("owner") if isinstance(status, dict) else None
    return owner if isinstance(owner, str) else None


def save_adapter(model: Any, final: Path, metadata: dict[str, Any], job: str | None = None) -> Path:
    """Write the PEFT adapter and its metadata in one rename.

    Never replaces another job's adapter (a taken name becomes NAME-2); the same job's earlier
    save (made when it was stopped) is replaced, so resuming finishes the adapter in place.
    """
    final = Path(final)
    if not (job and final.exists() and _saved_by(final) == job):
        final = free_name(final)
    metadata = {**metadata, "name": final.name, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    with atomic_directory(final, overwrite=job is not None and final.exists()) as tmp:
        model.save_pretrained(tmp, save_embedding_layers=False)
        (tmp / METADATA_FILE).write_text(
            json.dumps(metadata, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
        )
    return final


def resolve_adapter(name_or_path: str) -> Path:
    """An adapter folder from a path, `adapters/NAME` or a bare name in adapters_dir().

    Only safetensors adapters are accepted: a pickled adapter_model.bin could run code when loaded.
    """
    from playground.models.adapters import check_adapter_folder

    path = Path(name_or_path).expanduser()
    for candidate in (path, adapters_dir() / path.name):
        if (candidate / "adapter_config.json").is_file():
            return check_adapter_folder(candidate)
    raise PlaygroundError(f"No adapter {name_or_path}: expected a folder with adapter_config.json.")


def merge_adapter(
    adapter_dir: str | Path,
    out_dir: str | Path,
    files: dict[str, str] | None = None,
    replace: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> Path:
    """Fold the adapter into an fp32 copy of its base and save a plain model folder, with `files`
    (name -> text, e.g. a model card) beside the weights. The folder appears whole or not at all;
    with `replace` an earlier one is swapped out only once the new one is complete.
    `on_stage` hears "load", "merge" and "save" as the work reaches them."""
    from peft import PeftModel

    from playground.models import LoadOptions, load_model

    adapter = resolve_adapter(str(adapter_dir))
    info = read_adapter(adapter)
    if info is None or not info.base_model:
        raise PlaygroundError(f"{adapter} does not say which base model it belongs to.")
    on_stage("load")
    loaded = load_model(info.base_model, LoadOptions(precision="fp32", device="cpu"))
    on_stage("merge")
    merged = PeftModel.from_pretrained(loaded.model, str(adapter)).merge_and_unload()
    on_stage("save")
    out = Path(out_dir)
    with atomic_directory(out, overwrite=replace) as tmp:
        merged.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out
