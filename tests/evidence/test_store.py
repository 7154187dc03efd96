"""The SQLite store: round trip, schema versions, concurrent writers, and killed writers."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stackdecide.errors import EvidenceError
from stackdecide.evidence.importers import read_evidence_file
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet
from stackdecide.evidence.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    EvidenceStore,
    default_evidence_path,
    load_evidence,
    resolve_evidence_path,
)

from .conftest import make_record
from .test_records import full_record

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _without_id(record: EvidenceRecord) -> EvidenceRecord:
    return record.model_copy(update={"id": None})


def test_default_path_is_beside_the_decision_file(tmp_path: Path) -> None:
    decision = tmp_path / "criteria" / "rtx4090.yaml"
    assert default_evidence_path(decision) == tmp_path / "criteria" / ".stackdecide" / "evidence.db"
    assert resolve_evidence_path("x.db", decision) == Path("x.db")
    assert resolve_evidence_path(None, decision) == default_evidence_path(decision)
    with pytest.raises(EvidenceError, match="which evidence store"):
        resolve_evidence_path(None, None, base=tmp_path)


def test_add_and_load_round_trip(tmp_path: Path) -> None:
    path = default_evidence_path(tmp_path / "d.yaml")
    records = [full_record(), make_record("a", value=1 / 3),
               make_record("b", "launch_ok", 0, note="CUDA error: no kernel image", hardware=None,
                           software={})]
    with EvidenceStore(path) as store:
        ids = store.add(records)
        assert ids == [1, 2, 3]
        loaded = store.load()
        assert store.schema_version == SCHEMA_VERSION
    assert [r.id for r in loaded] == ids
    assert [_without_id(r) for r in loaded] == records  # every field, floats bit for bit
    again = load_evidence(path)
    assert again == loaded
    with EvidenceStore(path) as store:
        assert [r.id for r in store.load(candidate="a")] == [2]
        assert [r.id for r in store.load(metric="launch_ok")] == [3]
        assert [r.id for r in store.load(ids=[1, 3])] == [1, 3]
        assert store.count() == 3 and store.count(candidate="b") == 1
        with pytest.raises(EvidenceError, match="unknown metric"):
            store.load(metric="decode")


def test_store_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "e.db", busy_timeout_s=7.5) as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 7500


def test_export_is_importable_again(tmp_path: Path) -> None:
    records = [full_record(), make_record("a", value=2.0)]
    with EvidenceStore(tmp_path / "e.db") as store:
        store.add(records)
        for fmt in ("json", "jsonl"):
            exported = tmp_path / f"out.{fmt}"
            exported.write_text(store.export(fmt))
            back = read_evidence_file(exported)
            assert back.kind == "stackdecide"
            assert list(back.records) == list(store.load())
        csv_text = store.export("csv", candidate="a")
        assert len(csv_text.splitlines()) == 2
        with pytest.raises(EvidenceError, match="unknown export format"):
            store.export("xml")  # type: ignore[arg-type]


def test_a_failing_add_stores_nothing(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "e.db") as store:
        store.add([make_record(value=1.0)])
        with pytest.raises(EvidenceError, match="item 2 is a dict, not an EvidenceRecord"):
            store.add([make_record(value=2.0), make_record(value=3.0), {"value": 4.0}])
        assert [r.value for r in store.load()] == [1.0]


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such evidence store"):
        EvidenceStore(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(EvidenceError, match="no such evidence store or file"):
        load_evidence(tmp_path / "none.db")
    text = tmp_path / "notes.db"
    text.write_text("these are notes, not a database\n")
    with pytest.raises(EvidenceError, match=r"notes.db: not an evidence store \(not an SQLite"):
        EvidenceStore(text)
    with pytest.raises(EvidenceError, match="is a directory"):
        EvidenceStore(tmp_path)


def test_a_store_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EvidenceStore(path) as store:
        store.add([make_record()])
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(EvidenceError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        EvidenceStore(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == 1
    db.close()


def test_an_empty_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    sqlite3.connect(path).close()  # a zero-byte file, as sqlite leaves it
    with EvidenceStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.add([make_record()]) == [1]


# -- several processes at once -------------------------------------------------------------------
WRITERS = 8
RECORDS_PER_WRITER = 1000
BATCH = 10


def _writer(path: str, writer: int, start: Any, results: Any) -> None:
    records = [make_record(f"w{writer}", value=float(i), scenario={"writer": writer, "seq": i},
                           source=f"writer-{writer}") for i in range(RECORDS_PER_WRITER)]
    start.wait()
    ids: list[int] = []
    with EvidenceStore(path) as store:  # every writer also races to create the file
        for offset in range(0, RECORDS_PER_WRITER, BATCH):
            ids.extend(store.add(records[offset:offset + BATCH]))
    results.put((writer, ids))


def test_eight_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "evidence.db")
    # Separate processes, each with its own SQLite connection; fork keeps start-up cheap and the
    # parent holds no connection to inherit.
    context = multiprocessing.get_context("fork")
    start, queue = context.Event(), context.Queue()
    writers = [context.Process(target=_writer, args=(path, w, start, queue))
               for w in range(WRITERS)]
    for process in writers:
        process.start()
    start.set()
    results = dict(queue.get(timeout=300) for _ in writers)
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    all_ids = [i for ids in results.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == WRITERS * RECORDS_PER_WRITER
    with EvidenceStore(path) as store:
        assert store.integrity_check() == "ok"
        loaded = store.load()
    assert sorted(r.id for r in loaded) == sorted(all_ids)
    seen = {(r.scenario["writer"], r.scenario["seq"]) for r in loaded}
    assert seen == {(w, i) for w in range(WRITERS) for i in range(RECORDS_PER_WRITER)}
    for writer, ids in results.items():
        assert all(r.candidate == f"w{writer}" for r in loaded if r.id in set(ids))


def _importer(path: str, start: Any, results: Any) -> None:
    """Store one record unless its source is stored already, deciding under the write lock."""
    def unless_stored(stored: EvidenceSet) -> tuple[bool, list[EvidenceRecord]]:
        new = not any(r.source == "run.json" for r in stored)
        return new, [make_record(source="run.json")] if new else []

    start.wait()
    with EvidenceStore(path) as store:
        results.put(store.add_chosen(unless_stored))


def test_two_processes_choosing_at_once_store_once(tmp_path: Path) -> None:
    path = str(tmp_path / "evidence.db")
    context = multiprocessing.get_context("fork")
    start, queue = context.Event(), context.Queue()
    importers = [context.Process(target=_importer, args=(path, start, queue)) for _ in range(2)]
    for process in importers:
        process.start()
    start.set()
    outcomes = sorted(queue.get(timeout=120) for _ in importers)
    for process in importers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert outcomes == [(False, []), (True, [1])]
    assert len(load_evidence(path)) == 1


def test_what_is_chosen_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    with EvidenceStore(tmp_path / "e.db") as store:
        store.add([make_record(value=1.0)])

        def refuse(stored: EvidenceSet) -> tuple[None, list[EvidenceRecord]]:
            raise EvidenceError("no")

        with pytest.raises(EvidenceError, match="no"):
            store.add_chosen(refuse)
        answer, ids = store.add_chosen(lambda stored: (len(stored), [make_record(value=2.0)]))
        assert (answer, ids) == (1, [2])
        assert [r.value for r in store.load()] == [1.0, 2.0]


def test_a_new_store_is_marked_and_an_unmarked_one_of_ours_is_marked_on_writing(
        tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EvidenceStore(path) as store:
        store.add([make_record()])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.execute("PRAGMA application_id = 0")  # as stores were before the mark
    db.commit()
    db.close()
    assert len(load_evidence(path)) == 1  # read as it is
    with EvidenceStore(path) as store:
        assert len(store.load()) == 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


# -- a writer killed mid-transaction ---------------------------------------------------------------
_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from stackdecide.evidence.records import EvidenceRecord
    from stackdecide.evidence.store import EvidenceStore

    path, marker = sys.argv[1], Path(sys.argv[2])
    def record(i):
        return EvidenceRecord(candidate="k", metric="decode_tok_s", value=float(i))
    with EvidenceStore(path) as store:
        for batch in range(5):
            store.add([record(batch * 100 + i) for i in range(100)])
        def slow():
            for i in range(100_000):
                yield record(10_000 + i)
                if i == 5_000:  # well inside the open transaction, pages already written
                    marker.write_text("inside")
                    time.sleep(600)
        store.add(slow())
""")


