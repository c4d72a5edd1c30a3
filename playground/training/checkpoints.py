"""Checkpoints that resume a run exactly: adapter weights, optimizer, scheduler, RNGs, data position.

A checkpoint is JOB/checkpoints/step-N/ written with atomic_directory, so a crash while saving
leaves the previous one intact; only the last KEEP are kept.
"""

from __future__ import annotations

import json
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

from playground.atomic import TEMP_PREFIX, atomic_directory
from playground.errors import PlaygroundError

KEEP = 2
STATE_FILE = "trainer_state.json"


def checkpoints_dir(job_dir: Path) -> Path:
    return Path(job_dir) / "checkpoints"


def list_checkpoints(job_dir: Path) -> list[Path]:
    """Complete checkpoints of a job, oldest first."""
    folder = checkpoints_dir(job_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith("step-") and (path / STATE_FILE).is_file():
            try:
                found.append((int(path.name[5:]), path))
            except ValueError:
                continue
    return [path for _, path in sorted(found)]


def find_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint that `path` names: a checkpoint itself, or the latest one of a job folder."""
    path = Path(path).expanduser()
    if (path / STATE_FILE).is_file():
        return path
    if path.name == "checkpoints":
        path = path.parent
    found = list_checkpoints(path)
    return found[-1] if found else None


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(job_dir: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> Path:
    """Write step-N (N = state["step"]) and drop all but the newest KEEP checkpoints."""
    import torch

    final = checkpoints_dir(job_dir) / f"step-{state['step']}"
    with atomic_directory(final) as tmp:
        model.save_pretrained(tmp, save_embedding_layers=False)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(_rng_state(), tmp / "rng.pt")
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1), encoding="utf-8")
    for old in list_checkpoints(job_dir)[:-KEEP]:
        # Renamed first so a listing never sees a half-deleted checkpoint.
        doomed = old.parent / f"{TEMP_PREFIX}{old.name}.del.{uuid.uuid4().hex[:8]}"
        old.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore everything saved by save_checkpoint; returns the trainer state."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise PlaygroundError(f"Checkpoint {path} has no adapter_model.safetensors; it cannot be resumed.")
    device = next(p for p in model.parameters() if p.requires_grad).device
    mismatch = PlaygroundError(
        f"Checkpoint {path} does not match this model's adapter (different base model or LoRA settings)."
    )
    try:
        result = set_peft_model_state_dict(model, load_file(weights, device=str(device)))
    except RuntimeError as exc:  # tensor shapes differ
        raise mismatch from exc
    if getattr(result, "unexpected_keys", None):
        raise mismatch
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    _set_rng_state(torch.load(path / "rng.pt", weights_only=True))
    return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
