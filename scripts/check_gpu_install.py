"""Does a fresh install from requirements.txt load a 7B model in 4-bit NF4 on this GPU, through the
app's own loader (playground.models.load_model, precision "auto")? Run it on the GPU machine:

    python -m venv /tmp/venv && /tmp/venv/bin/pip install -r requirements.txt   # or: wheels carried
    /tmp/venv/bin/python scripts/check_gpu_install.py [--shape llama|mistral] [--keep DIR]

With no network the model is a Llama-2-7B-shaped one with random weights (bench/_gpu_models.py),
saved once in bf16 (13.5 GB) under --keep or a temporary folder; the shapes, not the weights,
decide what loads and how much memory it takes. The last line is `gpu-install: OK ...` or
`gpu-install: FAILED ...`; the exit status says the same. It imports no gradio.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# NF4 stores 4.5 bits a weight with double quantization; a 7B model with its bf16 embeddings and
# head comes to about 4 GB. Anything near bf16's 13.5 GB means the fallback happened.
MAX_NF4_GIB = 6.0


def versions() -> str:
    names = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} MISSING")
    return ", ".join(found)


def check(shape: str, keep: Path | None) -> list[str]:
    """Problems found; empty when NF4 loaded and ran."""
    import torch

    from bench._gpu_models import ensure_saved
    from playground.models import LoadOptions, load_model

    if not torch.cuda.is_available():
        return [f"no CUDA GPU is visible to torch {torch.__version__} (a CPU build?)"]
    print(
        f"GPU: {torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
    )
    root = keep or Path(tempfile.mkdtemp(prefix="gpu-install-"))
    folder = ensure_saved(shape, root)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    loaded = load_model(str(folder), LoadOptions())  # what the app does with precision "auto"
    weights_gib = (torch.cuda.memory_allocated() - before) / 2**30
    summary = loaded.summary()
    print(f"loaded: {summary['precision']} on {summary['device']}, {summary['parameters']}M parameters")
    for note in loaded.notes:
        print(f"note (the model bar shows it): {note}")
    problems = []
    if not loaded.quantization or "NF4" not in loaded.quantization:
        problems.append(f"precision auto loaded {summary['precision']}, not 4-bit NF4")
    linear4 = sum(type(m).__name__ == "Linear4bit" for m in loaded.model.modules())
    if linear4 == 0:
        problems.append("no bitsandbytes Linear4bit layers in the model")
    if weights_gib > MAX_NF4_GIB:
        problems.append(f"{weights_gib:.1f} GiB on the GPU after loading, more than NF4's ~4 GiB")
    ids = loaded.tokenizer("以下是一首唐詩", return_tensors="pt").input_ids.to(loaded.model.device)
    with torch.no_grad():
        logits = loaded.model(ids).logits
    if not torch.isfinite(logits).all():
        problems.append("the forward pass gave non-finite logits")
    print(f"{linear4} Linear4bit layers, {weights_gib:.2f} GiB of weights on the GPU, forward pass ok")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="llama", choices=("llama", "mistral"))
    parser.add_argument("--keep", type=Path, help="save the random model here and reuse it next time")
    args = parser.parse_args()
    print(versions())
    try:
        problems = check(args.shape, args.keep)
    except Exception as exc:  # noqa: BLE001 - the point is to report what broke
        problems = [f"{type(exc).__name__}: {exc}"]
    if "gradio" in sys.modules:
        problems.append("gradio was imported: the loader must not need it")
    if problems:
        print("gpu-install: FAILED: " + "; ".join(problems))
        return 1
    print(f"gpu-install: OK (7B {args.shape} shape in 4-bit NF4 through load_model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