def test_a_writer_killed_mid_transaction_leaves_a_readable_store(tmp_path: Path) -> None:
    path, marker = tmp_path / "e.db", tmp_path / "inside"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the writer exited before its transaction"
            assert time.monotonic() < deadline, "the writer never reached its transaction"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with EvidenceStore(path) as store:
        assert store.integrity_check() == "ok"
        evidence = store.load()
        assert len(evidence) == 500  # the five committed batches, nothing of the killed one
        assert sorted(r.value for r in evidence) == [float(v) for v in range(500)]
        assert store.add([make_record("k", value=1.0)]) == [501]
    assert isinstance(load_evidence(path), EvidenceSet)


def test_load_evidence_reads_our_exports_and_points_vllm_results_to_import(tmp_path: Path) -> None:
    from .test_importers import vllm_bench_serve_result

    exported = tmp_path / "evidence.json"
    records = [make_record("a", value=5.0)]
    exported.write_text(EvidenceSet.of(records).to_json())
    assert list(load_evidence(exported)) == records
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(vllm_bench_serve_result()))
    with pytest.raises(EvidenceError, match="names no candidate; import it with 'stackdecide "
                                            "evidence import FILE --candidate ID'"):
        load_evidence(bench)


def test_a_store_before_intervals_is_read_and_migrated(tmp_path: Path) -> None:
    """Schema 3 added ``interval``: a schema-2 store reads as records without one, read-only as
    it is, and takes records with one once migrated."""
    path = tmp_path / "e.db"
    db = sqlite3.connect(path)
    for step in MIGRATIONS[:2]:
        for statement in step:
            db.execute(statement)
    db.execute("INSERT INTO records (candidate, metric, value, unit, repeats, scenario, software, "
               "timestamp, tool_version, launch) VALUES ('a', 'kl_div_mean', 0.5, 'nats', 1, "
               "'{}', '{}', '2025-01-01T00:00:00+00:00', '0.1.0', 'run-1')")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with EvidenceStore(path, readonly=True) as store:
        (old,) = store.load()
        assert old.interval is None and old.launch == "run-1" and store.schema_version == 2
    with EvidenceStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.add([make_record("b", "kl_div_mean", 0.25, interval=(0.2, 0.3), hardware=None)])
        assert [r.interval for r in store.load()] == [None, (0.2, 0.3)]


