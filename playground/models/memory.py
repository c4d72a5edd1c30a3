"""How much memory models may take, and how much one takes: the resident-models budget.

On CUDA the budget is the GPU's free memory plus what the resident models hold, minus a margin for
activations and KV caches; on CPU the same with the machine's available RAM. A model's size is
estimated before loading from its safetensors headers (parameters x bytes per parameter at the
chosen precision), so one that can never fit is refused before anything is evicted, and measured
after loading (`get_memory_footprint`), which is what the budget then counts.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
# Bytes per parameter once loaded, by quantization or dtype (4-bit formats keep small scales too).
BYTES_PER_PARAMETER = {"4bit": 0.56, "int4": 0.56, "8bit": 1.06, "bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class MemoryBudget:
    """Where resident models live and what is kept free for the work they do.

    margin_bytes: kept free beside the models (activations, KV caches, other processes).
    max_models:   at most this many resident at once (PLAYGROUND_MAX_MODELS), whatever their size.
    fixed_bytes:  a fixed capacity instead of measuring free memory (tests, or an operator's cap).
    """

    margin_bytes: int = 2 * GIB
    max_models: int = 4
    fixed_bytes: int | None = None

    @classmethod
    def from_env(cls) -> MemoryBudget:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            try:
                return float(raw) if raw else default
            except ValueError:
                from playground.errors import PlaygroundError

                raise PlaygroundError(f"{name} must be a number, not {raw!r}.") from None

        cap = number("PLAYGROUND_MODEL_MEMORY_GB", 0)
        return cls(
            margin_bytes=int(number("PLAYGROUND_MODEL_MEMORY_MARGIN_GB", 2) * GIB),
            max_models=max(1, int(number("PLAYGROUND_MAX_MODELS", 4))),
            fixed_bytes=int(cap * GIB) if cap > 0 else None,
        )

    def capacity(self, device: str, resident_bytes: int) -> int:
        """Bytes all resident models together may take on `device` ("cuda" or "cpu")."""
        if self.fixed_bytes is not None:
            return self.fixed_bytes
        return free_bytes(device) + resident_bytes - self.margin_bytes


def free_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return int(torch.cuda.mem_get_info()[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def measured_bytes(model: Any) -> int:
    """Weights and buffers of a loaded model, quantized layers counted as stored."""
    try:
        return int(model.get_memory_footprint())
    except (AttributeError, TypeError, RuntimeError):
        tensors = list(model.parameters()) + list(model.buffers())
        return int(sum(t.numel() * t.element_size() for t in tensors))


def safetensors_parameters(folder: str | Path) -> int | None:
    """Parameters in a folder's safetensors files, read from their headers (no weights read)."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= int(dim)
                total += count
    return total


def estimated_bytes(folder: str | Path | None, precision: str) -> int | None:
    """What a model in `folder` should take at `precision` (a name from loader.PRECISIONS after
    "auto" is decided), or None where the folder is not on disk or holds no safetensors."""
    if folder is None or not Path(folder).is_dir():
        return None
    parameters = safetensors_parameters(folder)
    per = BYTES_PER_PARAMETER.get(precision)
    if parameters is None or per is None:
        return None
    return int(parameters * per)


def gib(n: int | float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 2**20:.1f} MiB"
