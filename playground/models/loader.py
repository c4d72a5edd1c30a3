"""Loading a model and its tokenizer: presets, hub ids, local folders, and precision.

On CUDA the default is 4-bit NF4 with double quantization and bf16 compute (bitsandbytes);
8-bit and bf16 are selectable. "int4" is PyTorch's own 4-bit weight-only kernel (models/int4.py):
about 1.5x NF4's speed in chat, and faster grids, but no adapters, so NF4 stays the
default and QLoRA's. On CPU bitsandbytes is not used: bf16 where the CPU has native bf16 matmul
(about 2x fp32 here), else fp32, and the notes say so for the UI; int4 runs there too.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import ModelLoadError
from playground.messages import Message
from playground.models import embedded
from playground.models.presets import EMBEDDED_KEY, ModelPreset, find_preset
from playground.prompts.templates import PromptTemplate, get_template

PRECISIONS = ("auto", "4bit", "int4", "8bit", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cpu", "cuda")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class LoadOptions:
    precision: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    gpu: int | None = None  # the whole model on this GPU (a data-parallel training rank's own)

    def __post_init__(self) -> None:
        if self.gpu is not None and self.gpu < 0:
            raise ModelLoadError(f"gpu must be a GPU index, 0 or more (got {self.gpu}).")
        if self.precision not in PRECISIONS:
            raise ModelLoadError(
                f"Unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}."
            )
        if self.device not in DEVICES:
            raise ModelLoadError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")


DESCRIPTION = (
    "{name} on {device} ({precision}), {parameters}M parameters, context {context} tokens, "
    "loaded in {seconds} s"
)
EXTERNAL_DESCRIPTION = (
    "{name}, generation by {engine} (tokenizer and config only here, no weights; {parameters}M "
    "parameters there), context {context} tokens, loaded in {seconds} s"
)


@dataclass
class LoadedModel:
    name: str
    source: str
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    quantization: str | None
    default_template: PromptTemplate
    context_length: int
    load_seconds: float
    options: LoadOptions
    is_seq2seq: bool = False
    # What the page should know about how it loaded (str, or a Message it says in its language).
    notes: list[str | Message] = field(default_factory=list)
    adapters: dict[str, str] = field(default_factory=dict)  # name -> folder, attached with peft
    requested: str = ""  # what the user typed: loading it again gives the same model

    @property
    def precision(self) -> str:
        """What the weights are held in, as the page shows it: the dtype, plus the quantization."""
        return f"{self.dtype}, {self.quantization}" if self.quantization else self.dtype

    def summary(self) -> dict[str, str]:
        """What `model_summary` says, as values a page can put into its own language's sentence."""
        from playground.models.int4 import int4_parameter_count
        from playground.models.weightless import is_weightless

        if is_weightless(self):
            return self._weightless_summary()
        n = sum(p.numel() for p in self.model.parameters()) + int4_parameter_count(self.model)
        return {
            "name": self.name,
            "device": str(self.device),
            "precision": self.precision,
            "parameters": f"{n / 1e6:,.0f}",
            "context": str(self.context_length),
            "seconds": f"{self.load_seconds:.1f}",
        }

    def _weightless_summary(self) -> dict[str, str]:
        from playground.models.memory import safetensors_parameters

        n = safetensors_parameters(self.source) if Path(self.source).is_dir() else None
        return {
            "name": self.name,
            "engine": self.model.engine_url,
            "parameters": f"{n / 1e6:,.0f}" if n else "?",
            "context": str(self.context_length),
            "seconds": f"{self.load_seconds:.1f}",
        }

    def model_summary(self) -> str:
        from playground.models.weightless import is_weightless

        return (EXTERNAL_DESCRIPTION if is_weightless(self) else DESCRIPTION).format(**self.summary())


@functools.cache
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _bitsandbytes_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


@dataclass(frozen=True)
class _Resolved:
    name: str
    source: str  # a local folder or a hub id
    preset: ModelPreset | None
    is_local: bool


