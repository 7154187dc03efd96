"""The evidence store: one SQLite file, safe with several processes writing at once.

The default store is ``.stackdecide/evidence.db`` beside the decision file. The file runs in WAL
mode (readers never block the writer), waits for locks instead of failing (busy timeout), and writes
each ``add`` in one ``BEGIN IMMEDIATE`` transaction: a batch is stored whole or not at all, even
when the writing process is killed. Before its first write a connection runs SQLite's
``quick_check``: a damaged store is refused, never written to (a write could report success into
pages that cannot be read back). Readers (``readonly=True``: ``evidence list``, ``export``,
``score --evidence``) open the file so that it cannot be written and change nothing, so a store on
read-only media or without write permission can still be read. The schema is versioned with
``PRAGMA user_version`` and migrated forward on open; a store written by a newer stackdecide is
refused, not damaged.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import (
    EvidenceRecord,
    EvidenceSet,
    ExportFormat,
    HardwareInfo,
    dump_records,
)
from stackdecide.model.metrics import get_metric
from stackdecide.state import STATE_DIR, last_decision

DEFAULT_FILENAME = "evidence.db"
BUSY_TIMEOUT_S = 60.0
SQLITE_MAGIC = b"SQLite format 3\x00"


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
    (  # 2: the launch each record came from, which groups records into replicates
        "ALTER TABLE records ADD COLUMN launch TEXT",
        # launches before this step named their run folder only in the source, as "run <folder>"
        "UPDATE records SET launch = substr(source, 5) WHERE source LIKE 'run %'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = ("candidate", "metric", "value", "unit", "repeats", "spread", "scenario", "hardware",
            "software", "config_sha256", "timestamp", "tool_version", "source", "note", "launch")
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
        with EvidenceStore(path, create=False, readonly=True) as store:
            return store.load()
    from stackdecide.evidence.importers import read_evidence_file

    return EvidenceSet.of(read_evidence_file(path).records)


def _is_sqlite(path: Path) -> bool:
    """Whether ``path`` is a regular file starting like an SQLite database. Anything else (a
    FIFO, whose opening would wait for a writer; a device) is left to the file reader to refuse."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError as exc:
        raise EvidenceError(f"cannot read this file: {exc.strerror or exc}",
                            Location(str(path))) from None


