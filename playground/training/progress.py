"""A job's progress, read from its events: what the web UI and the CLI both show.

The worker writes events as JSON lines (job_files.py); `TrainingProgress.update` is the one
place that knows their fields, so readers never pick keys out of an event themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

JobStatus = Literal["queued", "running", "stopped", "finished", "failed", "interrupted", "unknown"]
EventKind = Literal["start", "step", "eval", "checkpoint", "stopped", "finished", "error", "other"]
JOB_STATUSES: tuple[str, ...] = get_args(JobStatus)
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


@dataclass
class RunSetup:
    """How the job runs, from its start event."""

    method: str = "?"
    device: str = "?"
    gpus: int = 1
    packing: bool = False
    fused_layers: bool = False
    kept_layers: int = 0
    kept_weights: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainingProgress:
    """Everything known about a job so far: its status, its last step and its curves."""

    status: JobStatus = "queued"
    message: str = ""
    adapter: str | None = None
    total_steps: int = 0
    step: int = 0
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    eval_loss: float | None = None
    eval_perplexity: float | None = None
    setup: RunSetup | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def stepped(self) -> bool:
        return self.loss is not None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def update(self, event: dict[str, Any]) -> EventKind:
        """Fold one event in; returns its kind."""
        kind = event.get("type")
        if kind == "start":
            self.total_steps = event.get("total_steps") or self.total_steps
            self.step = event.get("step", self.step)
            self.setup = RunSetup(
                method=event.get("method", "?"),
                device=event.get("device", "?"),
                gpus=event.get("gpus", 1),
                packing=bool(event.get("packing")),
                fused_layers=bool(event.get("fused_layers")),
                kept_layers=event.get("kept_layers") or 0,
                kept_weights=event.get("kept_weights") or 0,
                notes=list(event.get("notes") or []),
            )
        elif kind == "step":
            self.step, self.loss, self.lr = event["step"], event["loss"], event["lr"]
            self.grad_norm = event.get("grad_norm", 0.0)
            self.tokens_per_s = event.get("tokens_per_s", 0.0)
            self.eta_s = event.get("eta_s")
            self.loss_curve.append((event["step"], event["loss"]))
        elif kind == "eval":
            self.step = event.get("step", self.step)
            self.eval_loss = event.get("eval_loss")
            # An evaluation run's events name it mean_perplexity.
            self.eval_perplexity = event.get("eval_perplexity", event.get("mean_perplexity"))
            self.eval_curve.append((event["step"], self.eval_perplexity))
        elif kind in ("stopped", "finished"):
            self.adapter = event.get("adapter") or self.adapter
        return kind if kind in EVENT_KINDS else "other"

    def update_all(self, events: list[dict[str, Any]]) -> TrainingProgress:
        for event in events:
            self.update(event)
        return self

    def set_status(self, status: dict[str, Any]) -> TrainingProgress:
        """Take the job's status.json: its state, message and saved adapter."""
        state = status.get("status")
        self.status = state if state in JOB_STATUSES else "unknown"
        self.message = status.get("message") or ""
        self.adapter = status.get("adapter") or self.adapter
        self.total_steps = self.total_steps or status.get("total_steps") or 0
        return self

    @classmethod
    def from_events(
        cls, events: list[dict[str, Any]], status: dict[str, Any] | None = None
    ) -> TrainingProgress:
        progress = cls().update_all(events)
        return progress.set_status(status) if status is not None else progress

    @classmethod
    def from_history(
        cls, loss_history: list[list[float]], eval_history: list[list[float]]
    ) -> TrainingProgress:
        """A saved adapter's curves (its metadata keeps [step, loss] and [step, ..., perplexity])."""
        progress = cls(status="finished")
        progress.loss_curve = [(int(s), loss) for s, loss in loss_history]
        progress.eval_curve = [(int(e[0]), e[-1]) for e in eval_history if len(e) >= 2]
        return progress
