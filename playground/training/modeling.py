"""The base model and its LoRA wrapper: fp32 LoRA on CPU, QLoRA (4-bit NF4 base) on CUDA.

Decoder-only models train as peft CAUSAL_LM, encoder-decoder ones (T5) as SEQ_2_SEQ_LM.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.models.unwrap import base_model
from playground.prompts.templates import PromptTemplate
from playground.training.config import TrainingConfig

ALIASES = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "o_proj",
    "gate": "gate_proj",
    "up": "up_proj",
    "down": "down_proj",
}
GROUPS = {"attention": ["q_proj", "k_proj", "v_proj", "o_proj"], "mlp": ["gate_proj", "up_proj", "down_proj"]}
# T5 spells its layers differently (q, k, v, o; wi or wi_0/wi_1, wo): the aliases map onto these.
T5_NAMES = {
    "q_proj": ("q",),
    "k_proj": ("k",),
    "v_proj": ("v",),
    "o_proj": ("o",),
    "gate_proj": ("wi_0", "wi"),
    "up_proj": ("wi_1", "wi"),
    "down_proj": ("wo",),
}
SHORT_NAMES = {"wi", "wo"}  # real module names too short for the "looks like a name" check
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def resolve_target_modules(spec: str | list[str]) -> list[str] | str:
    """ "q,v" | "attention" | "all-linear" | explicit names -> what peft's LoraConfig takes."""
    items = spec if isinstance(spec, list) else [s for s in re.split(r"[,\s]+", spec or "") if s]
    if not items:
        raise PlaygroundError("target_modules is empty: use q,v, attention, all-linear or module names")
    if items == ["all-linear"]:
        return "all-linear"
    out: list[str] = []
    for item in items:
        if item in ALIASES:
            out.append(ALIASES[item])
        elif item in GROUPS:
            out.extend(GROUPS[item])
        elif item == "all-linear":
            raise PlaygroundError("target_modules: all-linear cannot be combined with other modules")
        elif item in SHORT_NAMES:
            out.append(item)
        elif len(item) <= 2 or not _MODULE_RE.match(item):
            raise PlaygroundError(
                f"unknown target module {item!r}: use q, k, v, o, gate, up, down, attention, mlp, "
                "all-linear or full module names such as q_proj"
            )
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def linear_module_names(model: Any) -> set[str]:
    """Short names (last part) of the Linear layers that LoRA can wrap."""
    import torch

    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
    }


def fit_target_modules(targets: list[str] | str, available: set[str]) -> list[str] | str:
    """Swap alias names the model lacks (q_proj on T5) for its own spelling of them (q)."""
    if targets == "all-linear":
        return targets
    out: list[str] = []
    for target in targets:
        own = [name for name in T5_NAMES.get(target, ()) if name in available]
        if target.rsplit(".", 1)[-1] not in available and own:
            out.append(own[0])
        else:
            out.append(target)
    return list(dict.fromkeys(out))


def check_target_modules(targets: list[str] | str, available: set[str], model_name: str) -> None:
    if targets == "all-linear":
        return
    missing = [t for t in targets if t.rsplit(".", 1)[-1] not in available]
    if missing:
        raise PlaygroundError(
            f"unknown target module(s) {', '.join(missing)} for {model_name}; its linear layers are "
            f"{', '.join(sorted(available))}"
        )


def check_targets_offline(config: TrainingConfig) -> None:
    """Check target modules against a local model folder without loading its weights."""
    folder = Path(config.model).expanduser()
    if not (folder / "config.json").is_file():
        return
    try:
        from accelerate import init_empty_weights
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        model_config = AutoConfig.from_pretrained(folder)
        auto = AutoModelForSeq2SeqLM if model_config.is_encoder_decoder else AutoModelForCausalLM
        with init_empty_weights():
            skeleton = auto.from_config(model_config)
    except Exception:  # noqa: BLE001 - the job itself reports load errors with full context
        return
    available = linear_module_names(skeleton)
    targets = fit_target_modules(resolve_target_modules(config.target_modules), available)
    check_target_modules(targets, available, folder.name)


def is_seq2seq_model(model: str) -> bool | None:
    """Whether `model` is encoder-decoder, from its config alone (None: unknown without a download)."""
    from playground.models.presets import find_preset

    preset = find_preset(model)
    if preset is not None:
        return preset.seq2seq
    try:
        from transformers import AutoConfig

        folder = Path(model).expanduser()
        source = str(folder) if (folder / "config.json").is_file() else model
        return bool(AutoConfig.from_pretrained(source, local_files_only=True).is_encoder_decoder)
    except Exception:  # noqa: BLE001 - not local or not cached: the job finds out when it loads
        return None


@dataclass
class Base:
    model: Any
    tokenizer: Any
    device: str
    method: str  # "lora" or "qlora"
    template: PromptTemplate
    name: str
    source: str
    notes: list[str] = field(default_factory=list)
    seq2seq: bool = False


def choose_method(config: TrainingConfig) -> str:
    import torch

    cuda = torch.cuda.is_available()
    if config.method == "qlora" and not cuda:
        raise PlaygroundError(
            "QLoRA needs a CUDA GPU (4-bit bitsandbytes); on CPU choose method lora or auto."
        )
    if config.method == "auto":
        return "qlora" if cuda else "lora"
    return config.method


