"""The training subprocess: `python -m playground.training.worker JOB_DIR`.

Runs the job's config, appends events, and leaves a final status (finished, stopped, failed).
SIGTERM, Ctrl-C or a STOP file in the job folder ends it at the next step with a checkpoint;
a second signal ends it at once.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playground.errors import PlaygroundError
from playground.training.job_files import TrainingJob, now


def run_job(job_dir: str | Path, listener: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train the job in this process; returns its final status."""
    from playground.training.distributed import Ranks
    from playground.training.tensorboard_log import TensorBoardLog
    from playground.training.trainer import Trainer

    job = TrainingJob(job_dir)
    # Under `accelerate launch` every GPU runs this; rank 0 alone writes the job's files.
    main_rank = Ranks.from_env().main
    if main_rank:
        job.update_status(status="running", pid=os.getpid(), message="starting", started=now())
    terminated = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal terminated
        if terminated:  # asked twice: stop now, without a checkpoint
            raise KeyboardInterrupt
        terminated = True

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:
            pass  # not the main thread: only the STOP file works

    tensorboard = TensorBoardLog(job.dir) if main_rank else None

    def emit(event: dict[str, Any]) -> None:
        job.append_event(event)
        if tensorboard is not None:
            tensorboard(event)
        if event["type"] == "checkpoint":
            job.update_status(checkpoint=event["path"], checkpoint_step=event["step"])
        elif event["type"] == "start":
            job.update_status(message="training", total_steps=event["total_steps"])
        if listener is not None:
            listener(event)

    try:
        result = Trainer(job.config, job.dir, emit, lambda: terminated or job.stop_file.exists()).run()
        if not main_rank:
            return {"status": result.status, "message": f"rank {Ranks.from_env().rank} done"}
    except PlaygroundError as exc:
        if not main_rank:
            raise
        job.append_event({"type": "error", "message": str(exc)})
        return job.update_status(status="failed", message=str(exc), ended=now())
    except Exception as exc:  # noqa: BLE001 - a bug must still end as a readable status, not a hung job
        if not main_rank:
            raise
        traceback.print_exc()
        message = _failure_message(job, exc)
        job.append_event({"type": "error", "message": message})
        return job.update_status(status="failed", message=message, ended=now())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if tensorboard is not None:
            tensorboard.close()
    if result.status == "stopped":
        message = f"stopped at step {result.step} of {result.total_steps}; resume continues from there"
        return job.update_status(status="stopped", message=message, adapter=result.adapter, ended=now())
    metrics = result.metrics
    message = f"finished {result.step} steps, final loss {metrics.get('final_loss'):.4f}"
    if metrics.get("eval_perplexity") is not None:
        message += f", eval perplexity {metrics['eval_perplexity']:.2f}"
    return job.update_status(
        status="finished", message=message, adapter=result.adapter, metrics=metrics, ended=now()
    )


def _failure_message(job: TrainingJob, exc: BaseException) -> str:
    """What went wrong and what to do, for failures a user can fix; else an internal error."""
    import errno

    import torch
    import torch._dynamo.exc

    step = job.status().get("checkpoint_step")
    resume = f"resume continues from step {step}" if step else "no checkpoint yet, so resume starts over"
    text = str(exc).lower()
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text:
        config = job.config
        return (
            f"Out of memory with micro_batch={config.micro_batch} and max_length={config.max_length}. "
            "Lower micro_batch (raise grad_accum to keep the same examples per step) or max_length, or "
            f"turn on gradient_checkpointing; then resume ({resume})."
        )
    if isinstance(exc, torch._dynamo.exc.TorchDynamoException):
        # torch.compile needs a working compiler toolchain (a C++ compiler on CPU, Triton on GPU).
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return (
            f"torch.compile failed on this machine ({first_line}). Untick torch.compile (torch_compile: "
            "false) and start the job again: the layers then run uncompiled, with the same results."
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"The disk is full ({exc.strerror or exc}). Free some space (old jobs in {job.dir.parent}, "
            f"adapters you no longer need), then resume ({resume})."
        )
    return f"Internal error: {type(exc).__name__}: {exc} (details in {job.log_file.name})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m playground.training.worker JOB_DIR", file=sys.stderr)
        return 2
    status = run_job(argv[0])
    print(f"job {status.get('id')}: {status.get('status')}: {status.get('message')}", flush=True)
    return 0 if status.get("status") in ("finished", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
