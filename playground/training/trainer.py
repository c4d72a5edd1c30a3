"""The training loop: plain PyTorch, so that a resumed run continues exactly where it stopped.

A checkpoint holds the adapter weights, optimizer, scheduler, RNG states and the step; with
the data order fixed by (seed, step) (see plan.py) that replays the rest of a run bit for bit
on CPU. Events go to `on_event`: start, step, eval, checkpoint, stopped, finished.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playground.data_types import Example
from playground.errors import PlaygroundError
from playground.models.unwrap import pad_id
from playground.prompts.templates import PromptTemplate, training_template
from playground.training.adapters import read_adapter, resolve_adapter, save_adapter
from playground.training.checkpoints import (
    checkpoints_dir,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from playground.training.config import TrainingConfig, check_loss_mode
from playground.training.dataset import TrainingData, prepare_data
from playground.training.distributed import Ranks, any_rank, sum_gradients, sum_values
from playground.training.distributed import finish as finish_ranks
from playground.training.distributed import start as start_ranks
from playground.training.evaluate import evaluate
from playground.training.formatting import FormattedExample, build_prompt, pad_batch
from playground.training.loss import count_trained, token_loss_sum
from playground.training.modeling import Base, load_base, training_attention, wrap_lora
from playground.training.packing import pack_step, real_tokens
from playground.training.plan import DataOrder, Plan, make_scheduler
from playground.training.token_cache import format_all

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


@dataclass
class _Session:
    """Everything one run of the loop works on."""

    base: Base
    model: Any
    template: PromptTemplate
    train: list[FormattedExample]
    eval: list[FormattedExample]
    pairs: list[tuple[str, str]]
    pad_id: int
    plan: Plan
    order: DataOrder
    params: list[Any]
    optimizer: Any
    scheduler: Any
    init_adapter: Path | None
    packing: bool = False
    # Saved in checkpoints: step, tokens, elapsed_s, loss_history, eval_history.
    state: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    tokens: int = 0  # this process only, for tokens/s
    train_s: float = 0.0
    steps: int = 0
    first_step_s: float = 0.0  # the first step of a process also pays for warm-up

    def elapsed(self) -> float:
        return self.state["elapsed_s"] + time.perf_counter() - self.started


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def eta_seconds(steps_left: int, later_seconds: float, later_steps: int) -> float | None:
    """Time left, from the steps after the first (which also pays for allocation, kernel choice
    and compilation); None until there is such a step, or 0 when nothing is left."""
    if steps_left <= 0:
        return 0.0
    return steps_left * later_seconds / later_steps if later_steps > 0 else None


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
        self.ranks = Ranks.from_env()
        # With several GPUs, rank 0 alone reports: the others' events would repeat its own.
        self.on_event = (on_event if self.ranks.main else None) or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.notes: list[str] = []

    def run(self) -> TrainResult:
        import torch

        was_deterministic = torch.are_deterministic_algorithms_enabled()
        was_filling = torch.utils.deterministic.fill_uninitialized_memory
        data = prepare_data(self.config)
        start_ranks(self.ranks, torch.cuda.is_available())
        _seed_everything(self.config.seed)  # the same on every rank: the same LoRA init everywhere
        base = load_base(self.config, gpu=self.ranks.local_rank if self.ranks.world > 1 else None)
        # preflight catches this for local and cached models; a hub model is only known once loaded.
        check_loss_mode(self.config.loss_mode, base.seq2seq, base.name)
        if base.device == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
            # Filling every new tensor costs time and adds nothing: no op reads memory it did not write.
            torch.utils.deterministic.fill_uninitialized_memory = False
        try:
            return self._loop(data, base)
        finally:
            finish_ranks(self.ranks)
            torch.use_deterministic_algorithms(was_deterministic)
            torch.utils.deterministic.fill_uninitialized_memory = was_filling

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
        return training_template(self.config.template, self.config.system, default)

    def _format(
        self, examples: list[Example], tokenizer: Any, template: PromptTemplate, seq2seq: bool
    ) -> list[FormattedExample]:
        """Tokenised once per data, tokenizer and settings; a rerun loads the cached result."""
        cfg = self.config
        return format_all(examples, tokenizer, template, cfg.loss_mode, cfg.max_length, seq2seq=seq2seq)

    def _format_train(
        self, data: TrainingData, tokenizer: Any, template: PromptTemplate, seq2seq: bool
    ) -> list[FormattedExample]:
        cfg = self.config
        formatted = self._format(data.train, tokenizer, template, seq2seq)
        usable = [f for f in formatted if f.n_predicted]
        if not usable:
            raise PlaygroundError(
                f"No example has output tokens within max_length={cfg.max_length}: the prompts fill it. "
                "Raise max_length or shorten the template."
            )
        if len(usable) < len(formatted):
            self.notes.append(
                f"{len(formatted) - len(usable)} example(s) skipped: the prompt alone fills max_length."
            )
        return usable

    def _setup(self, data: TrainingData, base: Base) -> tuple[_Session, Path | None]:
        import torch

        cfg = self.config
        self.notes.extend(base.notes)
        checkpoint, init_adapter = self._starting_point()
        if cfg.packing and base.seq2seq:
            raise PlaygroundError(
                f"packing applies to decoder-only models; {base.name} is encoder-decoder: leave packing off."
            )
        model = wrap_lora(base, cfg, init_adapter)
        tokenizer = base.tokenizer
        template = self._template(base.template)
        train = self._format_train(data, tokenizer, template, base.seq2seq)
        plan = Plan.build(len(train), cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        session = _Session(
            base=base,
            model=model,
            template=template,
            train=train,
            eval=self._format(data.eval, tokenizer, template, base.seq2seq),
            pairs=[(build_prompt(e, template, cfg.loss_mode, tokenizer), e.output or "") for e in data.eval],
            pad_id=pad_id(tokenizer),
            plan=plan,
            order=DataOrder(plan),
            params=params,
            optimizer=optimizer,
            scheduler=make_scheduler(optimizer, cfg, plan.total_steps),
            init_adapter=init_adapter,
            packing=cfg.packing if cfg.packing is not None else not base.seq2seq,
            state={"step": 0, "tokens": 0, "elapsed_s": 0.0, "loss_history": [], "eval_history": []},
        )
        if checkpoint is not None:
            session.state = load_checkpoint(checkpoint, model, optimizer, session.scheduler)
            if session.state["step"] > plan.total_steps:
                raise PlaygroundError(
                    f"{checkpoint} is at step {session.state['step']}, past this run's {plan.total_steps} "
                    "steps; raise max_steps or epochs to continue it."
                )
        session.started = time.perf_counter()
        return session, checkpoint

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self, data: TrainingData, base: Base) -> TrainResult:
        from playground.training.fused import installed, kept_layers

        s, checkpoint = self._setup(data, base)
        cfg, state = self.config, s.state
        kept, kept_weights = kept_layers(s.model)
        self.on_event(
            {
                "type": "start",
                "total_steps": s.plan.total_steps,
                "step": state["step"],
                "resumed_from": str(checkpoint) if checkpoint else None,
                "init_adapter": str(s.init_adapter) if s.init_adapter else None,
                "n_train": len(s.train),
                "n_eval": len(s.eval),
                "trainable_params": sum(p.numel() for p in s.params),
                "method": base.method,
                "packing": s.packing,
                "fused_layers": installed(s.model),
                "kept_layers": kept,
                "kept_weights": kept_weights,
                "gpus": self.ranks.world,
                "device": base.device,
                "template": s.template.name,
                "notes": self.notes,
            }
        )
        own = (
            checkpoint is not None and checkpoint.parent.resolve() == checkpoints_dir(self.job_dir).resolve()
        )
        last_saved = state["step"] if own else -1
        s.model.train()
        while state["step"] < s.plan.total_steps:
            if any_rank(self.ranks, self.should_stop()):
                if not self.ranks.main:
                    return TrainResult("stopped", state["step"], s.plan.total_steps)
                path = self._checkpoint(s) if last_saved != state["step"] else find_checkpoint(self.job_dir)
                # A stopped run is often a good-enough one: its adapter is usable at once, and a
                # resume of this job later replaces it with the finished one.
                adapter = self._save(s, data, stopped=True) if state["step"] > 0 else None
                self.on_event(
                    {"type": "stopped", "step": state["step"], "checkpoint": str(path), "adapter": adapter}
                )
                return TrainResult(
                    "stopped", state["step"], s.plan.total_steps, adapter=adapter, checkpoint=str(path)
                )
            self.on_event(self._step(s))
            if not self.ranks.main:
                continue  # evaluation and checkpoints are rank 0's; the others hold the same weights
            if s.eval and cfg.eval_every and state["step"] % cfg.eval_every == 0:
                self._evaluate(s)
            if cfg.save_every and state["step"] % cfg.save_every == 0 and state["step"] < s.plan.total_steps:
                self._checkpoint(s)
                last_saved = state["step"]
        if not self.ranks.main:
            return TrainResult("finished", state["step"], s.plan.total_steps)
        return self._finish(s, data)

    def _step(self, s: _Session) -> Event:
        """One optimizer step over grad_accum micro-batches; the loss is the mean over trained tokens."""
        import torch

        t0 = time.perf_counter()
        cfg = self.config
        micro = s.plan.micro_batches(s.state["step"])
        groups = [[s.train[i] for i in s.order.examples(m)] for m in micro]
        if self.ranks.world > 1:
            mine = self.ranks.share([e for group in groups for e in group])
            groups = [mine[i : i + cfg.micro_batch] for i in range(0, len(mine), cfg.micro_batch)]
        if s.packing:
            # The same examples as the padded micro-batches, in fewer passes of at most the same tokens.
            batches = pack_step([e for group in groups for e in group], cfg.micro_batch * cfg.max_length)
        else:
            batches = [pad_batch(group, s.pad_id) for group in groups if group]
        seq2seq = s.base.seq2seq
        # A seq2seq model also runs its decoder over the targets.
        local_tokens = sum(real_tokens(b) + (count_trained(b, True) if seq2seq else 0) for b in batches)
        trained, tokens = sum_values(
            self.ranks, sum(count_trained(b, seq2seq) for b in batches), local_tokens
        )
        n_trained, tokens = int(trained), int(tokens)
        lr = s.optimizer.param_groups[0]["lr"]
        loss_sum = 0.0
        with training_attention(s.base.device):
            for batch in batches:
                loss, _ = token_loss_sum(s.model, batch)
                (loss / n_trained).backward()
                loss_sum += loss.detach()
        sum_gradients(self.ranks, s.params)
        # One wait for the GPU per step, not one per pass.
        loss_sum = sum_values(self.ranks, float(loss_sum))[0]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(s.params, GRAD_CLIP))
        s.optimizer.step()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)

        state = s.state
        state["step"] += 1
        state["tokens"] += tokens
        s.tokens += tokens
        s.steps += 1
        spent = time.perf_counter() - t0
        s.train_s += spent
        if s.steps == 1:
            s.first_step_s = spent
        loss_value = loss_sum / n_trained
        if not math.isfinite(loss_value):
            raise PlaygroundError(
                f"The loss became {loss_value} at step {state['step']}; lower the learning rate "
                f"(now {self.config.lr})."
            )
        state["loss_history"].append([state["step"], loss_value])
        return {
            "type": "step",
            "step": state["step"],
            "epoch": s.plan.epoch_of(micro[-1]),
            "loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": tokens,
            "tokens_per_s": s.tokens / max(s.train_s, 1e-9),
            "eta_s": eta_seconds(s.plan.total_steps - state["step"], s.train_s - s.first_step_s, s.steps - 1),
            "elapsed_s": s.elapsed(),
        }

    def _evaluate(self, s: _Session) -> dict[str, float]:
        cfg = self.config
        metrics = evaluate(
            s.model, s.base.tokenizer, s.eval, s.pairs, cfg.micro_batch * 2, cfg.max_length, s.pad_id
        )
        s.state["eval_history"].append([s.state["step"], metrics["eval_loss"], metrics["eval_perplexity"]])
        self.on_event({"type": "eval", "step": s.state["step"], **metrics})
        return metrics

    def _checkpoint(self, s: _Session) -> Path:
        done = min(s.state["step"] * s.plan.grad_accum, s.plan.total_micro)
        # The step alone fixes the data position (plan.py); this spells it out for people reading the file.
        position = {"micro_batches_done": done, "epoch": done / s.plan.batches_per_epoch, "seed": s.plan.seed}
        state = {**s.state, "elapsed_s": s.elapsed(), "data_position": position}
        path = save_checkpoint(self.job_dir, s.model, s.optimizer, s.scheduler, state)
        self.on_event({"type": "checkpoint", "step": s.state["step"], "path": str(path)})
        return path

    # -- the end -------------------------------------------------------------------------------

    def _finish(self, s: _Session, data: TrainingData) -> TrainResult:
        adapter = self._save(s, data, stopped=False)
        metrics = read_adapter(Path(adapter)).metrics
        self.on_event({"type": "finished", "step": s.state["step"], "adapter": adapter, **metrics})
        return TrainResult("finished", s.state["step"], s.plan.total_steps, adapter=adapter, metrics=metrics)

    def _save(self, s: _Session, data: TrainingData, stopped: bool) -> str:
        """Save the adapter with its metadata; returns its folder."""
        cfg, state = self.config, s.state
        final_eval: dict[str, float] = {}
        if s.eval and not stopped:
            last = state["eval_history"][-1] if state["eval_history"] else None
            if last and last[0] == state["step"]:
                final_eval = {"eval_loss": last[1], "eval_perplexity": last[2]}
            else:
                final_eval = self._evaluate(s)
        history = state["loss_history"]
        metrics = {
            "steps": state["step"],
            "final_loss": history[-1][1] if history else None,
            "tokens": state["tokens"],
            "elapsed_s": round(s.elapsed(), 3),
            "tokens_per_s": s.tokens / max(s.train_s, 1e-9),
            **final_eval,
        }
        metadata = {
            "base_model": cfg.model,
            "base_source": s.base.source,
            "method": s.base.method,
            "dataset": {
                "name": data.dataset.name,
                "path": data.dataset.source or cfg.data,
                "sha256": data.dataset.sha256,
                "n_train": len(s.train),
                "n_eval": len(s.eval),
                "eval_source": data.eval_source,
            },
            "template": {
                "name": s.template.name,
                "text": s.template.text,
                "system": s.template.system,
                "sha": s.template.sha,
            },
            "settings": cfg.to_dict(),
            "continued_from": str(s.init_adapter) if s.init_adapter else None,
            "metrics": metrics,
            "loss_history": history,
            "eval_history": state["eval_history"],
            "notes": self.notes,
            "job": self.job_dir.name,
            "stopped_at": f"step {state['step']} of {s.plan.total_steps}" if stopped else None,
        }
        return str(save_adapter(s.model, cfg.output_dir(), metadata, job=self.job_dir.name))
