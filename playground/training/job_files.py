"""One job's folder: config.json, status.json, events.jsonl, log.txt, STOP, checkpoints/.

Shared by the manager (in the app) and the worker (the subprocess), which talk only through
these files, so either side can die without taking the other with it.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playground.atomic import TEMP_PREFIX, atomic_write_json
from playground.errors import PlaygroundError
from playground.paths import data_dir
from playground.training.config import TrainingConfig

ACTIVE = ("queued", "running")
TERMINAL = ("stopped", "finished", "failed", "interrupted")
RESUMABLE = ("stopped", "failed", "interrupted")


def jobs_root() -> Path:
    root = data_dir() / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class TrainingJob:
    """Reads and writes the files of one job folder."""

    def __init__(self, job_dir: str | Path):
        self.dir = Path(job_dir)
        if not (self.dir / "config.json").is_file():
            raise PlaygroundError(f"{self.dir} is not a training job (no config.json).")

    @classmethod
    def create(
        cls,
        config: TrainingConfig,
        root: Path | None = None,
        status: str = "queued",
        folder: Path | None = None,
        owner: str | None = None,
    ) -> TrainingJob:
        """A new job folder in `root` (default data/jobs), or exactly `folder` when given."""
        if folder is None:
            root = Path(root) if root is not None else jobs_root()
            # Sortable by creation time (to the millisecond), unique by the random tail.
            stamp = f"{datetime.now():%Y%m%d-%H%M%S-%f}"[:-3]
            folder = root / f"{stamp}-{uuid.uuid4().hex[:4]}"
        job_dir = Path(folder)
        job_id = job_dir.name
        job_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(job_dir / "config.json", config.to_dict())
        atomic_write_json(
            job_dir / "status.json",
            {
                "id": job_id,
                "status": status,
                "pid": None,
                "message": "",
                "adapter": None,
                "created": now(),
                "owner": owner,
            },
        )
        return cls(job_dir)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config(self) -> TrainingConfig:
        return TrainingConfig.from_dict(json.loads((self.dir / "config.json").read_text(encoding="utf-8")))

    @property
    def stop_file(self) -> Path:
        return self.dir / "STOP"

    @property
    def events_file(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def log_file(self) -> Path:
        return self.dir / "log.txt"

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"id": self.id, "status": "failed", "message": "status.json is missing or unreadable"}

    def update_status(self, **fields: Any) -> dict[str, Any]:
        status = {**self.status(), **fields, "updated": now()}
        atomic_write_json(self.dir / "status.json", status)
        return status

    def append_event(self, event: dict[str, Any]) -> None:
        line = json.dumps({**event, "time": now()}, ensure_ascii=False, default=str) + "\n"
        # One write of a whole line, flushed: a reader never sees a half line unless the writer dies.
        with open(self.events_file, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()

    def events(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Complete events after byte offset `since`, and the offset to poll from next."""
        try:
            with open(self.events_file, "rb") as f:
                f.seek(since)
                chunk = f.read()
        except FileNotFoundError:
            return [], since
        end = chunk.rfind(b"\n") + 1
        events = []
        for line in chunk[:end].splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events, since + end

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def list_jobs(root: Path | None = None) -> list[TrainingJob]:
    root = Path(root) if root is not None else jobs_root()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_dir() and not path.name.startswith(TEMP_PREFIX) and (path / "config.json").is_file():
            found.append(TrainingJob(path))
    return found


def pid_alive(pid: int | None, marker: str = "") -> bool:
    """Whether `pid` is a live (not zombie) playground process (or one whose command names `marker`)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if ") Z" in (proc / "stat").read_text():
                return False
            # The pid may have been reused by an unrelated program after a reboot.
            command = (proc / "cmdline").read_bytes()
            return b"playground" in command or (bool(marker) and marker.encode() in command)
        except OSError:
            return False
    return True