class EvidenceStore:
    """A connection to one evidence store; use as a context manager to close it.

    >>> with EvidenceStore(default_evidence_path("criteria/rtx4090.yaml")) as store:
    ...     ids = store.add([EvidenceRecord(candidate="a", metric="decode_tok_s", value=120.0)])
    ...     evidence = store.load(candidate="a")
    """

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._where = Location(str(self.path))
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        self._intact = False  # quick_check passed on this connection (checked before writing)
        self._empty = False  # a read-only view of a store no writer has set up yet
        self._check_file(create and not readonly)
        if readonly:
            self._db = self._connect_readonly()
            return
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

    def _check_file(self, create: bool) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            if not create:
                raise EvidenceError("no such evidence store", self._where) from None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EvidenceError(f"cannot create the store's folder {self.path.parent}: "
                                    f"{exc.strerror or exc}", self._where) from None
            return
        except OSError as exc:
            raise EvidenceError(f"cannot reach the evidence store: {exc.strerror or exc}",
                                self._where) from None
        if stat.S_ISDIR(info.st_mode):
            raise EvidenceError("is a directory, not an evidence store", self._where)
        if not stat.S_ISREG(info.st_mode):
            raise EvidenceError("is not a regular file (a device, FIFO or socket); an evidence "
                                "store is an SQLite file", self._where)
        if info.st_size and not _is_sqlite(self.path):
            raise EvidenceError("not an evidence store (not an SQLite database)", self._where)

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that reads and never writes: no WAL switch, no migration.

        Tried in order, each when the one before cannot open the store:

        1. read-write with ``query_only``: nothing can be written, and when it closes as the last
           connection SQLite removes the -wal and -shm files of a WAL store, as a writer does (a
           ``mode=ro`` connection cannot, and would leave them beside the store);
        2. ``mode=ro``: a store whose file or folder may not be written;
        3. ``mode=ro&immutable=1``: a WAL store in a folder that may not be written, its -shm file
           gone, which SQLite opens no other way. A writer with more rights could still be adding
           records: this read may then miss the newest, and writes nothing either way.
        """
        base = f"file:{urllib.parse.quote(str(self.path.absolute()))}"
        for query in ("mode=rw", "mode=ro", "mode=ro&immutable=1"):
            try:
                db = self._connect(f"{base}?{query}")
            except EvidenceError:
                continue
            try:
                db.execute("PRAGMA query_only = ON")
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                break
            except sqlite3.OperationalError as exc:
                db.close()
                if not any(word in str(exc) for word in ("unable to open", "readonly",
                                                         "read-only")):
                    raise self._error("cannot read the evidence store", exc) from None
            except sqlite3.DatabaseError as exc:
                db.close()
                raise self._error("not an evidence store", exc) from None
        else:
            raise EvidenceError("cannot open the evidence store for reading: check the "
                                "permissions of the file and its folder", self._where)
        if version > SCHEMA_VERSION:
            db.close()
            raise EvidenceError(f"the store has schema version {version}, newer than this "
                                f"stackdecide reads ({SCHEMA_VERSION}); upgrade stackdecide",
                                self._where)
        self._empty = version == 0  # created but never written: no records table yet
        return db

    def _connect(self, uri: str) -> sqlite3.Connection:
        try:
            return sqlite3.connect(uri, uri=True, timeout=self.busy_timeout_s,
                                   isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error("cannot open the evidence store", exc) from None

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
        hint = ""
        if any(word in str(exc) for word in ("readonly", "read-only", "unable to open")):
            hint = ("; the store cannot be written here: check the permissions of the file and "
                    "its folder, or pass --evidence with a store you can write")
        return EvidenceError(f"{what}: {exc}{hint}", self._where)

    def _check_intact(self) -> None:
        """Refuse to write into a damaged store. SQLite can append to a file whose other pages are
        corrupt and report success, while what was stored can no longer be read back."""
        if self._intact:
            return
        try:
            rows = [str(row[0]) for row in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            more = f" (and {len(rows) - 1} more problems)" if len(rows) > 1 else ""
            raise EvidenceError(
                f"the evidence store is damaged, so nothing was written to it (SQLite's "
                f"quick_check: {rows[0]}{more}). Copy the file aside, then recover what can be read "
                f"with `sqlite3 {self.path} .recover | sqlite3 recovered.db`, or restore a backup; "
                "write new evidence to another store with --evidence", self._where)
        self._intact = True

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
        if self.readonly:
            raise EvidenceError("this store was opened read-only; open it without readonly=True "
                                "to add records", self._where)
        self._begin()
        try:
            self._check_intact()  # under the write lock: nothing changes between check and write
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
        if self._empty:
            return EvidenceSet()
        try:
            rows = self._db.execute(
                f"SELECT id, {self._columns()} FROM records{clauses} ORDER BY id", params
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error("cannot read the evidence store", exc) from None
        return EvidenceSet(tuple(self._record(row) for row in rows))

    def _columns(self) -> str:
        """The columns to read; a store not yet migrated (one opened read-only) has no launch
        column, and its records name their launch by their source (``EvidenceRecord``)."""
        if self._version() >= 2:
            return ", ".join(_COLUMNS)
        return ", ".join(column if column != "launch" else "NULL" for column in _COLUMNS)

    def count(self, candidate: str | None = None, metric: str | None = None) -> int:
        clauses, params = self._where_clause(candidate, metric, None)
        if self._empty:
            return 0
        try:
            return int(self._db.execute(f"SELECT count(*) FROM records{clauses}",
                                        params).fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise self._error("cannot read the evidence store", exc) from None

    def export(self, fmt: ExportFormat = "json", candidate: str | None = None,
               metric: str | None = None) -> str:
        """The selected records as text: our JSON or JSONL format (re-importable), or CSV."""
        return dump_records(self.load(candidate, metric).records, fmt)

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
        where = Location(str(self.path), field=f"records[id={data['id']}]")
        try:
            for key in ("scenario", "software", "hardware"):
                if data[key] is not None:
                    data[key] = json.loads(data[key])
            if data["hardware"] is not None:
                data["hardware"] = HardwareInfo(**data["hardware"])
            return EvidenceRecord.from_dict({k: v for k, v in data.items() if v is not None},
                                            where)
        except (ValueError, TypeError, EvidenceError) as exc:
            # Stored by an older stackdecide that did not check domains, or edited by hand:
            # say which record and how to remove it, rather than hide it or stop without a way out
            message = exc.message if isinstance(exc, EvidenceError) else str(exc)
            raise EvidenceError(
                f"{message}; this stored record is not a possible measurement (stored by an older "
                f"stackdecide, or edited by hand): delete it with `sqlite3 {self.path} \"DELETE "
                f"FROM records WHERE id = {data['id']}\"`",
                exc.location if isinstance(exc, EvidenceError) and exc.location else where,
            ) from None


def _row(record: EvidenceRecord) -> tuple[Any, ...]:
    hardware = record.hardware.model_dump(mode="json", exclude_none=True) if record.hardware else None
    return (record.candidate, record.metric, record.value, record.unit, record.repeats,
            record.spread, record.scenario_key,
            json.dumps(hardware, sort_keys=True) if hardware else None,
            json.dumps(record.software, sort_keys=True), record.config_sha256,
            record.timestamp.isoformat(), record.tool_version, record.source, record.note,
            record.launch)
