"""Merging an adapter into its base model in the background, followed by whoever asked.

A merge loads an fp32 copy of the base (28 GB for a 7B model), so merges run one at a time; a
second request for the same adapter follows the merge already running instead of starting another.
The merged folder and its zip appear whole or not at all, so a failed merge loses nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from playground.training.export import folder_zip, merged_model

_ONE_AT_A_TIME = threading.Semaphore(1)
_TASKS: dict[str, MergeTask] = {}
_TASKS_LOCK = threading.Lock()


@dataclass
class MergeTask:
    """One adapter's merge. `stage` is "waiting", "load", "merge", "save", "zip" or "done"."""

    adapter: str
    stage: str = "waiting"
    started: float = field(default_factory=time.monotonic)
    result: Path | None = None  # the zip of the merged folder
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def set_stage(self, stage: str) -> None:
        self.stage = stage


def start_merge(folder: Path) -> MergeTask:
    """Merge the adapter in `folder` (already checked by the caller) into its base, then zip it."""
    with _TASKS_LOCK:
        task = _TASKS.get(folder.name)
        if task is not None and not task.done.is_set():
            return task
        task = _TASKS[folder.name] = MergeTask(folder.name)
    threading.Thread(target=_run, args=(task, folder), name=f"merge-{folder.name}", daemon=True).start()
    return task


def _run(task: MergeTask, folder: Path) -> None:
    try:
        with _ONE_AT_A_TIME:
            target = merged_model(folder, replace=True, on_stage=task.set_stage)
            task.set_stage("zip")
            task.result = folder_zip(target)
            task.set_stage("done")
    except BaseException as exc:  # noqa: BLE001 - handed to whoever follows the task
        task.error = exc
    finally:
        task.done.set()