def resolve(name_or_path: str, progress: Progress | None = None, need_weights: bool = True) -> _Resolved:
    """Where a model is; `need_weights` False: a local folder with its tokenizer and config is
    enough (the weights are on an external engine)."""
    text = (name_or_path or "").strip()
    if not text:
        raise ModelLoadError(Message("models.none_typed"))
    preset = find_preset(text)
    if preset and preset.key == EMBEDDED_KEY:
        return _Resolved(preset.key, str(embedded.ensure_converted(progress)), preset, True)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(Message("models.is_file", name=text))
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            raise ModelLoadError(Message("models.is_adapter", name=text))
        if not (path / "config.json").is_file():
            raise ModelLoadError(Message("models.no_config", name=text))
        weights = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf")]
        if not weights and need_weights:
            raise ModelLoadError(Message("models.no_weights", name=text))
        _check_code_stays_inside(path)
        return _Resolved(path.name, str(path), preset, True)
    if text.startswith(("/", "./", "../", "~")):
        raise ModelLoadError(Message("models.no_folder", name=text))
    if preset is None and (text.count("/") != 1 or " " in text):
        raise ModelLoadError(Message("models.unknown", name=repr(text)))
    return _Resolved(preset.key if preset else text, preset.hf_id if preset else text, preset, False)