def load_base(config: TrainingConfig, gpu: int | None = None) -> Base:
    """The base model for this config: fp32 on CPU; 4-bit NF4 (double quant, bf16 compute) for QLoRA.

    `gpu`: load it whole onto this GPU (each data-parallel rank has its own)."""
    from playground.models import LoadOptions, load_model

    method = choose_method(config)
    if method == "qlora":
        options = LoadOptions(precision="4bit", device="cuda", gpu=gpu)
    else:
        import torch

        cuda = torch.cuda.is_available()
        options = LoadOptions(precision="bf16" if cuda else "fp32", gpu=gpu if cuda else None)
    loaded = load_model(config.model, options)
    notes = [str(note) for note in loaded.notes]
    if method == "qlora" and not loaded.quantization:
        if config.method == "qlora":
            raise PlaygroundError(
                "QLoRA needs bitsandbytes, which is not installed: pip install bitsandbytes."
            )
        method = "lora"
        notes.append("bitsandbytes missing: trained LoRA on a bf16 base instead of QLoRA.")
    return Base(
        model=loaded.model,
        tokenizer=loaded.tokenizer,
        device=loaded.device,
        method=method,
        template=loaded.default_template,
        name=loaded.name,
        source=loaded.source,
        notes=notes,
        seq2seq=loaded.is_seq2seq,
    )


def wrap_lora(base: Base, config: TrainingConfig, init_adapter: Path | None = None) -> Any:
    """A PeftModel with fresh LoRA weights, or the weights of `init_adapter` to continue from."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    model = base.model
    available = linear_module_names(model)
    targets = fit_target_modules(resolve_target_modules(config.target_modules), available)
    check_target_modules(targets, available, base.name)
    checkpointing = config.gradient_checkpointing
    if checkpointing is None:
        checkpointing = base.method == "qlora"
    if base.method == "qlora" and os.environ.get("PLAYGROUND_QLORA_UPCAST") == "1":
        # peft's recipe, as the homework ran it: norms, embeddings and LM head upcast to fp32.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif base.method == "qlora":
        # The rest of the base stays bf16, as inference runs it: peft's fp32 upcast makes the whole
        # residual stream fp32 (twice the bytes in every elementwise op, casts around every 4-bit
        # product) and adds 0.5 GB at 7B, while only the LoRA weights need fp32 (below).
        for param in model.parameters():
            param.requires_grad = False
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if init_adapter is not None:
        try:
            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise PlaygroundError(
                f"The adapter {init_adapter.name} does not fit {base.name} (trained on another base model?): {exc}"
            ) from exc
    else:
        lora = LoraConfig(
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=targets,
            bias="none",
            task_type="SEQ_2_SEQ_LM" if base.seq2seq else "CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    # Adapters train in fp32 whatever the base dtype, so small updates are not rounded away.
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    model.peft_config["default"].base_model_name_or_path = config.model
    if use_fused_layers(model, config, checkpointing, base.name):
        from playground.training import fused as fused_layers

        fused_layers.install(model, *choose_kept_layers(model, config, base.device))
    elif config.torch_compile:
        compile_layers(model)
    model.train()
    return model


def use_fused_layers(model: Any, config: TrainingConfig, checkpointing: bool, name: str) -> bool:
    """Whether the decoder layers train through fused_layers (their own recompute and backward).

    Auto (None) takes them wherever they apply under gradient checkpointing; without checkpointing
    autograd keeps every activation and re-runs nothing, which fused layers could not beat."""
    from playground.training import fused as fused_layers

    wanted = config.fused_layers
    if wanted is False or (wanted is None and (not checkpointing or config.torch_compile)):
        return False
    if wanted and config.torch_compile:
        raise PlaygroundError("fused_layers and torch_compile speed up the same layers: choose one of them.")
    reason = fused_layers.unsupported_reason(model, config.max_length)
    if reason is None and not checkpointing:
        reason = "gradient checkpointing is off (fused layers are a faster checkpointing)"
    if reason is not None and wanted:
        raise PlaygroundError(f"fused_layers cannot train {name}: {reason}. Leave fused_layers on auto.")
    return reason is None


def choose_kept_layers(model: Any, config: TrainingConfig, device: str) -> tuple[int, int]:
    """How many fused layers keep their activations instead of recomputing them, and how many of
    those their dequantized weights too (fused_layers.kept_layers_for): as many as fit in
    `activation_memory_gb`, or on auto in the GPU memory that is free now, less a margin for the
    rest of a step (logits and the LM head's gradient, one layer's working tensors, the allocator's
    slack). Auto keeps none off CUDA, where host memory is shared with everything else."""
    import torch

    from playground.training import fused as fused_layers

    tokens = config.micro_batch * config.max_length
    if config.activation_memory_gb is not None:
        return fused_layers.kept_layers_for(model, config.activation_memory_gb * 2**30, tokens)
    if device != "cuda" or not torch.cuda.is_available():
        return 0, 0
    gpu = next(p for p in model.parameters() if p.is_cuda).device
    free, total = torch.cuda.mem_get_info(gpu)
    inner = base_model(model)
    margin = 0.1 * total + 2 * 2**30 + tokens * inner.config.vocab_size * 12
    return fused_layers.kept_layers_for(model, free - margin, tokens)


def training_attention(device: str) -> contextlib.AbstractContextManager:
    """The attention kernels a training step may use (forward and backward, recompute included).

    On CUDA, cuDNN's fused attention is what sdpa picks first on Hopper, but it builds an execution
    plan on the host for each new shape, and packed rows change length every step: about 1 ms of
    host time per call, more than the kernel itself. Flash and memory-efficient attention do not.
    """
    if device != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def compile_layers(model: Any) -> int:
    """Compile each decoder layer (LoRA included): one graph serves them all, and it fuses the
    norms, rotary and activation ops that otherwise cost a kernel launch each from Python.
    Gradient checkpointing stays outside, around the compiled call. Returns how many were compiled."""
    inner = base_model(model)
    layers = getattr(getattr(inner, "model", None), "layers", None)
    if layers is None:
        return 0
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)
