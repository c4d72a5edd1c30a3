"""The leaderboard database: every evaluation run, its settings, its scores and its per-example rows.

SQLite (WAL) in data_dir() by default; any SQLAlchemy URL through `Leaderboard(url)` or
PLAYGROUND_DB_URL, so PostgreSQL works too. Only the SQLite branch uses SQLite-only SQL.

Several app threads and a training subprocess may write at once, so on SQLite every write
transaction starts with BEGIN IMMEDIATE: it takes the write lock up front and waits for it
(busy_timeout) instead of failing half-way when a read lock cannot be upgraded. A run's
metrics, example rows and status are written in one transaction, so a killed process leaves
either a finished run with all its rows or a "running" row that `mark_interrupted` cleans up.
Non-finite numbers (an infinite perplexity) are stored as null, because JSON has no NaN/inf.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import socket
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    exc,
    inspect,
    make_url,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

from playground.errors import PlaygroundError
from playground.identity import SYSTEM, Owner, display_owner
from playground.paths import data_dir

STATUSES = ("running", "finished", "failed", "cancelled", "interrupted")
STRATEGIES = ("zero-shot", "k-shot", "cot")
SELECTIONS = ("first", "last", "random", "similar", "manual")
# Exact names of metrics where lower is better, besides anything ending in these suffixes.
LOWER_IS_BETTER_NAMES = frozenset({"nll", "ter", "wer", "cer"})
LOWER_IS_BETTER_SUFFIXES = ("perplexity", "loss")
_WRITE = "playground_write"

metadata = MetaData()

runs_table = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status", String(16), nullable=False, index=True),
    Column("message", Text, nullable=False, default=""),
    Column("model", Text, nullable=False),
    Column("adapter", Text),
    Column("task", String(64), nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("shots", Integer, nullable=False),
    Column("selection", String(16)),
    Column("seed", BigInteger),
    Column("template_sha", String(64), nullable=False),
    Column("template_text", Text, nullable=False),
    Column("decoding", JSON, nullable=False),
    Column("dataset_name", Text, nullable=False, index=True),
    Column("dataset_sha", String(64), nullable=False),
    Column("n_examples", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    Column("pid", Integer),
    Column("host", String(255)),
    Column("notes", JSON, nullable=False),
    Column("owner", String(255)),
    Column("published", Integer, nullable=False, default=0),
)
# Columns added after the first release: databases created before get them on open.
_ADDED_COLUMNS = {"owner": "VARCHAR(255)", "published": "INTEGER NOT NULL DEFAULT 0"}

examples_table = Table(
    "run_examples",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("prompt", Text, nullable=False),
    Column("reference", Text),
    Column("prediction", Text),
    Column("metrics", JSON, nullable=False),
    Column("nll", JSON),
    Column("tokens", JSON),
)


@dataclass
class RunSpec:
    """Everything known before a run starts. Put the random seed in `seed`, not in `decoding`."""

    model: str
    task: str
    dataset_name: str
    strategy: str = "zero-shot"
    shots: int = 0
    selection: str | None = None
    seed: int | None = None
    adapter: str | None = None
    template_sha: str = ""
    template_text: str = ""
    decoding: dict[str, Any] = field(default_factory=dict)
    dataset_sha: str = ""
    n_examples: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def config_key(self) -> str:
        """Same key <=> same configuration apart from the seed (and the free-form notes)."""
        key = {f.name: getattr(self, f.name) for f in fields(RunSpec) if f.name not in ("seed", "notes")}
        text = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(kw_only=True)
class RunRecord(RunSpec):
    """A stored run: its spec, status and scores. `metrics` maps name -> float (None if non-finite)."""

    id: int
    status: str
    message: str
    metrics: dict[str, float | None]
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    pid: int | None
    host: str | None
    owner: str | None = None
    published: bool = False

    def spec(self) -> RunSpec:
        """Just the settings, without the outcome."""
        return RunSpec(**{f.name: getattr(self, f.name) for f in fields(RunSpec)})


@dataclass
class ExampleResult:
    """One evaluated example. `nll` and `tokens` are per generated/scored token."""

    idx: int
    prompt: str
    reference: str | None = None
    prediction: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    nll: list[float | None] | None = None
    tokens: list[str] | None = None


@dataclass
class GroupRow:
    """Finished runs sharing a config_key: mean and sample std (0 for one run) per metric."""

    config_key: str
    spec: RunSpec  # the newest run's spec, seed cleared
    n_runs: int
    seeds: list[int | None]
    run_ids: list[int]
    mean: dict[str, float]
    std: dict[str, float]


def lower_is_better(metric: str) -> bool:
    name = metric.lower()
    return name in LOWER_IS_BETTER_NAMES or name.endswith(LOWER_IS_BETTER_SUFFIXES)


def default_url() -> str:
    return os.environ.get("PLAYGROUND_DB_URL") or f"sqlite:///{data_dir() / 'leaderboard.sqlite3'}"


def _finite(value: Any, what: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    return number if math.isfinite(number) else None


def _clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    return {str(name): _finite(value, f"metric {name!r}") for name, value in metrics.items()}


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite keeps no time zone; everything is written in UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it just belongs to someone else
    with contextlib.suppress(OSError, IndexError):
        # An exited child that its parent has not reaped yet still answers kill(0).
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, json_serializer=_dumps)
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {}
    if in_memory:
        options["poolclass"] = StaticPool  # one shared connection, or each thread sees an empty db
    elif not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        pool_pre_ping=True,
        json_serializer=_dumps,
        connect_args={"check_same_thread": False, "timeout": 30},
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _on_begin
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


class Leaderboard:
    """All runs in one database. Safe to share between threads; other processes may write too."""

    def __init__(self, url: str | None = None):
        self.engine = _make_engine(url or default_url())
        self.url = self.engine.url.render_as_string(hide_password=True)
        self._writer = self.engine.execution_options(**{_WRITE: True})
        with self._write() as conn:
            metadata.create_all(conn)
            present = {c["name"] for c in inspect(conn).get_columns("runs")}
            for name, ddl in _ADDED_COLUMNS.items():
                if name not in present:
                    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {name} {ddl}")

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _failures_as_messages(self) -> Iterator[None]:
        try:
            yield
        except exc.OperationalError as error:
            raise PlaygroundError(f"The leaderboard database ({self.url}) failed: {error.orig}") from error

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._failures_as_messages(), self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._failures_as_messages(), self.engine.connect() as conn:
            yield conn

    def write(self) -> contextlib.AbstractContextManager[Connection]:
        """A write transaction, for tables kept beside the runs (arena votes)."""
        return self._write()

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._read()

    # -- writing ---------------------------------------------------------------------------

    def as_owner(self, owner: Owner) -> OwnedLeaderboard:
        """This leaderboard, with the runs it starts stamped as `owner`'s."""
        return OwnedLeaderboard(self, owner)

    def start_run(self, spec: RunSpec, owner: str | None = None) -> int:
        if spec.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {spec.strategy!r}")
        if spec.selection is not None and spec.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS} or None, got {spec.selection!r}")
        values = {f.name: getattr(spec, f.name) for f in fields(RunSpec)}
        values.update(
            status="running",
            message="",
            metrics={},
            started_at=datetime.now(UTC),
            pid=os.getpid(),
            host=socket.gethostname(),
            owner=owner,
            published=0,
        )
        with self._write() as conn:
            return int(conn.execute(runs_table.insert().values(values)).inserted_primary_key[0])

    def finish_run(self, run_id: int, metrics: dict[str, float], examples: list[ExampleResult]) -> None:
        """Metrics, example rows and status "finished" in one transaction.

        n_examples becomes len(examples) when examples are given, so the two always agree.
        """
        cleaned = _clean_metrics(metrics)
        rows = [
            {
                "run_id": run_id,
                "idx": ex.idx,
                "prompt": ex.prompt,
                "reference": ex.reference,
                "prediction": ex.prediction,
                "metrics": _clean_metrics(ex.metrics),
                "nll": None if ex.nll is None else [_finite(x, "nll") for x in ex.nll],
                "tokens": None if ex.tokens is None else [str(t) for t in ex.tokens],
            }
            for ex in examples
        ]
        if len({row["idx"] for row in rows}) != len(rows):
            raise ValueError(f"run #{run_id}: example idx values must be unique")
        with self._write() as conn:
            status, started = self._status(conn, run_id)
            # "interrupted" may be a false alarm (app restarted while the run went on): let it finish.
            if status not in ("running", "interrupted"):
                raise PlaygroundError(f"Run #{run_id} is already {status}; its results were not saved.")
            now = datetime.now(UTC)
            values: dict[str, Any] = {
                "status": "finished",
                "message": "",
                "metrics": cleaned,
                "finished_at": now,
                "duration_s": (now - started).total_seconds(),
            }
            if rows:
                values["n_examples"] = len(rows)
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(values))
            if rows:
                conn.execute(examples_table.insert(), rows)

    def fail_run(self, run_id: int, message: str, status: str = "failed") -> None:
        """Mark a run failed or cancelled. A run that already finished stays finished."""
        if status not in ("failed", "cancelled"):
            raise ValueError(f"status must be 'failed' or 'cancelled', got {status!r}")
        with self._write() as conn:
            current, started = self._status(conn, run_id)
            if current not in ("running", "interrupted"):
                return
            now = datetime.now(UTC)
            conn.execute(
                update(runs_table)
                .where(runs_table.c.id == run_id)
                .values(
                    status=status,
                    message=message,
                    finished_at=now,
                    duration_s=(now - started).total_seconds(),
                )
            )

    def mark_interrupted(self, all_running: bool = False) -> int:
        """Runs left "running" by a process that is gone become "interrupted"; returns how many.

        Without `all_running` only rows from this host whose pid is dead are touched (a
        subprocess or another app may still be working); at app start every running row is stale.
        """
        host = socket.gethostname()
        with self._write() as conn:
            running = conn.execute(
                select(runs_table.c.id, runs_table.c.pid, runs_table.c.host).where(
                    runs_table.c.status == "running"
                )
            ).all()
            stale = [
                (row.id, row.pid, row.host)
                for row in running
                if all_running or (row.host == host and (row.pid is None or not _pid_alive(row.pid)))
            ]
            for run_id, pid, run_host in stale:
                conn.execute(
                    update(runs_table)
                    .where(runs_table.c.id == run_id, runs_table.c.status == "running")
                    .values(
                        status="interrupted",
                        message=f"The process running it (pid {pid} on {run_host}) stopped before it finished.",
                    )
                )
        return len(stale)

    def delete_run(self, run_id: int, by: Owner = SYSTEM) -> None:
        with self._write() as conn:
            self._status(conn, run_id)
            by.require(self._owner(conn, run_id), f"Run #{run_id}")
            conn.execute(runs_table.delete().where(runs_table.c.id == run_id))  # examples cascade

    def publish_run(self, run_id: int, by: Owner, published: bool = True) -> None:
        """Let everyone (or again only the owner) read the run's per-example rows."""
        with self._write() as conn:
            self._status(conn, run_id)
            by.require(self._owner(conn, run_id), f"Run #{run_id}")
            conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(published=int(published)))

    def _owner(self, conn: Connection, run_id: int) -> str | None:
        return conn.execute(select(runs_table.c.owner).where(runs_table.c.id == run_id)).scalar()

    # -- reading ---------------------------------------------------------------------------

    def _status(self, conn: Connection, run_id: int) -> tuple[str, datetime]:
        row = conn.execute(
            select(runs_table.c.status, runs_table.c.started_at).where(runs_table.c.id == run_id)
        ).first()
        if row is None:
            raise PlaygroundError(f"no run #{run_id}")
        return row.status, _aware(row.started_at)

    def runs(
        self,
        dataset_name: str | None = None,
        model: str | None = None,
        status: str | None = None,
        strategy: str | None = None,
    ) -> list[RunRecord]:
        """Newest first."""
        query = select(runs_table).order_by(runs_table.c.id.desc())
        for column, value in (
            (runs_table.c.dataset_name, dataset_name),
            (runs_table.c.model, model),
            (runs_table.c.status, status),
            (runs_table.c.strategy, strategy),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._read() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def run(self, run_id: int) -> RunRecord:
        with self._read() as conn:
            row = conn.execute(select(runs_table).where(runs_table.c.id == run_id)).mappings().first()
        if row is None:
            raise PlaygroundError(f"no run #{run_id}")
        return _record(row)

    def examples(self, run_id: int, viewer: Owner = SYSTEM) -> list[ExampleResult]:
        """The run's per-example rows: for its owner and admins, or anyone once published."""
        record = self.run(run_id)
        if not record.published and not viewer.can_manage(record.owner):
            raise PlaygroundError(
                f"The examples of run #{run_id} are private to {display_owner(record.owner)} (its scores "
                "are shared; its rows hold their data). The owner can publish them."
            )
        query = select(examples_table).where(examples_table.c.run_id == run_id).order_by(examples_table.c.idx)
        with self._read() as conn:
            return [
                ExampleResult(
                    idx=row.idx,
                    prompt=row.prompt,
                    reference=row.reference,
                    prediction=row.prediction,
                    metrics=dict(row.metrics or {}),
                    nll=row.nll,
                    tokens=row.tokens,
                )
                for row in conn.execute(query)
            ]

    def datasets(self) -> list[str]:
        query = select(runs_table.c.dataset_name).distinct().order_by(runs_table.c.dataset_name)
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    # -- summaries -------------------------------------------------------------------------

    def groups(self, dataset_name: str, metric: str) -> list[GroupRow]:
        """Finished runs that measured `metric`, grouped by config_key, best group first."""
        by_key: dict[str, list[RunRecord]] = {}
        for record in reversed(self.runs(dataset_name=dataset_name, status="finished")):
            by_key.setdefault(record.config_key(), []).append(record)
        groups = [_group(key, records) for key, records in by_key.items()]
        groups = [g for g in groups if metric in g.mean]
        groups.sort(key=lambda g: g.mean[metric], reverse=not lower_is_better(metric))
        return groups

    def leaderboard_table(self, dataset_name: str, metric: str) -> list[dict[str, Any]]:
        """Display rows, best first: settings, `metric` mean and std, other metrics' means."""
        rows = []
        for rank, group in enumerate(self.groups(dataset_name, metric), start=1):
            spec = group.spec
            row: dict[str, Any] = {
                "rank": rank,
                "model": spec.model,
                "adapter": spec.adapter or "",
                "task": spec.task,
                "strategy": spec.strategy,
                "shots": spec.shots,
                "selection": spec.selection or "",
                "template": spec.template_sha,
                "decoding": json.dumps(spec.decoding, sort_keys=True, ensure_ascii=False),
                "examples": spec.n_examples,
                "runs": group.n_runs,
                "seeds": ", ".join("-" if s is None else str(s) for s in group.seeds),
                metric: group.mean[metric],
                f"{metric} std": group.std[metric],
            }
            for name in sorted(group.mean):
                row.setdefault(name, group.mean[name])
            row["run ids"] = ", ".join(str(i) for i in group.run_ids)
            rows.append(row)
        return rows

    def to_csv(self, dataset_name: str | None = None) -> str:
        """One row per run (oldest first); each metric gets its own column."""
        records = list(reversed(self.runs(dataset_name=dataset_name)))
        base = [
            "id",
            "status",
            "model",
            "adapter",
            "task",
            "strategy",
            "shots",
            "selection",
            "seed",
            "template_sha",
            "dataset_name",
            "dataset_sha",
            "n_examples",
            "started_at",
            "finished_at",
            "duration_s",
            "pid",
            "host",
            "message",
            "decoding",
            "notes",
            "template_text",
        ]
        metric_names = sorted({name for r in records for name in r.metrics})
        # A metric named like a fixed column (say "seed") gets a prefix instead of overwriting it.
        metric_columns = {name: f"metric.{name}" if name in base else name for name in metric_names}
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=base + list(metric_columns.values()), lineterminator="\n")
        writer.writeheader()
        for r in records:
            row: dict[str, Any] = {name: getattr(r, name) for name in base}
            row["decoding"] = json.dumps(r.decoding, sort_keys=True, ensure_ascii=False)
            row["notes"] = json.dumps(r.notes, sort_keys=True, ensure_ascii=False)
            for key in ("started_at", "finished_at"):
                row[key] = row[key].isoformat() if row[key] else ""
            for name, column in metric_columns.items():
                value = r.metrics.get(name)
                row[column] = "" if value is None else repr(float(value))
            writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
        return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=SUM(...), @cmd) gets a leading quote; numbers stay."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


