"""Which examples each optimizer step sees, and its learning rate.

Micro-batch m belongs to epoch m // batches_per_epoch and takes its slice of that epoch's
permutation, drawn from (seed, epoch) alone. So the position in the data is just the step
number, which is what makes a resumed run see exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from playground.training.config import TrainingConfig


@dataclass(frozen=True)
class Plan:
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

    def epoch_of(self, micro: int) -> float:
        """Epochs completed once micro-batch `micro` is done."""
        return (micro + 1) / self.batches_per_epoch


class DataOrder:
    """Example indices of each micro-batch, caching the current epoch's permutation."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._epoch = -1
        self._order: list[int] = []

    def examples(self, micro: int) -> list[int]:
        epoch, index = divmod(micro, self.plan.batches_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self.plan.epoch_order(epoch)
        size = self.plan.micro_batch
        return self._order[index * size : (index + 1) * size]


def warmup_steps(config: TrainingConfig, total_steps: int) -> int:
    return config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)


def make_scheduler(optimizer: Any, config: TrainingConfig, total_steps: int) -> Any:
    """The same schedules as transformers' Trainer, so numbers compare with the homework's."""
    from transformers import get_scheduler

    name = {"constant": "constant_with_warmup"}.get(config.scheduler, config.scheduler)
    return get_scheduler(name, optimizer, warmup_steps(config, total_steps), total_steps)
