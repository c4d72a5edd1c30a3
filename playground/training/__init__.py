"""Adapter training: LoRA on CPU, QLoRA on CUDA, in a subprocess per job, resumable exactly.

Importing this package does not import torch; the trainer does, when it runs.
"""

from playground.training.adapters import AdapterInfo, list_adapters, merge_adapter, read_adapter
from playground.training.config import TrainingConfig
from playground.training.formatting import FormattedExample, format_example, render_masked
from playground.training.job_files import TrainingJob
from playground.training.jobs import JobInfo, JobManager
from playground.training.preflight import preflight
from playground.training.trainer import Trainer, TrainResult

__all__ = [
    "AdapterInfo",
    "FormattedExample",
    "JobInfo",
    "JobManager",
    "TrainResult",
    "Trainer",
    "TrainingConfig",
    "TrainingJob",
    "format_example",
    "list_adapters",
    "merge_adapter",
    "preflight",
    "read_adapter",
    "render_masked",
]
