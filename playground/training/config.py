"""Training settings: one dataclass, read from YAML, a dict or CLI flags, checked before a job starts."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.names import is_valid_name, named_path

LOSS_MODES = ("masked_prompt", "full_text", "no_template")
METHODS = ("auto", "lora", "qlora")
SCHEDULERS = ("linear", "cosine", "constant")


# The web form's rows, in order; a field with a `group` is on the form (under its `label`).
FORM_GROUPS = ("examples", "lora", "schedule", "batches", "packing", "gpu_speed")


def _f(
    default: Any,
    help: str,
    group: str = "",
    label: str = "",
    info: str = "",
    choices: tuple[str, ...] = (),
) -> Any:
    """A field documented where it is declared: `help` for the CLI's flag; the web form's `label`,
    `info` (the help unless given: a form's checkbox has no None to explain) and `choices`."""
    metadata = {"help": help}
    if group:
        metadata |= {"group": group, "label": label or help, "info": info or help, "choices": choices}
    return field(default=default, metadata=metadata)


def form_fields() -> list[dataclasses.Field]:
    """The settings the web form shows, in the order of FORM_GROUPS, then of declaration."""
    shown = [f for f in dataclasses.fields(TrainingConfig) if f.metadata.get("group")]
    return sorted(shown, key=lambda f: FORM_GROUPS.index(f.metadata["group"]))


@dataclass
class TrainingConfig:
    """Everything that decides a training run; `to_dict()` is stored with the job and the adapter."""

    model: str = _f("smollm2-135m-instruct", "base model: a preset, a HF id or a local folder")
    data: str = _f("", "training data file (JSON/JSONL rows with instruction, input, output)")
    eval_data: str = _f("", "separate held-out file; otherwise eval_size/eval_fraction split the data")
    first_n: int = _f(
        0,
        "use only the first N examples of the data file (0 = all)",
        "examples",
        "First N examples (0 = all)",
    )
    eval_size: int = _f(0, "hold out this many examples for evaluation", "examples", "Held-out examples")
    eval_fraction: float = _f(0.0, "or hold out this fraction of the examples")
    template: str = _f("", "prompt template name or raw text ('' = the model's default)")
    system: str | None = _f(None, "system text for the template (None = the template's own)")
    loss_mode: str = _f(
        "masked_prompt",
        "masked_prompt | full_text | no_template",
        "examples",
        "Loss on",
        "answer only: the model learns to write the output; full text: the prompt too; no template: raw text",
        LOSS_MODES,
    )
    method: str = _f(
        "auto", "auto (QLoRA on CUDA, LoRA on CPU) | lora | qlora", "examples", "Method", choices=METHODS
    )
    r: int = _f(8, "LoRA rank", "lora", "r")
    alpha: float = _f(16.0, "LoRA alpha (scale = alpha / r)", "lora", "alpha")
    dropout: float = _f(0.05, "LoRA dropout", "lora", "dropout")
    target_modules: str | list[str] = _f(
        "q,v",
        "q,v | attention | all-linear | comma list of module names",
        "lora",
        "Target modules",
        choices=("q,v", "attention", "all-linear"),
    )
    lr: float = _f(2e-4, "peak learning rate", "schedule", "Learning rate")
    scheduler: str = _f(
        "linear", "linear | cosine | constant (after warm-up)", "schedule", "Scheduler", choices=SCHEDULERS
    )
    warmup_steps: int = _f(0, "warm-up optimizer steps", "schedule", "Warm-up steps")
    warmup_ratio: float = _f(0.0, "or warm-up as a fraction of all steps")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    epochs: float = _f(
        1.0, "passes over the training examples (ignored when max_steps > 0)", "schedule", "Epochs"
    )
    max_steps: int = _f(0, "optimizer steps to run (0 = from epochs)", "schedule", "Max steps (0 = epochs)")
    micro_batch: int = _f(
        4,
        "examples per forward pass (packed: up to micro_batch x max_length tokens)",
        "batches",
        "Micro-batch",
    )
    grad_accum: int = _f(4, "micro-batches per optimizer step", "batches", "Grad accumulation")
    max_length: int = _f(
        512, "tokens per example (prompt + output), longer ones are cut", "batches", "Max length"
    )
    seed: int = _f(42, "seed for the data split, the data order and the LoRA init", "batches", "Seed")
    eval_every: int = _f(0, "evaluate every N steps (0 = only at the end)", "batches", "Eval every")
    save_every: int = _f(
        50, "checkpoint every N steps (0 = only when stopped)", "batches", "Checkpoint every"
    )
    output: str = _f("", "adapters/NAME to write ('' = a name from the model, data and time)")
    resume_from: str = _f("", "an adapter to continue from, or a job/checkpoint to resume exactly")
    gradient_checkpointing: bool | None = _f(None, "trade compute for memory (None = on for QLoRA)")
    packing: bool | None = _f(
        None,
        "pack each step's examples end to end, no padding (None = on for decoder-only models)",
        "packing",
        "Pack examples (no padding; same loss, fewer passes)",
        "Puts several short examples in one row instead of padding each; the loss is the same.",
    )
    torch_compile: bool = _f(
        False,
        "compile the decoder layers: a minute or so once, then faster steps (pays off in long runs)",
        "gpu_speed",
        "Compile the layers (torch.compile)",
        "Spends about a minute once turning the layers into faster GPU code; later steps are quicker.",
    )
    fused_layers: bool | None = _f(
        None,
        "Llama/Mistral layers with their own recompute and hand-written backward (None = on under "
        "gradient checkpointing where they apply, unless torch_compile)",
        "gpu_speed",
        "Fused layers",
        "QLoRA on Llama/Mistral: each layer computes its own backward pass, which saves memory and time.",
    )
    activation_memory_gb: float | None = _f(
        None,
        "GPU memory fused layers may fill with activations (then dequantized weights) to skip their "
        "recompute (None = what is free on a GPU after a margin for the rest of the step, 0 = recompute "
        "every layer)",
        "gpu_speed",
        "Activation memory, GB",
        "GPU memory for keeping layer results instead of recomputing them: empty = whatever is free, "
        "0 = always recompute (least memory).",
    )

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise PlaygroundError(
                f"Unknown training setting(s): {', '.join(unknown)}. Known: {', '.join(known)}."
            )
        kwargs = {name: _coerce(name, known[name].type, value) for name, value in values.items()}
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainingConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise PlaygroundError(f"No config file {path}.")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PlaygroundError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise PlaygroundError(f"{path} must hold a mapping of setting: value.")
        config = cls.from_dict(values)
        # Data paths are relative to the working folder; fall back to the YAML's own folder.
        for name in ("data", "eval_data"):
            value = getattr(config, name)
            if value and not Path(value).expanduser().exists() and (path.parent / value).exists():
                setattr(config, name, str((path.parent / value).resolve()))
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainingConfig:
        return TrainingConfig.from_dict({**self.to_dict(), **changes})

    def resolved(self) -> TrainingConfig:
        """A copy fit to hand to another process: absolute file paths and an output name."""
        changes: dict[str, Any] = {}
        for name in ("data", "eval_data", "model", "resume_from"):
            value = getattr(self, name)
            if value and Path(value).expanduser().exists():
                changes[name] = str(Path(value).expanduser().resolve())
        if not self.output:
            from datetime import datetime

            model = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.model.rstrip("/")).name) or "model"
            data = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.data).stem) or "data"
            changes["output"] = f"{model}-{data}-{datetime.now():%Y%m%d-%H%M%S}"[:100]
        return self.replace(**changes) if changes else self

    # -- derived values -----------------------------------------------------------------------

    @property
    def output_name(self) -> str:
        return Path(self.output).name if self.output else ""

    def output_dir(self) -> Path:
        """Where the adapter goes: `adapters/NAME` and bare names live in adapters_dir()."""
        from playground.paths import adapters_dir

        out = Path(self.output).expanduser()
        if out.is_absolute():
            return out
        if _in_adapters_dir(out):
            return named_path(adapters_dir(), out.parts[-1], "adapter")
        return out.resolve()

    # -- validation ---------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every problem with the numbers and choices (no file access)."""
        out: list[str] = []

        def need(ok: bool, message: str) -> None:
            if not ok:
                out.append(message)

        need(bool(self.model.strip()), "model is empty: name a preset, a HF id or a local folder")
        need(bool(self.data.strip()), "data is empty: give a training data file")
        need(self.first_n >= 0, f"first_n must be 0 (all) or more (got {self.first_n})")
        need(self.eval_size >= 0, f"eval_size must be 0 or more (got {self.eval_size})")
        need(0 <= self.eval_fraction < 1, f"eval_fraction must be in [0, 1) (got {self.eval_fraction})")
        need(
            not (self.eval_size and self.eval_fraction),
            "give eval_size or eval_fraction, not both",
        )
        need(
            not (self.eval_data and (self.eval_size or self.eval_fraction)),
            "give eval_data or a held-out split (eval_size/eval_fraction), not both",
        )
        need(self.loss_mode in LOSS_MODES, f"loss_mode must be one of {', '.join(LOSS_MODES)}")
        need(self.method in METHODS, f"method must be one of {', '.join(METHODS)}")
        need(self.scheduler in SCHEDULERS, f"scheduler must be one of {', '.join(SCHEDULERS)}")
        need(self.r >= 1, f"r (LoRA rank) must be at least 1 (got {self.r})")
        need(self.alpha > 0, f"alpha must be positive (got {self.alpha})")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1) (got {self.dropout})")
        need(0 < self.lr < 1, f"lr must be between 0 and 1 (got {self.lr})")
        need(self.warmup_steps >= 0, f"warmup_steps must be 0 or more (got {self.warmup_steps})")
        need(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        need(not (self.warmup_steps and self.warmup_ratio), "give warmup_steps or warmup_ratio, not both")
        need(self.weight_decay >= 0, f"weight_decay must be 0 or more (got {self.weight_decay})")
        need(self.max_steps >= 0, f"max_steps must be 0 (use epochs) or more (got {self.max_steps})")
        need(
            self.max_steps > 0 or (math.isfinite(self.epochs) and self.epochs > 0),
            f"epochs must be positive when max_steps is 0 (got {self.epochs})",
        )
        need(self.micro_batch >= 1, f"micro_batch must be at least 1 (got {self.micro_batch})")
        need(self.grad_accum >= 1, f"grad_accum must be at least 1 (got {self.grad_accum})")
        need(self.max_length >= 8, f"max_length must be at least 8 tokens (got {self.max_length})")
        need(self.eval_every >= 0, f"eval_every must be 0 or more (got {self.eval_every})")
        need(self.save_every >= 0, f"save_every must be 0 or more (got {self.save_every})")
        need(
            self.activation_memory_gb is None or self.activation_memory_gb >= 0,
            f"activation_memory_gb must be 0 (recompute every layer), more, or empty for auto "
            f"(got {self.activation_memory_gb})",
        )
        if self.output:
            output = Path(self.output).expanduser()
            need(
                output.is_absolute() or _in_adapters_dir(output),
                f"output {self.output!r} must be an adapter name (adapters/NAME), not a path elsewhere",
            )
            need(
                is_valid_name(self.output_name),
                f"output name {self.output_name!r} may only use letters, digits, spaces, '.', '_' and '-'",
            )
        try:
            from playground.training.modeling import resolve_target_modules

            resolve_target_modules(self.target_modules)
        except PlaygroundError as exc:
            out.append(str(exc))
        return out

    def validate(self) -> None:
        """Raise one PlaygroundError listing every problem with the settings."""
        problems = self.problems()
        if problems:
            raise PlaygroundError("Training settings: " + "; ".join(problems) + ".")


def _in_adapters_dir(out: Path) -> bool:
    """NAME or adapters/NAME: the forms that mean "in adapters_dir()" (any other relative path is refused)."""
    parts = out.parts
    return not out.is_absolute() and (len(parts) == 1 or (len(parts) == 2 and parts[0] == "adapters"))


def check_loss_mode(loss_mode: str, seq2seq: bool, model_name: str) -> None:
    """full_text trains on the prompt, which an encoder-decoder model reads but never generates."""
    if seq2seq and loss_mode == "full_text":
        raise PlaygroundError(
            f"loss_mode full_text does not apply to {model_name}: it is an encoder-decoder model, whose "
            "decoder generates only the output (the prompt goes to the encoder). Use masked_prompt or "
            "no_template."
        )


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """YAML and forms give strings for numbers ("2e-4" is a string in YAML 1.1)."""
    kind = str(annotation)
    if value is None:
        if "None" in kind:
            return None
        raise PlaygroundError(f"Training setting {name} cannot be empty.")
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if kind in ("float", "float | None"):
            if isinstance(value, bool):
                raise ValueError
            if (
                kind == "float | None"
                and isinstance(value, str)
                and value.strip().lower() in ("auto", "none", "")
            ):
                return None
            return float(value)
        if kind in ("bool | None", "bool"):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("auto", "none", "") and kind == "bool | None":
                    return None
                if lowered in ("true", "yes", "1", "on", "false", "no", "0", "off"):
                    return lowered in ("true", "yes", "1", "on")
                raise ValueError
            return bool(value)
        if kind == "str | list[str]":
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            return str(value)
        if kind == "str | None" or kind == "str":
            return str(value)
    except (TypeError, ValueError):
        wanted = kind.replace(" | None", " (or empty for auto)").replace("float", "number")
        raise PlaygroundError(f"Training setting {name}: {value!r} is not a valid {wanted}.") from None
    return value
