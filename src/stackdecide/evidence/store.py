"""The evidence store: one SQLite file, safe with several processes writing at once.

The default store is ``.stackdecide/evidence.db`` beside the decision file. The file runs in WAL
mode (readers never block the writer), waits for locks instead of failing (busy timeout), and writes
each ``add`` in one ``BEGIN IMMEDIATE`` transaction: a batch is stored whole or not at all, even
when the writing process is killed. The schema is versioned with ``PRAGMA user_version`` and
migrated forward on open; a store written by a newer stackdecide is refused, not damaged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import (
    EvidenceRecord,
    EvidenceSet,
    HardwareInfo,
    dump_csv,
    dump_json,
    dump_jsonl,
)
from stackdecide.model.metrics import get_metric
from stackdecide.state import STATE_DIR, last_decision

DEFAULT_FILENAME = "evidence.db"
BUSY_TIMEOUT_S = 60.0
SQLITE_MAGIC = b"SQLite format 3\x00"

ExportFormat = Literal["json", "jsonl", "csv"]

# Each migration moves the schema up by one version; they run in order inside one transaction.
# Append new steps, never edit old ones: stores in the field have run them.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: records with their provenance
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            candidate TEXT NOT NULL,
            metric TEXT NOT NULL,
            value REAL NOT NULL,
            unit TEXT NOT NULL,
            repeats INTEGER NOT NULL,
            spread REAL,
            scenario TEXT NOT NULL,
            hardware TEXT,
            software TEXT NOT NULL,
            config_sha256 TEXT,
            timestamp TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            source TEXT,
            note TEXT
        )""",
        "CREATE INDEX records_candidate_metric ON records (candidate, metric)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = ("candidate", "metric", "value", "unit", "repeats", "spread", "scenario", "hardware",
            "software", "config_sha256", "timestamp", "tool_version", "source", "note")