class OwnedLeaderboard:
    """A Leaderboard whose start_run stamps one owner; everything else is the board's own."""

    def __init__(self, board: Leaderboard, owner: Owner):
        self._board = board
        self.owner = owner

    def start_run(self, spec: RunSpec, owner: str | None = None) -> int:
        return self._board.start_run(spec, owner=owner or self.owner.id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._board, name)


def _record(row: Any) -> RunRecord:
    values = {f.name: row[f.name] for f in fields(RunRecord)}
    values["published"] = bool(values["published"])
    values["started_at"] = _aware(values["started_at"])
    values["finished_at"] = _aware(values["finished_at"])
    for key in ("decoding", "metrics", "notes"):
        values[key] = dict(values[key] or {})
    return RunRecord(**values)


def _group(key: str, records: list[RunRecord]) -> GroupRow:
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name in sorted({n for r in records for n in r.metrics}):
        values = [r.metrics[name] for r in records if r.metrics.get(name) is not None]
        if values:
            mean[name] = statistics.fmean(values)
            std[name] = statistics.stdev(values) if len(values) > 1 else 0.0
    return GroupRow(
        config_key=key,
        spec=replace(records[-1].spec(), seed=None),
        n_runs=len(records),
        seeds=[r.seed for r in records],
        run_ids=[r.id for r in records],
        mean=mean,
        std=std,
    )
