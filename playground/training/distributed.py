"""Data-parallel training over several GPUs: one process per GPU, started by `accelerate launch`.

Each process (rank) loads the base model on its own GPU and takes every world-th example of each
step. Every rank divides its summed loss by the trained tokens of the whole step, over all ranks,
and the LoRA gradients are summed across ranks before the optimizer step: the result is exactly
the one-process gradient, so losses, schedule, checkpoints and adapters mean the same on one GPU
or several. All ranks hold identical weights; rank 0 alone writes events, checkpoints and the
adapter. Without the launcher's environment (RANK, WORLD_SIZE) all of this is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """What `accelerate launch` / torchrun set for each process; one process without them."""
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's part of a step's examples (every world-th, so the parts differ by one at most)."""
        return list(items[self.rank :: self.world])


def start(ranks: Ranks, cuda: bool) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and take this rank's GPU."""
    if ranks.world <= 1:
        return
    import torch
    import torch.distributed as dist

    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    if not dist.is_initialized():
        # The other ranks wait in the next step's collective while rank 0 evaluates or saves: allow
        # for a long evaluation rather than the default 10 minutes.
        dist.init_process_group(
            "nccl" if cuda else "gloo", rank=ranks.rank, world_size=ranks.world, timeout=timedelta(hours=2)
        )


def finish(ranks: Ranks) -> None:
    """Leave the group. No barrier: after the last step's collective no rank waits for another,
    and a rank that failed must not leave the others waiting in one."""
    if ranks.world <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def sum_values(ranks: Ranks, *values: float) -> list[float]:
    """The sum over ranks of each value (one small collective for all of them)."""
    if ranks.world <= 1:
        return list(values)
    import torch
    import torch.distributed as dist

    device = _device()
    buffer = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(buffer)
    return buffer.tolist()


def sum_gradients(ranks: Ranks, params: Sequence[Any]) -> None:
    """Sum the gradients of `params` over ranks, in place, in one flat collective."""
    if ranks.world <= 1:
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
        offset += n


def any_rank(ranks: Ranks, flag: bool) -> bool:
    """True on every rank when it is true on any: a stop asked of one process stops all at one step."""
    if ranks.world <= 1:
        return flag
    return sum_values(ranks, float(flag))[0] > 0


def _device() -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gpus_for_training() -> int:
    """GPUs a training job spreads over: all visible ones, or PLAYGROUND_TRAIN_GPUS if set lower."""
    import torch

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cap = os.environ.get("PLAYGROUND_TRAIN_GPUS", "").strip()
    if cap.isdigit():
        visible = min(visible, int(cap))
    return visible


def launch_command(python: str, module: str, args: Sequence[str], gpus: int) -> list[str]:
    """The command that runs `python -m module args`: under `accelerate launch` for several GPUs."""
    if gpus <= 1:
        return [python, "-m", module, *args]
    return [
        python, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_machines", "1", "--num_processes", str(gpus),
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", module, *args,
    ]  # fmt: skip
