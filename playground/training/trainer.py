"""The training loop: plain PyTorch so that a resumed run continues exactly where it stopped.

Data order: micro-batch m belongs to epoch m // batches_per_epoch and takes its slice of that
epoch's permutation, drawn from (seed, epoch) alone. So the position in the data is just the
optimizer step, and a checkpoint (weights, optimizer, scheduler, RNG states, step) is enough
to replay the rest of the run bit for bit on CPU.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.prompts.templates import PromptTemplate, get_template
from playground.training.adapters import resolve_adapter, save_adapter
from playground.training.checkpoints import find_checkpoint, load_checkpoint, save_checkpoint
from playground.training.config import TrainingConfig
from playground.training.dataset import TrainingData, prepare_data
from playground.training.evaluate import evaluate, token_loss_sum
from playground.training.formatting import FormattedExample, build_prompt, format_example, pad_batch
from playground.training.modeling import load_base, wrap_lora

Event = dict[str, Any]
GRAD_CLIP = 1.0


@dataclass
class TrainResult:
    status: str  # "finished" or "stopped"
    step: int
    total_steps: int
    adapter: str | None = None
    checkpoint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """How micro-batches map onto examples and optimizer steps."""

    n_examples: int
    micro_batch: int
    grad_accum: int
    total_steps: int
    total_micro: int
    seed: int

    @classmethod
    def build(cls, n_examples: int, config: TrainingConfig) -> Plan:
        per_epoch = math.ceil(n_examples / config.micro_batch)
        if config.max_steps:
            total_micro = config.max_steps * config.grad_accum
        else:
            total_micro = max(1, math.ceil(config.epochs * per_epoch))
        total_steps = math.ceil(total_micro / config.grad_accum)
        return cls(n_examples, config.micro_batch, config.grad_accum, total_steps, total_micro, config.seed)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.n_examples / self.micro_batch)

    def epoch_order(self, epoch: int) -> list[int]:
        import numpy as np

        return np.random.default_rng([self.seed, epoch]).permutation(self.n_examples).tolist()

    def micro_batches(self, step: int) -> list[int]:
        """Global micro-batch numbers of optimizer step `step` (0-based)."""
        start = step * self.grad_accum
        return list(range(start, min(start + self.grad_accum, self.total_micro)))


def warmup_steps(config: TrainingConfig, total_steps: int) -> int:
    return config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)


def make_scheduler(optimizer: Any, config: TrainingConfig, total_steps: int) -> Any:
    from transformers import get_scheduler

    name = {"constant": "constant_with_warmup"}.get(config.scheduler, config.scheduler)
    return get_scheduler(name, optimizer, warmup_steps(config, total_steps), total_steps)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Runs one training job in this process; `job_dir` holds its checkpoints."""

    def __init__(
        self,
        config: TrainingConfig,
        job_dir: str | Path,
        on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.config = config.resolved()
        self.job_dir = Path(job_dir)
        self.on_event = on_event or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self._epoch_cache: tuple[int, list[int]] | None = None

    # -- setup ---------------------------------------------------------------------------------

    def _starting_point(self) -> tuple[Path | None, Path | None]:
        """(checkpoint to resume exactly, adapter to start from): the job's own checkpoints win."""
        own = find_checkpoint(self.job_dir)
        if own is not None:
            return own, None
        source = self.config.resume_from
        if not source:
            return None, None
        found = find_checkpoint(source)
        if found is not None:
            return found, None
        return None, resolve_adapter(source)

    def _template(self, default: PromptTemplate) -> PromptTemplate:
        if self.config.template:
            return get_template(self.config.template, self.config.system)
        if self.config.system is not None:
            return PromptTemplate(default.name, default.text, self.config.system, default.notes)
        return default

    def _format(self, data: TrainingData, tokenizer: Any, template: PromptTemplate) -> list[FormattedExample]:
        cfg = self.config
        formatted = [format_example(e, tokenizer, template, cfg.loss_mode, cfg.max_length) for e in data.train]
        # Position 0 is never predicted, so an example needs a trained label after it.
        usable = [f for f in formatted if any(label != -100 for label in f.labels[1:])]
        if not usable:
            raise PlaygroundError(
                f"No example has output tokens within max_length={cfg.max_length}: the prompts fill it. "
                "Raise max_length or shorten the template."
            )
        if len(usable) < len(formatted):
            self._notes.append(
                f"{len(formatted) - len(usable)} example(s) skipped: the prompt alone fills max_length."
            )
        return usable

    # -- the loop ------------------------------------------------------------------------------

    def _examples_of(self, plan: Plan, micro: int) -> list[int]:
        epoch, index = divmod(micro, plan.batches_per_epoch)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            self._epoch_cache = (epoch, plan.epoch_order(epoch))
        order = self._epoch_cache[1]
        return order[index * plan.micro_batch : (index + 1) * plan.micro_batch]

    def run(self) -> TrainResult:
        import torch

        cfg = self.config
        self._notes: list[str] = []
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        was_filling = torch.utils.deterministic.fill_uninitialized_memory
        data = prepare_data(cfg)
        _seed_everything(cfg.seed)
        base = load_base(cfg)
        if base.device == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
            # Filling every new tensor costs time and is not needed: nothing reads memory it did not write.
            torch.utils.deterministic.fill_uninitialized_memory = False
        try:
            return self._run(data, base)
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            torch.utils.deterministic.fill_uninitialized_memory = was_filling

    def _run(self, data: TrainingData, base: Any) -> TrainResult:
        import torch

        cfg = self.config
        self._notes.extend(base.notes)
        checkpoint, init_adapter = self._starting_point()
        model = wrap_lora(base, cfg, init_adapter)
        tokenizer = base.tokenizer
        pad_id = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)
        template = self._template(base.template)
        train = self._format(data, tokenizer, template)
        eval_formatted = [format_example(e, tokenizer, template, cfg.loss_mode, cfg.max_length) for e in data.eval]
        pairs = [(build_prompt(e, template, cfg.loss_mode, tokenizer), e.output or "") for e in data.eval]

        plan = Plan.build(len(train), cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = make_scheduler(optimizer, cfg, plan.total_steps)
        state: dict[str, Any] = {"step": 0, "tokens": 0, "elapsed_s": 0.0, "loss_history": [], "eval_history": []}
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, model, optimizer, scheduler)
            if state["step"] > plan.total_steps:
                raise PlaygroundError(
                    f"{checkpoint} is at step {state['step']}, past this run's {plan.total_steps} steps; "
                    "raise max_steps or epochs to continue it."
                )
        n_trainable = sum(p.numel() for p in params)
        self.on_event(
            {
                "type": "start",
                "total_steps": plan.total_steps,
                "step": state["step"],
                "resumed_from": str(checkpoint) if checkpoint else None,
                "init_adapter": str(init_adapter) if init_adapter else None,
                "n_train": len(train),
                "n_eval": len(eval_formatted),
                "trainable_params": n_trainable,
                "method": base.method,
                "device": base.device,
                "template": template.name,
                "notes": self._notes,
            }
        )

        def do_eval(step: int) -> dict[str, float]:
            metrics = evaluate(
                model, tokenizer, eval_formatted, pairs, cfg.micro_batch * 2, cfg.max_length, pad_id
            )
            state["eval_history"].append([step, metrics["eval_loss"], metrics["eval_perplexity"]])
            self.on_event({"type": "eval", "step": step, **metrics})
            return metrics

        session_start = time.perf_counter()

        def elapsed() -> float:
            return state["elapsed_s"] + time.perf_counter() - session_start

        def checkpoint_now() -> Path:
            path = save_checkpoint(self.job_dir, model, optimizer, scheduler, {**state, "elapsed_s": elapsed()})
            self.on_event({"type": "checkpoint", "step": state["step"], "path": str(path)})
            return path

        session_tokens, session_train_s, session_steps = 0, 0.0, 0
        last_saved = state["step"] if checkpoint is not None else -1
        model.train()
        while state["step"] < plan.total_steps:
            if self.should_stop():
                path = checkpoint_now() if last_saved != state["step"] else find_checkpoint(self.job_dir)
                self.on_event({"type": "stopped", "step": state["step"], "checkpoint": str(path)})
                return TrainResult("stopped", state["step"], plan.total_steps, checkpoint=str(path))
            t0 = time.perf_counter()
            micro = plan.micro_batches(state["step"])
            batches = [pad_batch([train[i] for i in self._examples_of(plan, m)], pad_id) for m in micro]
            n_trained = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
            lr = optimizer.param_groups[0]["lr"]
            step_tokens = sum(int(b["attention_mask"].sum()) for b in batches)
            loss_sum = 0.0
            for batch in batches:
                loss, _ = token_loss_sum(model, batch)
                (loss / n_trained).backward()
                loss_sum += float(loss.detach())
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens"] += step_tokens
            session_tokens += step_tokens
            session_steps += 1
            session_train_s += time.perf_counter() - t0
            loss_value = loss_sum / n_trained
            if not math.isfinite(loss_value):
                raise PlaygroundError(
                    f"The loss became {loss_value} at step {state['step']}; lower the learning rate (now {cfg.lr})."
                )
            state["loss_history"].append([state["step"], loss_value])
            step_s = session_train_s / session_steps
            self.on_event(
                {
                    "type": "step",
                    "step": state["step"],
                    "epoch": (micro[-1] + 1) / plan.batches_per_epoch,
                    "loss": loss_value,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens": step_tokens,
                    "tokens_per_s": session_tokens / max(session_train_s, 1e-9),
                    "eta_s": (plan.total_steps - state["step"]) * step_s,
                    "elapsed_s": elapsed(),
                }
            )
            if eval_formatted and cfg.eval_every and state["step"] % cfg.eval_every == 0:
                do_eval(state["step"])
            if cfg.save_every and state["step"] % cfg.save_every == 0 and state["step"] < plan.total_steps:
                checkpoint_now()
                last_saved = state["step"]

        final_eval: dict[str, float] = {}
        if eval_formatted:
            done = state["eval_history"] and state["eval_history"][-1][0] == state["step"]
            final_eval = (
                do_eval(state["step"])
                if not done
                else {"eval_loss": state["eval_history"][-1][1], "eval_perplexity": state["eval_history"][-1][2]}
            )
        history = state["loss_history"]
        metrics = {
            "steps": state["step"],
            "final_loss": history[-1][1] if history else None,
            "tokens": state["tokens"],
            "elapsed_s": round(elapsed(), 3),
            "tokens_per_s": session_tokens / max(session_train_s, 1e-9),
            **final_eval,
        }
        metadata = {
            "base_model": cfg.model,
            "base_source": base.source,
            "method": base.method,
            "dataset": {
                "name": data.dataset.name,
                "path": data.dataset.source or cfg.data,
                "sha256": data.dataset.sha256,
                "n_train": len(train),
                "n_eval": len(eval_formatted),
                "eval_source": data.eval_source,
            },
            "template": {"name": template.name, "text": template.text, "system": template.system, "sha": template.sha},
            "settings": cfg.to_dict(),
            "continued_from": str(init_adapter) if init_adapter else None,
            "metrics": metrics,
            "loss_history": history,
            "eval_history": state["eval_history"],
            "notes": self._notes,
        }
        adapter = save_adapter(model, cfg.output_dir(), metadata)
        self.on_event({"type": "finished", "step": state["step"], "adapter": str(adapter), **metrics})
        return TrainResult("finished", state["step"], plan.total_steps, adapter=str(adapter), metrics=metrics)
