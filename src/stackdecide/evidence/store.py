"""The evidence store: one SQLite file, safe with several processes writing at once.

The default store is ``.stackdecide/evidence.db`` beside the decision file. A store is marked as
ours (``PRAGMA application_id`` = ``APPLICATION_ID``), and stackdecide writes only into a new
file, a marked one, or a store made before the mark (our one ``records`` table): another
application's SQLite file is refused before anything is written to it: not even the switch to
WAL, nor the commits a crash left in its -wal (or -journal), which a read-write connection would
move into it. A damaged store is refused just as early: SQLite's ``quick_check`` runs before the first
write (a write could report success into pages that cannot be read back). The file runs in WAL
mode (readers never block the writer), waits for locks instead of failing (busy timeout), and
writes each ``add`` in one ``BEGIN IMMEDIATE`` transaction: a batch is stored whole or not at
all, even when the writing process is killed. ``add_chosen`` decides what to add from the records
stored, under that same lock, so two imports of one file at once store it once. Readers
(``readonly=True``: ``evidence list``, ``export``, ``score --evidence``) open the file so that it
cannot be written and change nothing, so a store on read-only media or without write permission
can still be read. The schema is versioned with ``PRAGMA user_version`` and migrated forward on
open; a store written by a newer stackdecide is refused, not damaged.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

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
APPLICATION_ID = 0x53444576  # "SDEv": PRAGMA application_id of every evidence store
T = TypeVar("T")


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
    (  # 3: a value's interval from within its run ([low, high] as JSON text)
        "ALTER TABLE records ADD COLUMN interval TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# The columns of the first schema: a store without our mark is one of ours, made before the mark,
# when its only table is ``records`` with these columns.
_FIRST_COLUMNS = frozenset({"id", "candidate", "metric", "value", "unit", "repeats", "spread",
                            "scenario", "hardware", "software", "config_sha256", "timestamp",
                            "tool_version", "source", "note"})
Owner = Literal["new", "ours", "foreign"]

_COLUMNS = ("candidate", "metric", "value", "unit", "repeats", "spread", "scenario", "hardware",
            "software", "config_sha256", "timestamp", "tool_version", "source", "note", "launch",
            "interval")
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


def _application_id(path: Path) -> int:
    """The ``PRAGMA application_id`` an SQLite file's header holds (bytes 68 to 71), read without
    opening the file as a database."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise EvidenceError(f"cannot read this file: {exc.strerror or exc}",
                            Location(str(path))) from None
    return int.from_bytes(header[68:72], "big", signed=True) if len(header) == 100 else 0


def _judge(db: sqlite3.Connection) -> tuple[Owner, str]:
    """Whose SQLite file ``db`` reads: ``new`` (no schema yet), ``ours`` (marked, or our one
    ``records`` table from before the mark) or ``foreign``, with why it is another application's.
    Raises ``sqlite3.DatabaseError`` where the file cannot be read."""
    marked = int(db.execute("PRAGMA application_id").fetchone()[0])
    if marked == APPLICATION_ID:
        return "ours", ""
    objects = db.execute("SELECT type, name FROM sqlite_master").fetchall()
    tables = sorted(str(name) for kind, name in objects if kind == "table")
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(records)")}
    if marked == 0 and not objects:
        return "new", ""
    if marked == 0 and tables == ["records"] and columns >= _FIRST_COLUMNS:
        return "ours", ""
    return "foreign", (f"application_id {marked:#010x}" if marked else
                       f"its tables: {', '.join(tables[:6]) or 'none'}")


def _pending_files(path: Path) -> dict[str, Path]:
    """The -wal and -journal files beside an SQLite file (where SQLite looks: beside the file a
    link points at) that hold something, by suffix: commits not yet in the file, or the pages
    a writer that crashed had overwritten."""
    target = path.resolve()
    pending = {}
    for suffix in ("-wal", "-journal"):
        side = target.with_name(target.name + suffix)
        try:
            info = side.stat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_size:
            pending[suffix] = side
    return pending


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


_PENDING_ATTEMPTS = 5  # looks at a store whose -journal writers keep committing away


