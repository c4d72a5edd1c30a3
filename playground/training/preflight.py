"""Checks run before a job is accepted, so a bad setting fails at once and not minutes later."""

from __future__ import annotations

from pathlib import Path

from playground.errors import PlaygroundError
from playground.training.config import TrainingConfig, check_loss_mode
from playground.training.dataset import TrainingData, prepare_data


def preflight(config: TrainingConfig) -> TrainingData:
    """Raise PlaygroundError (DatasetError for data) for anything that would make the job fail.

    Returns the prepared data so callers can show counts. The model's weights are not loaded.
    """
    from playground.training.modeling import check_targets_offline, is_seq2seq_model

    config.validate()
    check_loss_mode(config.loss_mode, bool(is_seq2seq_model(config.model)), Path(config.model).name)
    data = prepare_data(config)
    if config.resume_from:
        from playground.training.adapters import resolve_adapter
        from playground.training.checkpoints import find_checkpoint

        if find_checkpoint(config.resume_from) is None:
            resolve_adapter(config.resume_from)
    if config.output and config.output_dir().exists():
        raise PlaygroundError(
            f"An adapter named {config.output_dir().name} already exists; choose another output name."
        )
    model = Path(config.model).expanduser()
    if model.is_absolute() or str(config.model).startswith((".", "~")):
        if not model.is_dir():
            raise PlaygroundError(f"No model folder {config.model}.")
    check_targets_offline(config)
    return data
