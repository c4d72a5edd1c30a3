"""TensorBoard event files for a training job, so its curves open where people already look:
`tensorboard --logdir data/jobs` shows every job, `--logdir data/jobs/JOB` one.

The job's own events (events.jsonl) stay what the app reads; this listener copies the numbers
into JOB/tensorboard/ as the worker emits them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("playground.training")

FOLDER = "tensorboard"
# event type -> {field in the event: TensorBoard tag}
SCALARS = {
    "step": {
        "loss": "train/loss",
        "lr": "train/learning_rate",
        "grad_norm": "train/grad_norm",
        "tokens_per_s": "train/tokens_per_s",
    },
    "eval": {"eval_loss": "eval/loss", "eval_perplexity": "eval/perplexity"},
}


class TensorBoardLog:
    """Writes a job's scalars as TensorBoard events under JOB/tensorboard; call close() at the end."""

    def __init__(self, job_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in requirements.txt; a job without it still trains
            log.warning("tensorboard is not installed: this job writes no TensorBoard event files")
            self.writer = None
            return
        # Flushed every few seconds so a TensorBoard opened during the job follows it.
        self.writer = SummaryWriter(str(Path(job_dir) / FOLDER), flush_secs=5)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for field, tag in SCALARS.get(event.get("type", ""), {}).items():
            value = event.get(field)
            if isinstance(value, int | float):
                self.writer.add_scalar(tag, value, global_step=event["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
