"""Arena votes in the leaderboard database: one row per battle, written once, read per owner.

A vote keeps the prompt, both answers and both contestants' hidden settings, so the ranking can
be recomputed and the pairs exported (exports.py). `battle_id` is unique in the table: a second
vote on a battle (a double click, a replayed request) is refused by the database itself.
Human votes are "human"; votes a metric casts on a test set (pairwise.py) are "metric".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text, exc, select

from playground.arena.battles import Battle
from playground.arena.ratings import OUTCOMES, Vote
from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.leaderboard import Leaderboard

KINDS = ("human", "metric")

metadata = MetaData()
votes_table = Table(
    "votes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("battle_id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False, index=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("test_set", Text),
    Column("prompt", Text, nullable=False),
    Column("answer_a", Text, nullable=False),
    Column("answer_b", Text, nullable=False),
    Column("contestant_a", Text, nullable=False),
    Column("contestant_b", Text, nullable=False),
    Column("settings_a", JSON, nullable=False),
    Column("settings_b", JSON, nullable=False),
    Column("outcome", String(16), nullable=False),
)


@dataclass(frozen=True)
class VoteRecord:
    id: int
    battle_id: str
    kind: str
    owner: str
    created_at: datetime
    test_set: str | None
    prompt: str
    answer_a: str
    answer_b: str
    contestant_a: str
    contestant_b: str
    settings_a: dict[str, Any]
    settings_b: dict[str, Any]
    outcome: str

    def as_vote(self) -> Vote:
        return Vote(self.contestant_a, self.contestant_b, self.outcome)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VoteFilter:
    """Which votes a view shows. user: an owner id (admins only; others always see their own);
    test_set: "" for typed prompts, None for all; since: only votes at or after this moment."""

    kind: str | None = "human"
    user: str | None = None
    test_set: str | None = None
    since: datetime | None = None


class VoteStore:
    """The votes table beside the leaderboard's runs, in the same database."""

    def __init__(self, board: Leaderboard) -> None:
        self.board = board
        with board.write() as conn:
            metadata.create_all(conn)

    def record(self, battle: Battle | None, by: Owner, outcome: str, kind: str = "human") -> VoteRecord:
        """Store the vote on `battle`; refused (nothing stored) when the battle is missing, another
        owner's, unfinished, expired, or already voted on."""
        if outcome not in OUTCOMES:
            raise PlaygroundError(f"A vote is one of {', '.join(OUTCOMES)}, not {str(outcome)[:40]!r}.")
        if kind not in KINDS:
            raise PlaygroundError(f"A vote's kind is one of {', '.join(KINDS)}.")
        if battle is None:
            raise PlaygroundError("There is no battle to vote on: ask a question first.")
        if battle.owner != by.id:
            raise PlaygroundError("This battle belongs to someone else: only who asked may vote on it.")
        if battle.outcome is not None:
            raise PlaygroundError("You voted on this battle already; ask again for a new one.")
        if battle.stopped:
            raise PlaygroundError(
                "This battle was stopped before both answers ended; ask again for a new one."
            )
        if not battle.finished:
            raise PlaygroundError("Wait until both answers are complete, then vote.")
        if battle.expired(time.time()):
            raise PlaygroundError("This battle has expired (over an hour old); ask again for a new one.")
        values = {
            "battle_id": battle.id,
            "kind": kind,
            "owner": by.id,
            "created_at": datetime.now(UTC),
            "test_set": battle.test_set,
            "prompt": battle.prompt,
            "answer_a": battle.answer_a,
            "answer_b": battle.answer_b,
            "contestant_a": battle.a.label,
            "contestant_b": battle.b.label,
            "settings_a": battle.settings_a,
            "settings_b": battle.settings_b,
            "outcome": outcome,
        }
        try:
            with self.board.write() as conn:
                new_id = int(conn.execute(votes_table.insert().values(values)).inserted_primary_key[0])
        except exc.IntegrityError:
            raise PlaygroundError("This battle has a vote already; it was stored once.") from None
        battle.outcome = outcome
        return VoteRecord(id=new_id, **values)

    def record_metric_votes(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store a metric run's votes in one transaction; a vote whose battle id is stored already
        (the same pairing, example and metric run before) is left out. Returns how many are new."""
        if any(r["kind"] != "metric" or r["outcome"] not in OUTCOMES for r in rows):
            raise PlaygroundError("Only metric votes with a known outcome are stored this way.")
        for attempt in range(2):
            try:
                with self.board.write() as conn:
                    new = _not_stored(conn, rows)
                    if new:
                        conn.execute(votes_table.insert(), new)
                    return len(new)
            except exc.IntegrityError:
                # Another run of the same pairing stored some of these meanwhile: look again.
                if attempt:
                    raise PlaygroundError(
                        "The same votes are being stored by another run; try again."
                    ) from None
        return 0

    def votes(self, viewer: Owner, view: VoteFilter | None = None) -> list[VoteRecord]:
        """Votes `viewer` may see (their own; an admin everyone's, or `view.user`'s), oldest first."""
        view = view or VoteFilter()
        query = select(votes_table).order_by(votes_table.c.id)
        if not viewer.is_admin:
            query = query.where(votes_table.c.owner == viewer.id)
        elif view.user:
            query = query.where(votes_table.c.owner == view.user)
        if view.kind:
            query = query.where(votes_table.c.kind == view.kind)
        if view.test_set is not None:
            column = votes_table.c.test_set
            query = query.where(column.is_(None) if view.test_set == "" else column == view.test_set)
        if view.since is not None:
            query = query.where(votes_table.c.created_at >= view.since)
        with self.board.read() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def owners(self) -> list[str]:
        """Everyone who voted (for an admin's filter)."""
        with self.board.read() as conn:
            return list(
                conn.execute(select(votes_table.c.owner).distinct().order_by(votes_table.c.owner)).scalars()
            )

    def test_sets(self, viewer: Owner) -> list[str]:
        return sorted({v.test_set for v in self.votes(viewer, VoteFilter(kind=None)) if v.test_set})


def _not_stored(conn: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(r["battle_id"] for r in rows))
    stored: set[str] = set()
    for start in range(0, len(ids), 500):  # SQLite takes a bounded number of parameters
        chunk = ids[start : start + 500]
        stored |= set(
            conn.execute(select(votes_table.c.battle_id).where(votes_table.c.battle_id.in_(chunk))).scalars()
        )
    seen: set[str] = set()
    new = []
    for r in rows:
        if r["battle_id"] not in stored and r["battle_id"] not in seen:
            seen.add(r["battle_id"])
            new.append(r)
    return new


def _record(row: Any) -> VoteRecord:
    values = dict(row)
    moment = values["created_at"]
    if moment.tzinfo is None:  # SQLite keeps no time zone; everything is written in UTC
        values["created_at"] = moment.replace(tzinfo=UTC)
    values["settings_a"] = dict(values["settings_a"] or {})
    values["settings_b"] = dict(values["settings_b"] or {})
    return VoteRecord(**values)
