"""Training jobs for the app: each runs in its own subprocess, one at a time, the rest wait (FIFO).

The manager only starts processes and reads job folders; everything a job says goes through
its files (see job_files.py), so the app can poll, restart, and find interrupted jobs again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import playground
from playground.atomic import atomic_write_json
from playground.errors import PlaygroundError
from playground.identity import SYSTEM, Owner
from playground.limits import current_limits
from playground.names import named_path
from playground.training.checkpoints import find_checkpoint
from playground.training.config import TrainingConfig
from playground.training.distributed import gpus_for_training, launch_command
from playground.training.job_files import (
    ACTIVE,
    RESUMABLE,
    TrainingJob,
    jobs_root,
    list_jobs,
    now,
    pid_alive,
)
from playground.training.plan import Plan
from playground.training.preflight import preflight

__all__ = ["JobInfo", "JobManager", "TrainingJob"]


@dataclass
class JobInfo:
    id: str
    status: str
    message: str
    created: str
    model: str
    data: str
    output: str
    adapter: str | None
    pid: int | None
    checkpoint_step: int | None
    total_steps: int | None
    path: Path
    owner: str | None = None

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE


def _info(job: TrainingJob) -> JobInfo:
    status = job.status()
    try:
        config = job.config
        model, data, output = config.model, config.data, config.output
    except PlaygroundError:
        model = data = output = "?"
    return JobInfo(
        id=job.id,
        status=status.get("status", "failed"),
        message=status.get("message", ""),
        created=status.get("created", ""),
        model=model,
        data=data,
        output=output,
        adapter=status.get("adapter"),
        pid=status.get("pid"),
        checkpoint_step=status.get("checkpoint_step"),
        total_steps=status.get("total_steps"),
        path=job.dir,
        owner=status.get("owner"),
    )


class JobManager:
    """Queue and run training jobs in subprocesses (`python -m playground.training.worker`)."""

    def __init__(
        self,
        root: str | Path | None = None,
        python: str | None = None,
        poll_s: float = 0.5,
        worker_module: str = "playground.training.worker",
        engine_url: str | None = None,
    ):
        """`engine_url`: the app generates on that external engine and holds no weights, so it
        takes no training jobs (the command line still trains)."""
        self.engine_url = engine_url
        self.root = Path(root) if root is not None else jobs_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.python = python or sys.executable
        self.worker_module = worker_module
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._current: str | None = None
        self._process: subprocess.Popen | None = None
        self._foreign: str | None = None  # a job still running from an earlier app process
        self._thread: threading.Thread | None = None
        self._closed = False
        self._recover()

    # -- public API ----------------------------------------------------------------------------

    def submit(self, config: TrainingConfig, owner: Owner = SYSTEM) -> str:
        """Check the config and its data, then queue it; raises PlaygroundError before any job exists."""
        if self.engine_url is not None:
            from playground.models.weightless import WeightsElsewhere, weights_message

            raise WeightsElsewhere(weights_message("Training", self.engine_url))
        limits = current_limits()
        if owner is not SYSTEM and Path(config.output).expanduser().is_absolute():
            # People using the app name an adapter; only the command line writes elsewhere.
            raise PlaygroundError("The adapter name must be a name (adapters/NAME), not a folder path.")
        config = config.resolved()
        active = [info for info in self.jobs() if info.status in ACTIVE]
        mine = [info for info in active if info.owner == owner.id]
        if limits.jobs_per_user and len(mine) >= limits.jobs_per_user and not owner.is_admin:
            raise PlaygroundError(
                f"You already have {len(mine)} training job(s) queued or running; this playground allows "
                f"{limits.jobs_per_user} at a time. Wait for one to finish, or stop one."
            )
        prepared = preflight(config)
        limits.check_rows(len(prepared.train) + len(prepared.eval), "The training data")
        limits.check_train_steps(Plan.build(len(prepared.train), config).total_steps)
        clash = [info.id for info in active if info.output and Path(info.output).name == config.output_name]
        if clash:
            raise PlaygroundError(f"Job {clash[0]} is already writing an adapter named {config.output_name}.")
        job = TrainingJob.create(config, self.root, owner=owner.id)
        self._enqueue(job.id)
        return job.id

    def stop(self, job_id: str, by: Owner = SYSTEM) -> None:
        """Cancel a queued job, or ask a running one to checkpoint and stop."""
        job = self.job(job_id)
        by.require(job.status().get("owner"), f"Job {job_id}")
        with self._cond:
            if job_id in self._queue:
                self._queue.remove(job_id)
                job.update_status(status="stopped", message="cancelled before it started", ended=now())
                return
        self._reconcile(job)
        status = job.status().get("status")
        if status not in ACTIVE:
            raise PlaygroundError(f"Job {job_id} is {status}; only queued or running jobs can be stopped.")
        # Also covers a job between leaving the queue and its worker starting: the worker checks the file.
        job.stop_file.touch()

    def resume(self, job_id: str, changes: dict[str, Any] | None = None, by: Owner = SYSTEM) -> None:
        """Queue a stopped, failed or interrupted job again; it continues from its last checkpoint.

        `changes` adjusts settings first (a smaller micro_batch after running out of memory, say);
        the run then goes on from the checkpoint but no longer matches an uninterrupted one exactly.
        """
        job = self.job(job_id)
        by.require(job.status().get("owner"), f"Job {job_id}")
        self._reconcile(job)
        status = job.status().get("status")
        if status not in RESUMABLE:
            raise PlaygroundError(
                f"Job {job_id} is {status}; only {', '.join(RESUMABLE)} jobs can be resumed."
            )
        with self._cond:
            if job_id in self._queue:
                raise PlaygroundError(f"Job {job_id} is already queued.")
        config = job.config.replace(**changes) if changes else job.config
        config.validate()
        if changes:
            atomic_write_json(job.dir / "config.json", config.to_dict())
        checkpoint = find_checkpoint(job.dir)
        where = f"resuming from {checkpoint.name}" if checkpoint else "no checkpoint yet: starting over"
        job.stop_file.unlink(missing_ok=True)
        job.update_status(status="queued", pid=None, message=where)
        self._enqueue(job_id)

    def job(self, job_id: str) -> TrainingJob:
        try:
            path = named_path(self.root, job_id, "job")
        except PlaygroundError:
            raise PlaygroundError(f"No training job {str(job_id)[:60]!r}.") from None
        if not (path / "config.json").is_file():
            raise PlaygroundError(f"No training job {job_id}.")
        job = TrainingJob(path)
        self._reconcile(job)
        return job

    def jobs(self) -> list[JobInfo]:
        """All jobs, newest first; a job whose worker is gone shows as interrupted at once."""
        found = list(reversed(list_jobs(self.root)))
        for job in found:
            self._reconcile(job)
        return [_info(job) for job in found]

    def events(self, job_id: str, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events after byte offset `since`, and the next offset (poll with it)."""
        return self.job(job_id).events(since)

    def queued(self) -> list[str]:
        with self._cond:
            return list(self._queue)

    def running(self) -> str | None:
        with self._cond:
            return self._current or self._foreign

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job is no longer queued or running; returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.job(job_id)
        while True:
            with self._cond:
                busy = job_id in self._queue or job_id == self._current
                if not busy and job.status().get("status") not in ACTIVE:
                    return job.status()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"job {job_id} still {job.status().get('status')}")
                self._cond.wait(min(self.poll_s, left) if left is not None else self.poll_s)

    def close(self) -> None:
        """Stop starting new jobs (a running one continues)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- internals -----------------------------------------------------------------------------

    def _reconcile(self, job: TrainingJob) -> None:
        """A "running" job whose worker process is gone is interrupted, whoever started it."""
        status = job.status()
        if status.get("status") != "running":
            return
        with self._cond:
            if job.id == self._current:
                return  # _run is waiting on its process and says how it ended
        if pid_alive(status.get("pid"), job.id):
            return
        job.update_status(status="interrupted", message=_interrupted_message(job), ended=now())
        with self._cond:
            if self._foreign == job.id:
                self._foreign = None
            self._cond.notify_all()

    def _recover(self) -> None:
        """After a restart: dead 'running' jobs become interrupted, queued ones queue again."""
        for job in list_jobs(self.root):
            status = job.status()
            state = status.get("status")
            if state == "running":
                if pid_alive(status.get("pid"), job.id):
                    self._foreign = job.id
                else:
                    job.update_status(status="interrupted", message=_interrupted_message(job), ended=now())
            elif state == "queued":
                self._queue.append(job.id)
        if self._queue or self._foreign:
            # Also for a foreign job alone: its end must be noticed without waiting for a new job.
            self._start_thread()

    def _enqueue(self, job_id: str) -> None:
        with self._cond:
            self._queue.append(job_id)
            self._cond.notify_all()
        self._start_thread()

    def _start_thread(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="training-jobs", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        self._wait_for_foreign()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job_id = self._queue.popleft()
                self._current = job_id
            try:
                self._run(TrainingJob(self.root / job_id))
            except Exception as exc:  # noqa: BLE001 - the queue must keep going whatever one job does
                TrainingJob(self.root / job_id).update_status(
                    status="failed", message=f"Could not start the training process: {exc}", ended=now()
                )
            finally:
                with self._cond:
                    self._current = None
                    self._process = None
                    self._cond.notify_all()

    def _wait_for_foreign(self) -> None:
        if self._foreign is None:
            return
        job = TrainingJob(self.root / self._foreign)
        while self._foreign is not None and pid_alive(job.status().get("pid"), job.id) and not self._closed:
            time.sleep(self.poll_s)
        self._reconcile(job)
        with self._cond:
            self._foreign = None

    def _run(self, job: TrainingJob) -> None:
        if job.status().get("status") != "queued":
            return
        env = dict(os.environ)
        repo = str(Path(playground.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        with open(job.log_file, "ab") as log:
            log.write(f"--- {now()} starting worker ---\n".encode())
            log.flush()
            # Several GPUs: one worker per GPU under `accelerate launch`, training data-parallel.
            command = launch_command(self.python, self.worker_module, [str(job.dir)], gpus_for_training())
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=os.getcwd(),
            )
        with self._cond:
            self._process = process
        if job.status().get("status") == "queued":
            job.update_status(status="running", pid=process.pid, message="starting", started=now())
        code = process.wait()
        # "queued" here means the job was resumed while its worker was exiting: the queue has it.
        if job.status().get("status") == "running":
            if code < 0:
                job.update_status(status="interrupted", message=_interrupted_message(job, -code), ended=now())
            else:
                tail = job.log_tail(3).replace("\n", " | ")
                job.update_status(
                    status="failed",
                    message=f"The training process exited with code {code}: {tail}",
                    ended=now(),
                )


def _interrupted_message(job: TrainingJob, signal_number: int | None = None) -> str:
    how = (
        f"killed by signal {signal_number}" if signal_number else "its process is gone (app restart or crash)"
    )
    checkpoint = find_checkpoint(job.dir)
    where = (
        f"resume continues from {checkpoint.name}" if checkpoint else "no checkpoint yet: resume starts over"
    )
    return f"Interrupted: {how}; {where}."