_INSERT = (f"INSERT INTO records ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def default_evidence_path(decision_file: str | Path) -> Path:
    """``.stackdecide/evidence.db`` in the folder of the decision file."""
    return Path(decision_file).resolve().parent / STATE_DIR / DEFAULT_FILENAME


def resolve_evidence_path(evidence: str | Path | None = None,
                          decision_file: str | Path | None = None,
                          base: Path | None = None) -> Path:
    """The store to use: ``evidence`` if given, else the default beside ``decision_file``, else
    the default beside the decision last scored in ``base`` (the current folder)."""
    if evidence is not None:
        return Path(evidence)
    if decision_file is not None:
        return default_evidence_path(decision_file)
    last = last_decision(base)
    if last is not None:
        return default_evidence_path(last)
    raise EvidenceError("which evidence store? Pass --evidence PATH, or --decision FILE to use "
                        f"{STATE_DIR}/{DEFAULT_FILENAME} beside the decision file")


def load_evidence(path: str | Path) -> EvidenceSet:
    """Every record in an evidence store, or in one of our JSON/JSONL export files.

    The store must exist: reading never creates one. ``vllm bench serve`` result files name no
    candidate; import them with ``stackdecide evidence import --candidate``.
    """
    path = Path(path)
    if not path.exists():
        raise EvidenceError("no such evidence store or file", Location(str(path)))
    if _is_sqlite(path):
        with EvidenceStore(path, create=False) as store:
            return store.load()
    from stackdecide.evidence.importers import read_evidence_file

    return EvidenceSet.of(read_evidence_file(path).records)


def _is_sqlite(path: Path) -> bool:
    if path.is_dir():
        return False
    with path.open("rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


class EvidenceStore:
    """A connection to one evidence store; use as a context manager to close it.

    >>> with EvidenceStore(default_evidence_path("criteria/rtx4090.yaml")) as store:
    ...     ids = store.add([EvidenceRecord(candidate="a", metric="decode_tok_s", value=120.0)])
    ...     evidence = store.load(candidate="a")
    """

    def __init__(self, path: str | Path, *, create: bool = True,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._where = Location(str(self.path))
        if self.path.is_dir():
            raise EvidenceError("is a directory, not an evidence store", self._where)
        if not self.path.exists():
            if not create:
                raise EvidenceError("no such evidence store", self._where)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.stat().st_size and not _is_sqlite(self.path):
            raise EvidenceError("not an evidence store (not an SQLite database)", self._where)
        self.busy_timeout_s = busy_timeout_s
        try:
            # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
            self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise EvidenceError(f"cannot open the evidence store: {exc}", self._where) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._set_wal()
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _set_wal(self) -> None:
        # Switching a new file to WAL needs a moment of exclusive access, which SQLite's busy
        # handler does not wait for; retry while other processes are opening the same new file.
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise self._error("cannot switch to WAL mode", exc) from None
                time.sleep(0.01)
            except sqlite3.DatabaseError as exc:
                raise self._error("not an evidence store", exc) from None
        if str(mode).lower() != "wal":
            raise EvidenceError(f"the store cannot use WAL mode (journal mode is {mode}); is it on "
                                "a network file system?", self._where)

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return
        self._begin()
        try:
            version = self._version()  # again, now under the write lock: another process may have won
            if version > SCHEMA_VERSION:
                raise EvidenceError(f"the store has schema version {version}, newer than this "
                                    f"stackdecide reads ({SCHEMA_VERSION}); upgrade stackdecide",
                                    self._where)
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error("cannot migrate the evidence store", exc) from None
        except BaseException:
            self._rollback()
            raise

    def _version(self) -> int:
        try:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise self._error("not an evidence store", exc) from None

    def _begin(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._error(f"cannot lock the evidence store for writing within "
                              f"{self.busy_timeout_s:g} s", exc) from None

    def _error(self, what: str, exc: sqlite3.Error) -> EvidenceError:
        return EvidenceError(f"{what}: {exc}", self._where)

    @property
    def schema_version(self) -> int:
        return self._version()

    # -- writing -----------------------------------------------------------------------------------
    def add(self, records: Iterable[EvidenceRecord]) -> list[int]:
        """Store records in one transaction and return their new ids, in order.

        The records are consumed inside the transaction: if anything fails (a bad item, a killed
        process) none of them is stored.
        """
        ids: list[int] = []
        self._begin()
        try:
            for index, record in enumerate(records):
                if not isinstance(record, EvidenceRecord):
                    raise EvidenceError(f"item {index} is a {type(record).__name__}, not an "
                                        "EvidenceRecord", self._where)
                cursor = self._db.execute(_INSERT, _row(record))
                ids.append(int(cursor.lastrowid or 0))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error("cannot store evidence", exc) from None
        except BaseException:
            self._rollback()
            raise
        return ids

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            self._db.execute("ROLLBACK")

    # -- reading -----------------------------------------------------------------------------------
    def load(self, candidate: str | None = None, metric: str | None = None,
             ids: Sequence[int] | None = None) -> EvidenceSet:
        """Records in the order they were stored, optionally only one candidate's or metric's."""
        clauses, params = self._where_clause(candidate, metric, ids)
        try:
            rows = self._db.execute(
                f"SELECT id, {', '.join(_COLUMNS)} FROM records{clauses} ORDER BY id", params
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error("cannot read the evidence store", exc) from None
        return EvidenceSet(tuple(self._record(row) for row in rows))

    def count(self, candidate: str | None = None, metric: str | None = None) -> int:
        clauses, params = self._where_clause(candidate, metric, None)
        return int(self._db.execute(f"SELECT count(*) FROM records{clauses}", params).fetchone()[0])

    def export(self, fmt: ExportFormat = "json", candidate: str | None = None,
               metric: str | None = None) -> str:
        """The selected records as text: our JSON or JSONL format (re-importable), or CSV."""
        records = self.load(candidate, metric).records
        if fmt == "json":
            return dump_json(records)
        if fmt == "jsonl":
            return dump_jsonl(records)
        if fmt == "csv":
            return dump_csv(records)
        raise EvidenceError(f"unknown export format '{fmt}'; choose json, jsonl or csv")

    def integrity_check(self) -> str:
        """SQLite's own check of the file: ``ok`` when nothing is damaged."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    @staticmethod
    def _where_clause(candidate: str | None, metric: str | None,
                      ids: Sequence[int] | None) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if candidate is not None:
            parts.append("candidate = ?")
            params.append(candidate)
        if metric is not None:
            get_metric(metric)
            parts.append("metric = ?")
            params.append(metric)
        if ids is not None:
            parts.append(f"id IN ({', '.join('?' for _ in ids)})")
            params.extend(int(i) for i in ids)
        return (" WHERE " + " AND ".join(parts) if parts else ""), params

    def _record(self, row: tuple[Any, ...]) -> EvidenceRecord:
        data = dict(zip(("id", *_COLUMNS), row, strict=True))
        for key in ("scenario", "software", "hardware"):
            if data[key] is not None:
                data[key] = json.loads(data[key])
        if data["hardware"] is not None:
            data["hardware"] = HardwareInfo(**data["hardware"])
        return EvidenceRecord.from_dict(
            {k: v for k, v in data.items() if v is not None},
            Location(str(self.path), field=f"records[id={data['id']}]"))


def _row(record: EvidenceRecord) -> tuple[Any, ...]:
    hardware = record.hardware.model_dump(mode="json", exclude_none=True) if record.hardware else None
    return (record.candidate, record.metric, record.value, record.unit, record.repeats,
            record.spread, record.scenario_key,
            json.dumps(hardware, sort_keys=True) if hardware else None,
            json.dumps(record.software, sort_keys=True), record.config_sha256,
            record.timestamp.isoformat(), record.tool_version, record.source, record.note)
