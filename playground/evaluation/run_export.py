"""Evaluation runs as a Hugging Face dataset: one row per evaluated example, with its run's
settings and scores beside it, written as parquet (`datasets.load_dataset("parquet", ...)`,
pandas and the Hub's viewer all read it)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from playground.atomic import TEMP_PREFIX
from playground.identity import SYSTEM, Owner
from playground.leaderboard import Leaderboard


def run_rows(board: Leaderboard, run_ids: list[int], viewer: Owner = SYSTEM) -> list[dict[str, Any]]:
    """Each example of each run, for a viewer who may see them (a private run's rows raise)."""
    rows: list[dict[str, Any]] = []
    for run_id in run_ids:
        record = board.run(run_id)
        settings = {
            "run_id": record.id,
            "model": record.model,
            "adapter": record.adapter or "",
            "dataset": record.dataset_name,
            "task": record.task,
            "strategy": record.strategy,
            "shots": record.shots,
            "seed": record.seed,
            "template": record.template_text,
            "decoding": json.dumps(record.decoding, ensure_ascii=False, sort_keys=True),
            "run_metrics": json.dumps(record.metrics, sort_keys=True),
        }
        for example in board.examples(run_id, viewer=viewer):
            rows.append(
                {
                    **settings,
                    "idx": example.idx,
                    "prompt": example.prompt,
                    "reference": example.reference,
                    "prediction": example.prediction,
                    # Scores as JSON text: runs with different metrics still share one schema.
                    "metrics": json.dumps(example.metrics, sort_keys=True),
                }
            )
    return rows


def export_parquet(board: Leaderboard, run_ids: list[int], out: Path, viewer: Owner = SYSTEM) -> Path:
    """The runs' examples as one parquet file at `out`, which appears whole or not at all."""
    import datasets

    table = datasets.Dataset.from_list(run_rows(board, run_ids, viewer))
    tmp = out.with_name(f"{TEMP_PREFIX}{out.name}.{uuid.uuid4().hex[:8]}")
    try:
        table.to_parquet(str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
