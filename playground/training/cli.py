"""`python -m playground train`: train an adapter in this process, with a progress bar.

Settings come from --config YAML, then flags (every TrainingConfig field is a flag) override it.
`--resume JOB_DIR` alone continues that job where it stopped; `--json` ends the output with one
JSON summary line. Ctrl-C checkpoints and stops; the job can be resumed later.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from playground.atomic import atomic_write_json
from playground.errors import PlaygroundError
from playground.training.config import LOSS_MODES, METHODS, SCHEDULERS, TrainingConfig
from playground.training.progress import TrainingProgress

_CHOICES = {"loss_mode": LOSS_MODES, "method": METHODS, "scheduler": SCHEDULERS}
_TYPES = {"int": int, "float": float}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file of settings (flags override it)")
    for f in dataclasses.fields(TrainingConfig):
        flags = ["--" + f.name.replace("_", "-")]
        if f.name == "resume_from":
            flags.insert(0, "--resume")
        parser.add_argument(
            *flags,
            dest=f.name,
            default=None,
            type=_TYPES.get(str(f.type), str),
            choices=_CHOICES.get(f.name),
            metavar=None if f.name in _CHOICES else f.name.upper(),
            help=f.metadata.get("help"),
        )
    parser.add_argument("--job-dir", help="job folder for checkpoints (default: a new one in data/jobs)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainingConfig)
        if getattr(args, f.name, None) is not None
    }


def _plan(args: argparse.Namespace) -> tuple[TrainingConfig, Path | None]:
    """The config to run and, when continuing an existing job in place, its folder."""
    from playground.training.job_files import TrainingJob, pid_alive

    overrides = _overrides(args)
    resume = overrides.get("resume_from")
    job_dir = Path(args.job_dir) if getattr(args, "job_dir", None) else None
    if resume and not args.config and (Path(resume) / "config.json").is_file():
        job = TrainingJob(resume)
        status = job.status()
        if status.get("status") == "running" and pid_alive(status.get("pid")):
            raise PlaygroundError(f"Job {job.id} is still running (pid {status.get('pid')}).")
        overrides.pop("resume_from")
        config = job.config.replace(**overrides) if overrides else job.config
        return config.resolved(), job.dir
    config = TrainingConfig.from_yaml(args.config) if args.config else TrainingConfig()
    if overrides:
        config = config.replace(**overrides)
    return config.resolved(), job_dir


def _summary(status: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    metrics = status.get("metrics") or {}
    return {
        "status": status.get("status"),
        "steps": metrics.get("steps", status.get("checkpoint_step")),
        "final_loss": metrics.get("final_loss"),
        "eval_loss": metrics.get("eval_loss"),
        "eval_perplexity": metrics.get("eval_perplexity"),
        "tokens_per_s": metrics.get("tokens_per_s"),
        "elapsed_s": metrics.get("elapsed_s"),
        "adapter": status.get("adapter"),
        "job_dir": str(job_dir),
        "message": status.get("message"),
    }


class _Progress:
    """tqdm bar driven by trainer events, read through TrainingProgress as the web UI reads them."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None
        self.progress = TrainingProgress()

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        progress = self.progress
        kind = progress.update(event)
        if kind == "start":
            self.bar = tqdm(total=progress.total_steps, initial=progress.step, unit="step", file=sys.stderr)
            for note in progress.setup.notes if progress.setup else []:
                self.bar.write(f"note: {note}", file=sys.stderr)
        elif kind == "step" and self.bar is not None:
            self.bar.set_postfix(loss=f"{progress.loss:.4f}", lr=f"{progress.lr:.2e}", refresh=False)
            self.bar.update(progress.step - self.bar.n)
        elif kind == "eval" and self.bar is not None:
            self.bar.write(
                f"step {progress.step}: eval loss {progress.eval_loss:.4f}, "
                f"eval perplexity {progress.eval_perplexity:.3f}",
                file=sys.stderr,
            )
        elif kind in ("finished", "stopped", "error") and self.bar is not None:
            self.bar.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(args: argparse.Namespace) -> int:
    from playground.training.job_files import TrainingJob
    from playground.training.preflight import preflight
    from playground.training.worker import run_job

    try:
        config, job_dir = _plan(args)
        if job_dir is not None and (job_dir / "config.json").is_file():
            config.validate()
            atomic_write_json(job_dir / "config.json", config.to_dict())
            job = TrainingJob(job_dir)
            job.stop_file.unlink(missing_ok=True)
        else:
            preflight(config)
            job = TrainingJob.create(config, status="running", folder=job_dir)
    except (PlaygroundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"status": "error", "message": str(exc)}, ensure_ascii=False))
        return 2
    if not args.json:
        print(f"Training job {job.id} in {job.dir}", file=sys.stderr)
    progress = _Progress(args.quiet)
    try:
        status = run_job(job.dir, progress)
    finally:
        progress.close()
    summary = _summary(status, job.dir)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"{summary['status']}: {summary['message']}")
        if summary["adapter"]:
            print(f"adapter: {summary['adapter']}")
        elif summary["status"] == "stopped":
            print(f"resume with: python -m playground train --resume {job.dir}")
    return 0 if status.get("status") in ("finished", "stopped") else 1