class _PendingVanished(Exception):
    """A -wal or -journal beside the store went while it was copied."""


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
        self._intact = False  # quick_check passed on this file (checked before writing)
        self._empty = False  # a read-only view of a store no writer has set up yet
        existing = self._check_file(create and not readonly)
        if readonly:
            self._db = self._connect_readonly()
            return
        if existing:
            self._inspect()  # before the first write, the WAL switch included
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

    def _check_file(self, create: bool) -> bool:
        """Whether the store's file exists with content; refuses anything that is not an SQLite
        file, or that another application marked as its own."""
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
            return False
        except OSError as exc:
            raise EvidenceError(f"cannot reach the evidence store: {exc.strerror or exc}",
                                self._where) from None
        if stat.S_ISDIR(info.st_mode):
            raise EvidenceError("is a directory, not an evidence store", self._where)
        if not stat.S_ISREG(info.st_mode):
            raise EvidenceError("is not a regular file (a device, FIFO or socket); an evidence "
                                "store is an SQLite file", self._where)
        if not info.st_size:
            return False
        if not _is_sqlite(self.path):
            raise EvidenceError("not an evidence store (not an SQLite database)", self._where)
        marked = _application_id(self.path)
        if marked not in (0, APPLICATION_ID):
            raise self._foreign(f"application_id {marked:#010x}")
        return True

    def _inspect(self) -> None:
        """Refuse, before anything is written, a file that is not ours to write: another
        application's SQLite database, a store of a newer stackdecide, or a damaged store. Read
        through a connection that cannot write (``_connect_readonly``)."""
        db = self._connect_readonly()
        try:
            self._intact = self._empty or self._quick_check(db)
        finally:
            db.close()
        self._empty = False  # a writer sets the schema up before reading

    def _foreign(self, why: str) -> EvidenceError:
        return EvidenceError(f"not an evidence store: an SQLite database of another application "
                             f"({why}); stackdecide reads and writes only its own stores, so it "
                             "was left as it is: pass --evidence with another path", self._where)

    def _owner(self, db: sqlite3.Connection) -> Owner:
        """Whose SQLite file ``db`` reads (``_judge``); refuses another application's."""
        try:
            owner, why = _judge(db)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from None
        if owner == "foreign":
            raise self._foreign(why)
        return owner

    def _refuse_foreign(self) -> None:
        """Refuse another application's file before any connection that could write opens it: a
        read-write connection moves the commits of a hot -wal (or the pages of a hot -journal)
        into the file and removes them, even with ``query_only``. Judged from the main file
        alone (``immutable``: SQLite reads nothing else and makes no -wal or -shm); where that
        shows no schema yet, or cannot be read, while a -wal or -journal beside it holds
        something, from a private copy of the file with them. A -journal that a writer's commit
        removes while it is copied is looked at again: the file has moved on."""
        reason = ""
        for _ in range(_PENDING_ATTEMPTS):
            try:
                return self._refuse_foreign_once()
            except _PendingVanished as exc:
                reason = str(exc)
        raise EvidenceError(f"cannot read the evidence store: {reason}", self._where)

    def _refuse_foreign_once(self) -> None:
        if _application_id(self.path) == APPLICATION_ID:
            return  # marked as ours; another application's mark is refused by _check_file
        owner: Owner | None = None  # the main file cannot be read (mid-checkpoint, or damaged)
        why = ""
        try:
            with contextlib.closing(self._connect(f"{self._uri}?mode=ro&immutable=1")) as db:
                owner, why = _judge(db)
        except sqlite3.DatabaseError:
            pass
        if owner == "foreign":
            raise self._foreign(why)
        pending = _pending_files(self.path)
        if owner == "ours" or not pending:
            return  # nothing pending beside a file that cannot be read: opening it says why
        with tempfile.TemporaryDirectory(prefix="stackdecide-store-") as folder:
            copy = Path(folder) / "store.db"
            try:
                shutil.copyfile(self.path, copy)
                for suffix, side in pending.items():
                    shutil.copyfile(side, copy.with_name(copy.name + suffix))
            except FileNotFoundError as exc:  # a commit removed it meanwhile
                raise _PendingVanished(exc.strerror or str(exc)) from None
            except OSError as exc:
                raise EvidenceError(f"cannot read the evidence store: {exc.strerror or exc}",
                                    self._where) from None
            # read-write on the copy only: it takes in the copied -wal or rolls back the -journal
            with contextlib.closing(self._connect(f"file:{urllib.parse.quote(str(copy))}")) as db:
                self._owner(db)

    @property
    def _uri(self) -> str:
        return f"file:{urllib.parse.quote(str(self.path.absolute()))}"

    def _connect_readonly(self) -> sqlite3.Connection:
        """A connection that reads and never writes: no WAL switch, no migration.

        Opened once the file is known to be ours or new (``_refuse_foreign``), tried in order,
        each when the one before cannot open the store:

        1. read-write with ``query_only``: nothing can be written, and when it closes as the last
           connection SQLite removes the -wal and -shm files of a WAL store, as a writer does (a
           ``mode=ro`` connection cannot, and would leave them beside the store);
        2. ``mode=ro``: a store whose file or folder may not be written;
        3. ``mode=ro&immutable=1``: a WAL store in a folder that may not be written, its -shm file
           gone, which SQLite opens no other way. A writer with more rights could still be adding
           records: this read may then miss the newest, and writes nothing either way.
        """
        self._refuse_foreign()
        for query in ("mode=rw", "mode=ro", "mode=ro&immutable=1"):
            try:
                db = self._connect(f"{self._uri}?{query}")
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
        try:
            if version > SCHEMA_VERSION:
                raise EvidenceError(f"the store has schema version {version}, newer than this "
                                    f"stackdecide reads ({SCHEMA_VERSION}); upgrade stackdecide",
                                    self._where)
            self._empty = self._owner(db) == "new"  # created but never written: no records yet
        except BaseException:
            db.close()
            raise
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
        if self._version() == SCHEMA_VERSION and self._application_id() == APPLICATION_ID:
            return
        self._begin()
        try:
            version = self._version()  # again, now under the write lock: another process may have won
            if version > SCHEMA_VERSION:
                raise EvidenceError(f"the store has schema version {version}, newer than this "
                                    f"stackdecide reads ({SCHEMA_VERSION}); upgrade stackdecide",
                                    self._where)
            self._owner(self._db)  # the file may have been written since it was inspected
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error("cannot migrate the evidence store", exc) from None
        except BaseException:
            self._rollback()
            raise

    def _application_id(self) -> int:
        try:
            return int(self._db.execute("PRAGMA application_id").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise self._error("not an evidence store", exc) from None

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
        if not self._intact:
            self._intact = self._quick_check(self._db)

    def _quick_check(self, db: sqlite3.Connection) -> bool:
        """SQLite's ``quick_check`` of the file: True, or the error saying how to recover."""
        try:
            rows = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            more = f" (and {len(rows) - 1} more problems)" if len(rows) > 1 else ""
            raise self._damaged(f"{rows[0]}{more}")
        return True

    def _damaged(self, problem: str) -> EvidenceError:
        return EvidenceError(
            f"the evidence store is damaged, so nothing was written to it (SQLite's quick_check: "
            f"{problem}). Copy the file aside, then recover what can be read with "
            f"`sqlite3 {self.path} .recover | sqlite3 recovered.db`, or restore a backup; write "
            "new evidence to another store with --evidence", self._where)

    @property
    def schema_version(self) -> int:
        return self._version()

    # -- writing -----------------------------------------------------------------------------------
    def add(self, records: Iterable[EvidenceRecord]) -> list[int]:
        """Store records in one transaction and return their new ids, in order.

        The records are consumed inside the transaction: if anything fails (a bad item, a killed
        process) none of them is stored.
        """
        return self._transaction(lambda: self._insert(records))

    def add_chosen(self, choose: Callable[[EvidenceSet], tuple[T, Sequence[EvidenceRecord]]]
                   ) -> tuple[T, list[int]]:
        """Store what ``choose`` picks, given every stored record, in one transaction; returns its
        answer and the new ids. Reading and writing hold one write lock, so another process's
        records are either all seen or not yet stored: two imports of the same file at once
        store it once."""
        def pick_and_insert() -> tuple[T, list[int]]:
            answer, records = choose(self.load())
            return answer, self._insert(records)

        return self._transaction(pick_and_insert)

    def _transaction(self, body: Callable[[], T]) -> T:
        if self.readonly:
            raise EvidenceError("this store was opened read-only; open it without readonly=True "
                                "to add records", self._where)
        self._begin()
        try:
            self._check_intact()  # under the write lock: nothing changes between check and write
            result = body()
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise self._error("cannot store evidence", exc) from None
        except BaseException:
            self._rollback()
            raise
        return result

    def _insert(self, records: Iterable[EvidenceRecord]) -> list[int]:
        ids: list[int] = []
        for index, record in enumerate(records):
            if not isinstance(record, EvidenceRecord):
                raise EvidenceError(f"item {index} is a {type(record).__name__}, not an "
                                    "EvidenceRecord", self._where)
            cursor = self._db.execute(_INSERT, _row(record))
            ids.append(int(cursor.lastrowid or 0))
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
        """The columns to read; a store not yet migrated (one opened read-only) lacks the later
        ones: without a launch column its records name their launch by their source
        (``EvidenceRecord``), without an interval column they have none."""
        added = {"launch": 2, "interval": 3}  # the schema version that added each column
        version = self._version()
        return ", ".join(column if added.get(column, 1) <= version else "NULL"
                         for column in _COLUMNS)

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
            for key in ("scenario", "software", "hardware", "interval"):
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
            record.launch, json.dumps(list(record.interval)) if record.interval else None)