def test_an_interval_that_misses_its_value_is_refused() -> None:
    with pytest.raises(EvidenceError, match=r"interval \[0.3, 0.4\] does not hold the value 0.25"):
        make_record("b", "kl_div_mean", 0.25, interval=(0.3, 0.4))


# -- another application's file, as it crashed -----------------------------------------------------
def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _crashed_copy(live: Path, crashed: Path, suffixes: Sequence[str]) -> Path:
    """The files of ``live`` copied into ``crashed`` while its connection is still open: the
    database as its application left it when it crashed, what it had pending beside it."""
    crashed.mkdir()
    for suffix in ("", *suffixes):
        shutil.copyfile(f"{live}{suffix}", crashed / f"app.sqlite{suffix}")
    return crashed / "app.sqlite"


@pytest.mark.parametrize("pending", [("-wal",), ("-wal", "-shm"), ("-journal",)])
def test_a_foreign_database_with_pending_writes_is_refused_untouched(
        tmp_path: Path, pending: tuple[str, ...]) -> None:
    """A read-write connection moves a hot -wal's commits into the file, or rolls a hot -journal
    back into it, and removes them: even a reader's, even with ``query_only``. Another
    application's file is judged before any such connection, in every mode of the store."""
    live = sqlite3.connect(tmp_path / "live.sqlite", isolation_level=None)
    if pending[0] == "-wal":  # every commit still in the -wal: the file itself has no schema yet
        live.execute("PRAGMA journal_mode = wal")
        live.execute("PRAGMA wal_autocheckpoint = 0")
        live.execute("CREATE TABLE items (x)")
        live.execute("INSERT INTO items VALUES (1)")
    else:  # a transaction under way, its changed pages spilled into the file
        live.execute("PRAGMA cache_size = 1")
        live.execute("CREATE TABLE items (x)")
        live.execute("INSERT INTO items VALUES (1)")
        live.execute("BEGIN")
        live.executemany("INSERT INTO items VALUES (?)", [("x" * 500,)] * 200)
    path = _crashed_copy(tmp_path / "live.sqlite", tmp_path / "crashed", pending)
    live.close()
    before = _files(path.parent)
    for readonly in (True, False):
        with pytest.raises(EvidenceError, match=r"another application \(its tables: items\)"):
            EvidenceStore(path, readonly=readonly)
        with pytest.raises(EvidenceError, match="another application"):
            load_evidence(path)
        assert _files(path.parent) == before


def test_a_new_store_with_every_commit_still_in_its_wal_is_read(tmp_path: Path) -> None:
    """Our store as its first writer left it when killed: the mark, the schema and the records
    are only in the -wal; judged from a copy, then read as ours."""
    with EvidenceStore(tmp_path / "live.sqlite") as store:
        store.add([make_record(value=1.0), make_record(value=2.0)])
        path = _crashed_copy(tmp_path / "live.sqlite", tmp_path / "crashed", ("-wal",))
    with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as main_file_alone:
        assert main_file_alone.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    with EvidenceStore(path, readonly=True) as store:
        assert [record.value for record in store.load()] == [1.0, 2.0]
    with EvidenceStore(path) as store:
        assert store.add([make_record(value=3.0)]) == [3]


def test_a_journal_committed_away_while_it_is_copied_is_looked_at_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process creating the store leaves an empty file and a -journal; its commit can
    remove the journal between listing it and copying it (seen with 8 writers on a loaded
    machine). The open looks again instead of failing with 'No such file or directory'."""
    from stackdecide.evidence import store as store_module

    path = tmp_path / "evidence.db"
    with contextlib.closing(sqlite3.connect(path)) as db:  # a header, no schema yet: new
        db.execute("CREATE TABLE t (x)")
        db.execute("DROP TABLE t")
        db.commit()
    journal = tmp_path / "evidence.db-journal"
    journal.write_bytes(b"\0" * 512)
    copy = shutil.copyfile

    def commit_meanwhile(source: Any, target: Any) -> Any:
        if str(source).endswith("-journal"):
            journal.unlink()
            raise FileNotFoundError(2, "No such file or directory", str(source))
        return copy(source, target)

    monkeypatch.setattr(store_module.shutil, "copyfile", commit_meanwhile)
    with EvidenceStore(path) as store:
        store.add([make_record("a", value=1.0)])
    with EvidenceStore(path) as store:
        assert store.count() == 1