def _auto_map_references(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _check_code_stays_inside(folder: Path) -> None:
    """Refuse `auto_map` entries that name code in another folder or repo ("other--module.Class").

    Such an entry would run files from elsewhere (an upload folder, say) once remote code is
    trusted; a model's own code, if any, sits in its own folder.
    """
    import json

    for file in ("config.json", "tokenizer_config.json"):
        try:
            config = json.loads((folder / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        auto_map = config.get("auto_map") if isinstance(config, dict) else None
        entries = auto_map.values() if isinstance(auto_map, dict) else []
        for reference in (r for entry in entries for r in _auto_map_references(entry)):
            if "--" in reference or "/" in reference or reference.startswith("."):
                raise ModelLoadError(
                    f"{folder.name}'s {file} names code outside the model's own folder ({reference[:80]!r}); "
                    "the playground refuses such models."
                )


def _pickle_refused(exc: BaseException) -> bool:
    import pickle

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, pickle.UnpicklingError) or "weights_only" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _offline_message(source: str) -> Message:
    return Message("models.offline", name=repr(source), source=source)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host resolves and accepts a connection; the hub client would otherwise
    retry for ~25 s before failing on a machine without network."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(loader: Any, source: str, is_local: bool, **kwargs: Any) -> Any:
    """from_pretrained that tries the local cache first and turns hub failures into a clear message."""
    if is_local:
        return loader.from_pretrained(source, **kwargs)
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelLoadError(_offline_message(source))
    try:
        return loader.from_pretrained(source, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any hub/network failure means the same thing to a user
        if "out of memory" in str(exc).lower():
            raise
        raise ModelLoadError(_offline_message(source)) from exc


def _choose(options: LoadOptions) -> tuple[str, str, str | None, list[str | Message]]:
    """(device, torch dtype name, quantization, notes) for these options on this machine."""
    notes: list[str | Message] = []
    cuda = _cuda_available()
    device = options.device if options.device != "auto" else ("cuda" if cuda else "cpu")
    if device == "cuda" and not cuda:
        raise ModelLoadError(Message("models.no_gpu"))
    precision = options.precision
    if precision == "int4":
        return _choose_int4(device, notes)
    if device == "cuda":
        if precision == "auto":
            precision = "4bit"
        if precision in ("4bit", "8bit") and not _bitsandbytes_available():
            notes.append(Message("models.note.no_bitsandbytes", precision=precision))
            precision = "bf16"
        if precision == "4bit":
            return device, "bfloat16", "4-bit NF4 (double quant, bf16 compute)", notes
        if precision == "8bit":
            return device, "bfloat16", "8-bit (LLM.int8)", notes
        return device, {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[precision], None, notes
    # CPU
    asked = precision
    if precision in ("4bit", "8bit"):
        precision = "auto"
    if precision == "auto":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
        if asked in ("4bit", "8bit"):
            notes.append(Message("models.note.quantization_needs_gpu", asked=asked, precision=precision))
        else:
            why = "models.note.cpu_bf16" if precision == "bf16" else "models.note.cpu_no_bf16"
            notes.append(Message("models.note.cpu_auto", precision=precision, why=Message(why)))
    return device, {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[precision], None, notes


def _choose_int4(device: str, notes: list[str | Message]) -> tuple[str, str, str | None, list[str | Message]]:
    from playground.models.int4 import INT4_QUANTIZATION, unsupported_reason

    reason = unsupported_reason(device)
    if reason:
        raise ModelLoadError(f"int4 cannot load here: {reason}. Choose 4bit (NF4) or bf16.")
    if device == "cuda":
        return device, "bfloat16", INT4_QUANTIZATION, notes
    dtype = "bfloat16" if cpu_has_native_bf16() else "float32"
    notes.append(Message("models.note.int4_cpu", dtype=dtype))
    return device, dtype, INT4_QUANTIZATION, notes


def _gpu_device_map(options: LoadOptions) -> dict[str, int] | str:
    """Where the layers go on CUDA. "sequential" fills GPU 0 and uses the next GPUs only for what
    does not fit: a model too big for one GPU spreads over all visible ones, and one that fits stays
    whole on one (accelerate's "auto" would split it evenly, with a hop between GPUs per token)."""
    if options.gpu is not None:
        return {"": options.gpu}
    return "sequential"


def check_loadable(name_or_path: str, options: LoadOptions | None = None, need_weights: bool = True) -> None:
    """Raise ModelLoadError for what can be known without the weights: the name, the folder,
    the config, the precision on this machine. Cheap, so a switch can check before it frees."""
    from transformers import AutoConfig

    options = options or LoadOptions()
    resolved = resolve(name_or_path, need_weights=need_weights)
    quantization = _choose(options)[2] if need_weights else None
    try:
        config = _from_pretrained(
            AutoConfig, resolved.source, resolved.is_local, trust_remote_code=options.trust_remote_code
        )
    except ModelLoadError:
        raise
    except ValueError as exc:
        raise ModelLoadError(f"Could not read the config of {resolved.source}: {exc}") from exc
    _check_int4_architecture(config, quantization, resolved.name)


def planned_footprint(name_or_path: str, options: LoadOptions | None = None) -> tuple[str, int | None]:
    """(device, estimated bytes once loaded) of a model, before loading it; None where unknown."""
    from playground.models.int4 import INT4_QUANTIZATION
    from playground.models.memory import estimated_bytes

    options = options or LoadOptions()
    resolved = resolve(name_or_path)
    device, dtype_name, quantization, _ = _choose(options)
    if quantization == INT4_QUANTIZATION:
        precision = "int4"
    elif quantization:
        precision = "4bit" if quantization.startswith("4-bit") else "8bit"
    else:
        precision = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}[dtype_name]
    folder = resolved.source if resolved.is_local else None
    return device, estimated_bytes(folder, precision)


def _check_int4_architecture(config: Any, quantization: str | None, name: str) -> None:
    from playground.models.int4 import INT4_QUANTIZATION

    if quantization == INT4_QUANTIZATION and getattr(config, "is_encoder_decoder", False):
        # Their code reads Linear weights directly (T5's wo.weight.dtype), which int4 layers lack.
        raise ModelLoadError(
            f"int4 is for decoder-only models; {name} is an encoder-decoder. Choose bf16 or fp32."
        )


def load_model(
    name_or_path: str, options: LoadOptions | None = None, progress: Progress | None = None
) -> LoadedModel:
    """Load a preset key, HF id or local folder with the precision the options ask for."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from playground.models.int4 import INT4_QUANTIZATION, Int4Error, quantizable, quantize_model_int4

    options = options or LoadOptions()
    start = time.perf_counter()
    if progress:
        progress(0.0, f"Resolving {name_or_path}...")
    resolved = resolve(name_or_path, progress)
    device, dtype_name, quantization, notes = _choose(options)
    common: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    config = _read_config(resolved, common)
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    model_cls = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
    _check_int4_architecture(config, quantization, resolved.name)

    kwargs: dict[str, Any] = dict(common, dtype=getattr(torch, dtype_name))
    int4 = quantization == INT4_QUANTIZATION
    if int4:
        pass  # no device_map: bf16 on the CPU, then onto the device layer by layer as int4 (below)
    elif quantization:
        from transformers import BitsAndBytesConfig

        if quantization.startswith("4-bit"):
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = _gpu_device_map(options)
    elif device == "cuda":
        kwargs["device_map"] = _gpu_device_map(options)

    if progress:
        progress(
            0.65,
            f"Loading weights of {resolved.name} ({dtype_name}{', ' + quantization if quantization else ''})...",
        )
    try:
        tokenizer = _from_pretrained(AutoTokenizer, resolved.source, resolved.is_local, **common)
        model = _from_pretrained(model_cls, resolved.source, resolved.is_local, **kwargs)
        if int4:
            if progress:
                progress(0.85, f"Quantizing {resolved.name} to int4 layer by layer...")
            if not quantizable(model):
                raise ModelLoadError(
                    f"int4: none of {resolved.name}'s layers has a shape the int4 kernel takes (in "
                    "features a multiple of 128, out features of 16). Choose 4bit (NF4) or bf16."
                )
            summary = quantize_model_int4(model, device=device, dtype=getattr(torch, dtype_name))
            if summary.skipped:
                notes.append(f"int4: {summary.quantization_report()}.")
    except ModelLoadError:
        raise
    except Int4Error as exc:
        raise ModelLoadError(f"Could not quantize {resolved.name} to int4: {exc}") from exc
    except torch.cuda.OutOfMemoryError as exc:
        gc.collect()
        torch.cuda.empty_cache()
        raise ModelLoadError(Message("models.out_of_memory", name=resolved.name)) from exc
    except Exception as exc:
        if _pickle_refused(exc):
            raise ModelLoadError(
                f"{resolved.name}'s weights are a pickle that holds more than tensors, which could run "
                "code, so the playground refuses them. Use a model saved as safetensors."
            ) from None
        if isinstance(exc, (OSError, ValueError, KeyError)):
            raise ModelLoadError(f"Could not load {resolved.name}: {exc}") from exc
        raise
    model.eval()
    if device == "cpu":
        model.to("cpu")
    template, context = _tokenizer_template_context(tokenizer, config, resolved, notes)
    if progress:
        progress(1.0, "Loaded.")
    return LoadedModel(
        name=resolved.name,
        source=resolved.source,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype_name,
        quantization=quantization,
        default_template=template,
        context_length=context,
        load_seconds=time.perf_counter() - start,
        options=options,
        is_seq2seq=is_seq2seq,
        notes=notes,
        requested=name_or_path,
    )


def _read_config(resolved: _Resolved, common: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    try:
        return _from_pretrained(AutoConfig, resolved.source, resolved.is_local, **common)
    except ModelLoadError:
        raise
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"{resolved.name} needs custom code from its repository, which this playground does not "
                "run. The operator can allow it (PLAYGROUND_TRUST_REMOTE_CODE=1) for models they trust."
            ) from exc
        raise ModelLoadError(f"Could not read the config of {resolved.source}: {exc}") from exc


def _tokenizer_template_context(
    tokenizer: Any, config: Any, resolved: _Resolved, notes: list[str]
) -> tuple[PromptTemplate, int]:
    """The tokenizer made ready for batching, the model's default template and its context."""
    if tokenizer.pad_token_id is None:
        # Generation and batching need a pad token; eos is the usual stand-in for Llama-family models.
        tokenizer.pad_token = tokenizer.eos_token
    template = get_template(resolved.preset.template if resolved.preset else "chat")
    if template.uses_chat_template and not getattr(tokenizer, "chat_template", None):
        template = get_template("plain")
        notes.append(Message("models.note.no_chat_template"))
    context = getattr(config, "max_position_embeddings", None) or getattr(tokenizer, "model_max_length", 2048)
    if context > 1_000_000:
        context = 2048
    return template, int(context)


def load_without_weights(
    name_or_path: str, engine_url: str, options: LoadOptions | None = None, progress: Progress | None = None
) -> LoadedModel:
    """A model whose generation runs on the external engine at `engine_url`: its tokenizer,
    config and generation_config only (templates, token counts, eos, decoding defaults), no weights."""
    from transformers import AutoTokenizer, GenerationConfig

    from playground.models.weightless import WeightlessModel

    options = options or LoadOptions()
    start = time.perf_counter()
    if progress:
        progress(0.0, f"Resolving {name_or_path}...")
    resolved = resolve(name_or_path, progress, need_weights=False)
    common: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    config = _read_config(resolved, common)
    if progress:
        progress(0.5, f"Loading the tokenizer of {resolved.name} (generation by {engine_url})...")
    try:
        tokenizer = _from_pretrained(AutoTokenizer, resolved.source, resolved.is_local, **common)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"Could not load the tokenizer of {resolved.name}: {exc}") from exc
    try:
        generation_config = _from_pretrained(GenerationConfig, resolved.source, resolved.is_local)
    except (OSError, ValueError, ModelLoadError):
        generation_config = None  # optional: many models ship none
    notes: list[str | Message] = [Message("models.note.weightless", url=engine_url)]
    template, context = _tokenizer_template_context(tokenizer, config, resolved, notes)
    if progress:
        progress(1.0, "Loaded.")
    return LoadedModel(
        name=resolved.name,
        source=resolved.source,
        model=WeightlessModel(config, generation_config, engine_url),
        tokenizer=tokenizer,
        device="external",
        dtype=str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "as served"),
        quantization=None,
        default_template=template,
        context_length=context,
        load_seconds=time.perf_counter() - start,
        options=options,
        is_seq2seq=bool(getattr(config, "is_encoder_decoder", False)),
        notes=notes,
        requested=name_or_path,
    )


def free(loaded: LoadedModel | None) -> None:
    """Drop a model and give its memory back (GPU memory too)."""
    if loaded is None:
        return
    loaded.model = None
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
