"""Arena votes as files: a CSV of every vote, and preference pairs in the JSONL shape DPO trainers
read ({"prompt", "chosen", "rejected"}; ties and "both bad" say nothing of which is better)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from playground.arena.votes import VoteRecord
from playground.atomic import atomic_write_text
from playground.errors import PlaygroundError
from playground.leaderboard import spreadsheet_safe
from playground.paths import private_export_dir

CSV_COLUMNS = (
    "id",
    "battle_id",
    "kind",
    "owner",
    "created_at",
    "test_set",
    "contestant_a",
    "contestant_b",
    "outcome",
    "prompt",
    "answer_a",
    "answer_b",
    "settings_a",
    "settings_b",
)


def votes_csv(records: Sequence[VoteRecord]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for r in records:
        row = {name: getattr(r, name) for name in CSV_COLUMNS}
        row["created_at"] = r.created_at.isoformat()
        row["settings_a"] = json.dumps(r.settings_a, sort_keys=True, ensure_ascii=False)
        row["settings_b"] = json.dumps(r.settings_b, sort_keys=True, ensure_ascii=False)
        writer.writerow({k: spreadsheet_safe("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


def preference_pairs(records: Sequence[VoteRecord]) -> list[dict[str, str]]:
    pairs = []
    for r in records:
        if r.outcome == "a":
            pairs.append({"prompt": r.prompt, "chosen": r.answer_a, "rejected": r.answer_b})
        elif r.outcome == "b":
            pairs.append({"prompt": r.prompt, "chosen": r.answer_b, "rejected": r.answer_a})
    return pairs


def preference_jsonl(records: Sequence[VoteRecord]) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preference_pairs(records))


def export_votes(records: Sequence[VoteRecord], fmt: str) -> Path:
    """Write the votes to a new file in the exports folder ("csv" or "jsonl") and return its path."""
    if not records:
        raise PlaygroundError("No votes match these filters, so there is nothing to export.")
    if fmt == "csv":
        text = votes_csv(records)
    elif fmt == "jsonl":
        text = preference_jsonl(records)
        if not text:
            raise PlaygroundError("These votes are all ties or 'both bad': no preference pairs to export.")
    else:
        raise PlaygroundError("Export as csv or jsonl.")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = "arena-votes" if fmt == "csv" else "arena-preference-pairs"
    path = private_export_dir() / f"{name}-{stamp}.{fmt}"
    atomic_write_text(path, text)
    return path
