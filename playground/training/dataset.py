"""The examples a run trains and evaluates on: first N, a seeded held-out split or an eval file."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from playground.data_types import Dataset, Example
from playground.errors import DatasetError, PlaygroundError
from playground.training.config import TrainingConfig


@dataclass
class TrainingData:
    train: list[Example]
    eval: list[Example]
    dataset: Dataset
    eval_source: str  # "split", the eval file's name, or "" when there is no evaluation


def load_file(path: str | Path) -> Dataset:
    """A data set file (or Hugging Face dataset: a save_to_disk folder, parquet, hf:ORG/NAME) as a
    Dataset; DatasetError names the file and row of any problem."""
    from playground.data import load_dataset
    from playground.hf_data import HUB_PREFIX, is_saved_dataset

    if str(path).startswith(HUB_PREFIX):
        return load_dataset(str(path))
    path = Path(path).expanduser()
    if not (path.is_file() or is_saved_dataset(path)):
        raise PlaygroundError(f"No data file {path}: check the path (relative paths start at {Path.cwd()}).")
    return load_dataset(path)


def _require_outputs(dataset: Dataset, what: str) -> None:
    if not dataset.examples:
        raise DatasetError(dataset.name, f"the {what} file has no examples")
    for row, example in enumerate(dataset.examples, start=1):
        if example.output is None or not example.output.strip():
            raise DatasetError(
                Path(dataset.source).name or dataset.name,
                f"no output (answer) text; every {what} example needs one",
                row=row,
            )


def split_sizes(n: int, config: TrainingConfig) -> int:
    """How many of n examples are held out."""
    if config.eval_size:
        return config.eval_size
    if config.eval_fraction:
        return max(1, round(n * config.eval_fraction))
    return 0


def prepare_data(config: TrainingConfig) -> TrainingData:
    """Load, cut to first_n and split, raising DatasetError/PlaygroundError for unusable data."""
    dataset = load_file(config.data)
    _require_outputs(dataset, "training")
    examples = list(dataset.examples)
    if config.first_n:
        examples = examples[: config.first_n]
    if config.eval_data:
        eval_set = load_file(config.eval_data)
        _require_outputs(eval_set, "evaluation")
        return TrainingData(examples, list(eval_set.examples), dataset, eval_set.name)
    n_eval = split_sizes(len(examples), config)
    if n_eval >= len(examples):
        raise PlaygroundError(
            f"Holding out {n_eval} of {len(examples)} examples leaves nothing to train on; "
            "lower eval_size/eval_fraction or raise first_n."
        )
    if not n_eval:
        return TrainingData(examples, [], dataset, "")
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    held = set(order[:n_eval])
    train = [e for i, e in enumerate(examples) if i not in held]
    held_out = [examples[i] for i in sorted(held)]
    return TrainingData(train, held_out, dataset, "split")
