"""Adapters on the resident model: several LoRA adapters on one copy of the base weights.

peft keeps each adapter under a name; `using_adapter(loaded, name)` switches with
`set_adapter`, and `using_adapter(loaded, None)` runs the base model with
`disable_adapter()`. Only safetensors adapters are loaded: a pickled `adapter_model.bin`
could run arbitrary code when unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playground.atomic import TEMP_PREFIX
from playground.errors import PlaygroundError
from playground.models.loader import LoadedModel
from playground.paths import adapters_dir

METADATA_FILE = "playground.json"


@dataclass
class AdapterInfo:
    name: str
    path: Path
    base_model: str
    created: str
    metrics: dict[str, Any] = field(default_factory=dict)
    loss_history: list[list[float]] = field(default_factory=list)
    eval_history: list[list[float]] = field(default_factory=list)  # [step, eval loss, eval perplexity]
    dataset: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def read_adapter(path: Path) -> AdapterInfo | None:
    """An AdapterInfo for a PEFT folder (playground.json is optional), None if it is not one."""
    path = Path(path)
    config_file = path / "adapter_config.json"
    if path.name.startswith(TEMP_PREFIX) or not config_file.is_file():
        return None
    try:
        peft_config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    meta: dict[str, Any] = {}
    meta_file = path / METADATA_FILE
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
    created = meta.get("created") or datetime.fromtimestamp(config_file.stat().st_mtime, UTC).isoformat(
        timespec="seconds"
    )
    return AdapterInfo(
        name=path.name,
        path=path,
        base_model=meta.get("base_model") or peft_config.get("base_model_name_or_path") or "",
        created=created,
        metrics=meta.get("metrics", {}),
        loss_history=meta.get("loss_history", []),
        eval_history=meta.get("eval_history", []),
        dataset=meta.get("dataset", {}),
        settings=meta.get("settings", {}),
    )


def list_adapters(folder: Path | None = None) -> list[AdapterInfo]:
    """Adapters in adapters_dir(), newest first; half-written (.tmp-) folders are skipped."""
    folder = Path(folder) if folder is not None else adapters_dir()
    if not folder.is_dir():
        return []
    found = [info for path in folder.iterdir() if path.is_dir() and (info := read_adapter(path))]
    return sorted(found, key=lambda a: (a.created, a.name), reverse=True)


def list_adapter_names() -> list[str]:
    """Names of the finished adapters, alphabetically (for pickers)."""
    return sorted(a.name for a in list_adapters())


def adapter_base_model(folder: str | Path) -> str | None:
    """The base model an adapter was trained on, from our metadata or peft's config."""
    folder = Path(folder)
    for name, key in ((METADATA_FILE, "base_model"), ("adapter_config.json", "base_model_name_or_path")):
        try:
            value = json.loads((folder / name).read_text()).get(key)
        except (OSError, ValueError):
            continue
        if value:
            return str(value)
    return None


def check_adapter_folder(folder: str | Path) -> Path:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise PlaygroundError(f"No adapter folder {folder}.")
    if not (folder / "adapter_config.json").is_file():
        raise PlaygroundError(f"{folder} has no adapter_config.json, so it is not a PEFT adapter.")
    if not (folder / "adapter_model.safetensors").is_file():
        if any(folder.glob("adapter_model*.bin")) or any(folder.glob("*.pt")):
            raise PlaygroundError(
                f"{folder} holds a pickled checkpoint (adapter_model.bin). Only safetensors adapters are "
                "loaded, since unpickling can run arbitrary code; convert it with safetensors first."
            )
        raise PlaygroundError(f"{folder} has no adapter_model.safetensors.")
    return folder


