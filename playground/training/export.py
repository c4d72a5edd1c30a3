"""Taking a trained adapter out of the playground: a zip of its PEFT folder, a merged model with a
model card, or either pushed to the Hugging Face Hub."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from playground.atomic import TEMP_PREFIX, atomic_write_bytes
from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.models.adapters import METADATA_FILE, AdapterInfo, read_adapter
from playground.names import named_path
from playground.paths import adapters_dir, merged_dir, private_export_dir
from playground.training.adapters import merge_adapter, resolve_adapter
from playground.training.job_files import TrainingJob, jobs_root

CARD = "README.md"


def adapter_owner(folder: Path) -> str | None:
    """Who an adapter belongs to: the owner of the training job that saved it; None when no job of
    this playground did (made on the command line, or copied in), which leaves it to admins."""
    try:
        meta = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
        job_dir = named_path(jobs_root(), meta.get("job"), "job")
    except (OSError, ValueError, PlaygroundError):
        return None
    return TrainingJob(job_dir).status().get("owner") if job_dir.is_dir() else None


def owned_adapter(name: str, by: Owner) -> Path:
    """The adapter called `name` in the adapters folder (a name, never a path), checked that `by`
    may take it out of the playground: its owner or an admin."""
    folder = resolve_adapter(str(named_path(adapters_dir(), name, "adapter")))
    by.require(adapter_owner(folder), f"Adapter {folder.name}")
    return folder


def _info(adapter: str | Path) -> tuple[Path, AdapterInfo]:
    folder = resolve_adapter(str(adapter))
    info = read_adapter(folder)
    if info is None:
        raise PlaygroundError(f"{folder.name} is not a finished adapter (no {METADATA_FILE}).")
    return folder, info


def model_card(info: AdapterInfo, merged: bool) -> str:
    """A Hub model card: what the model is, how it was trained, how to load it."""
    settings = info.settings or {}
    metrics = {k: v for k, v in (info.metrics or {}).items() if isinstance(v, int | float)}
    lines = [
        "---",
        f"base_model: {info.base_model}",
        "library_name: " + ("transformers" if merged else "peft"),
        "tags: [lora, playground]",
        "---",
        "",
        f"# {info.name}",
        "",
        f"A LoRA adapter of `{info.base_model}`"
        + (", merged into the base weights" if merged else "")
        + ", trained in the LLM playground.",
        "",
        "## Training",
    ]
    data = info.dataset or {}
    if data:
        lines.append(f"- data: {data.get('name', '?')} ({data.get('examples', '?')} examples)")
    for key in ("method", "r", "alpha", "target_modules", "lr", "max_steps", "max_length", "template"):
        if key in settings:
            lines.append(f"- {key}: {settings[key]}")
    if metrics:
        lines += ["", "## Results", *[f"- {k}: {v:.4g}" for k, v in sorted(metrics.items())]]
    load = (
        [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "model = AutoModelForCausalLM.from_pretrained(PATH)",
            "tokenizer = AutoTokenizer.from_pretrained(PATH)",
        ]
        if merged
        else [
            "from peft import AutoPeftModelForCausalLM",
            "model = AutoPeftModelForCausalLM.from_pretrained(PATH)",
        ]
    )
    lines += ["", "## Use", "```python", *load, "```", ""]
    return "\n".join(lines)


def adapter_zip(adapter: str | Path) -> Path:
    """The adapter's folder as a zip in the exports folder (which the app serves), with our card in
    place of the blank template that peft writes."""
    folder, info = _info(adapter)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.relative_to(folder) != Path(CARD):
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
        archive.writestr(f"{folder.name}/{CARD}", model_card(info, merged=False))
    out = private_export_dir() / f"{folder.name}-adapter.zip"
    atomic_write_bytes(out, buffer.getvalue())
    return out


def merged_model(
    adapter: str | Path,
    out: str | Path | None = None,
    replace: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> Path:
    """The base model with the adapter folded in (safetensors, tokenizer, model card). An existing
    folder is kept unless `replace`, and then swapped out only once the new one is complete."""
    folder, info = _info(adapter)
    target = Path(out) if out is not None else merged_folder(folder.name)
    if target.exists() and not replace:
        raise PlaygroundError(f"{target} already exists: remove it or choose another folder.")
    files = {CARD: model_card(info, merged=True)}
    return merge_adapter(folder, target, files=files, replace=replace, on_stage=on_stage)


def merged_folder(adapter_name: str) -> Path:
    return merged_dir() / f"{adapter_name}-merged"


def folder_zip(folder: Path) -> Path:
    """`folder` as FOLDER.zip beside it, written under a temporary name and renamed when whole.
    Stored, not deflated: safetensors weights hardly compress and a 7B model is 28 GB in fp32."""
    out = folder.with_name(f"{folder.name}.zip")
    tmp = folder.with_name(f"{TEMP_PREFIX}{folder.name}.{uuid.uuid4().hex[:8]}.zip")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def push_to_hub(folder: str | Path, repo_id: str, token: str | None, endpoint: str | None = None) -> str:
    """Upload a folder (an adapter or a merged model) to a Hub model repository; its URL.
    `endpoint` is the Hub's address (None: huggingface.co, or $HF_ENDPOINT)."""
    folder = Path(folder)
    repo_id = (repo_id or "").strip()
    if not repo_id or repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
        raise PlaygroundError("Name the Hub repository as user/name (or org/name).")
    if not token:
        raise PlaygroundError("Pushing to the Hub needs a write token (hf_...); it is used once, not stored.")
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token, endpoint=endpoint)
    try:
        api.create_repo(repo_id, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
        info = read_adapter(folder)
        if info is not None:  # an adapter folder: our card replaces peft's blank template
            api.upload_file(
                path_or_fileobj=model_card(info, merged=False).encode(), path_in_repo=CARD, repo_id=repo_id
            )
    except HfHubHTTPError as exc:
        raise PlaygroundError(f"The Hub refused the upload: {exc}") from None
    except (OSError, httpx.TransportError, OfflineModeIsEnabled) as exc:
        raise PlaygroundError(
            f"Could not reach the Hugging Face Hub ({type(exc).__name__}). Check the network, or "
            "download the zip and upload it yourself."
        ) from None
    return getattr(commit, "repo_url", None) or f"https://huggingface.co/{repo_id}"