def _same_model(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        return re.sub(r"[^a-z0-9]", "", Path(x.rstrip("/")).name.lower())

    return norm(a) == norm(b)


def base_matches(base: str, model_name: str, model_source: str = "") -> bool:
    """Whether an adapter trained on `base` belongs to the model `model_name` (loaded from `model_source`)."""
    from playground.models.presets import find_preset

    if _same_model(base, model_name) or (model_source and _same_model(base, model_source)):
        return True
    preset = find_preset(model_name)
    return bool(preset and _same_model(base, preset.hf_id))


def adapter_fits(folder: str | Path, model_name: str, model_source: str = "") -> bool:
    """Whether an adapter was trained on the model called `model_name` (a preset key or an id)."""
    base = adapter_base_model(folder)
    return base is not None and base_matches(base, model_name, model_source)


def attach_adapter(loaded: LoadedModel, folder: str | Path, name: str | None = None) -> str:
    """Load an adapter onto the resident model under `name` (default: the folder name)."""
    from playground.models.access import model_access
    from playground.models.weightless import require_weights

    require_weights(loaded, "An adapter")

    # Attaching rewrites the model's layers: never while a generation step runs.
    with model_access(loaded):
        return _attach_adapter(loaded, folder, name)


def _attach_adapter(loaded: LoadedModel, folder: str | Path, name: str | None) -> str:
    from peft import PeftModel

    from playground.models.int4 import has_int4_layers

    folder = check_adapter_folder(folder)
    if has_int4_layers(loaded.model):
        # peft has no LoRA layer for int4 weights; it would fail deep inside with a confusing error.
        raise PlaygroundError(
            f"{loaded.name} is loaded in int4, which cannot take adapters: load the model in 4bit (NF4) "
            "or bf16 to use adapters."
        )
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name or folder.name)
    if loaded.adapters.get(name) == str(folder):
        return name
    base = adapter_base_model(folder)
    if base and not base_matches(base, loaded.name, loaded.source):
        raise PlaygroundError(
            f"Adapter {folder.name} was trained on {base}, but the loaded model is {loaded.name}. "
            f"Load {base} first."
        )
    try:
        if isinstance(loaded.model, PeftModel):
            if name in loaded.model.peft_config:
                loaded.model.delete_adapter(name)
            loaded.model.load_adapter(str(folder), adapter_name=name)
        else:
            loaded.model = PeftModel.from_pretrained(loaded.model, str(folder), adapter_name=name)
    except (RuntimeError, ValueError, KeyError) as exc:
        _drop_half_attached(loaded, name)
        raise PlaygroundError(
            f"Adapter {folder.name} does not fit {loaded.name} (was it made for another base model?): "
            f"{str(exc).splitlines()[0][:300]}"
        ) from exc
    loaded.model.eval()
    loaded.adapters[name] = str(folder)
    return name


def _drop_half_attached(loaded: LoadedModel, name: str) -> None:
    """Issue 8: peft adds an adapter's LoRA layers before it loads its weights, so a load that
    fails leaves a phantom adapter in the model; take it out again."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = loaded.model
    if isinstance(model, PeftModel):
        if name in model.peft_config:
            model.delete_adapter(name)
        return
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, BaseTunerLayer):
                setattr(parent, child_name, child.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config


def detach_adapters(loaded: LoadedModel) -> None:
    """Give the plain base model back (the adapters' LoRA layers are removed)."""
    from peft import PeftModel

    from playground.models.access import model_access

    with model_access(loaded):
        if isinstance(loaded.model, PeftModel):
            loaded.model = loaded.model.unload()
        loaded.adapters.clear()


def _adapter_layers_enabled(model: Any) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(not m.disable_adapters for m in model.modules() if isinstance(m, BaseTunerLayer))


@contextmanager
def using_adapter(loaded: LoadedModel, name: str | None) -> Iterator[None]:
    """Run with one adapter active, or the base model when `name` is None.

    Nests: the state on entry (which adapter, enabled or not) is restored on exit. peft's own
    `disable_adapter()` does not nest with `set_adapter` (an adapter set inside it stays off),
    so the layers are switched explicitly.
    """
    from peft import PeftModel

    model = loaded.model
    if not isinstance(model, PeftModel):
        if name is not None:
            raise PlaygroundError(f"Adapter {name} is not loaded.")
        yield
        return
    if name is not None and name not in model.peft_config:
        raise PlaygroundError(f"Adapter {name} is not loaded; loaded: {', '.join(model.peft_config)}.")
    previous, was_enabled = model.active_adapter, _adapter_layers_enabled(model)
    try:
        if name is None:
            model.base_model.disable_adapter_layers()
        else:
            model.base_model.enable_adapter_layers()
            model.set_adapter(name)
        yield
    finally:
        if previous in model.peft_config:
            model.set_adapter(previous)
        if was_enabled:
            model.base_model.enable_adapter_layers()
        else:
            model.base_model.disable_adapter_layers()
