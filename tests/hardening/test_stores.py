"""Finding 3: a damaged store is never written to, and a store that cannot be written can be read.

A write into a store with corrupt pages used to report success while its records could not be
read back; a read-only store (file and folder) could not even be listed, because every opening
switched the file to WAL mode and migrated it. Readers now open with ``mode=ro`` and writers run
``PRAGMA quick_check`` before their first write.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackdecide.errors import EvidenceError
from stackdecide.evidence.records import EvidenceRecord
from stackdecide.evidence.store import EvidenceStore, load_evidence

from .conftest import cli, decision_text, refused


def _records(count: int) -> list[EvidenceRecord]:
    return [EvidenceRecord(candidate="a", metric="decode_tok_s", value=float(i + 1),
                           note="x" * 400) for i in range(count)]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store of 300 records (about 40 pages), closed cleanly (no -wal or -shm file left)."""
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as opened:
        opened.add(_records(300))
    return path


def _damage(path: Path) -> None:
    """Overwrite pages in the middle of the file, as a failing disk or a bad copy would."""
    page = 4096
    with path.open("r+b") as handle:
        handle.seek(page * 8)
        handle.write(bytes(range(256)) * (page * 4 // 256))


def test_a_damaged_store_is_refused_and_left_as_it_was(store: Path) -> None:
    _damage(store)
    before = store.read_bytes()
    message = refused(["evidence", "add", "--evidence", str(store), "--candidate", "a",
                       "--metric", "decode_tok_s", "--value", "5"],
                      str(store), "damaged", "nothing was written", ".recover")
    assert "quick_check" in message
    assert store.read_bytes() == before
    with pytest.raises(EvidenceError, match="damaged"), EvidenceStore(store) as opened:
        opened.add(_records(1))


def test_an_intact_store_is_checked_once_per_connection(store: Path) -> None:
    with EvidenceStore(store) as opened:
        opened.add(_records(1))
        assert opened._intact
        opened.add(_records(1))
        assert opened.count() == 302


@pytest.fixture
def rollback_journal_store(store: Path) -> Path:
    """The store switched to a rollback journal: any writer would switch it back to WAL."""
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    db.close()
    return store


def test_reading_writes_nothing(rollback_journal_store: Path) -> None:
    store = rollback_journal_store
    before = store.read_bytes()
    (store.parent / "d.yaml").write_text(decision_text())
    for args in (["evidence", "list", "--evidence", str(store)],
                 ["evidence", "export", "--evidence", str(store)],
                 ["score", str(store.parent / "d.yaml"), "--evidence", str(store)]):
        result = cli(args)
        assert result.exit_code == 0, result.stderr
    assert len(load_evidence(store)) == 300
    assert store.read_bytes() == before  # no WAL switch, no migration
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith("evidence.db")) == \
        ["evidence.db"]


def test_reading_a_wal_store_leaves_nothing_beside_it(store: Path) -> None:
    """A read-only connection cannot remove the -wal and -shm files it makes: where the folder
    may be written, the reader connects read-write with ``query_only`` so that SQLite does."""
    before = store.read_bytes()
    assert cli(["evidence", "list", "--evidence", str(store)]).exit_code == 0
    assert len(load_evidence(store)) == 300
    assert [p.name for p in store.parent.iterdir()] == ["evidence.db"]
    assert store.read_bytes() == before


def test_an_empty_store_file_reads_as_no_records(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    path.touch()
    with EvidenceStore(path, create=False, readonly=True) as opened:
        assert len(opened.load()) == 0 and opened.count() == 0
    assert path.stat().st_size == 0


def test_a_store_opened_read_only_refuses_to_write(store: Path) -> None:
    with EvidenceStore(store, readonly=True) as opened, \
            pytest.raises(EvidenceError, match="opened read-only"):
        opened.add(_records(1))


@pytest.fixture
def immutable_folder(store: Path) -> Iterator[Path]:
    """The store's folder and file made immutable (``chattr +i``): not even root can write them,
    so this stands for a read-only store whoever runs the tests."""
    folder = store.parent / "readonly"
    folder.mkdir()
    shutil.move(store, folder / store.name)
    targets = [folder / store.name, folder]
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", *map(str, targets)], capture_output=True).returncode != 0:
        pytest.skip("needs chattr +i (root on a file system with immutable files)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", *map(str, targets)], check=True)


def test_a_read_only_store_can_be_listed_and_scored(immutable_folder: Path,
                                                    tmp_path: Path) -> None:
    store = immutable_folder / "evidence.db"
    result = cli(["evidence", "list", "--evidence", str(store)])
    assert result.exit_code == 0, result.stderr
    assert "300 records" in result.stderr
    (tmp_path / "d.yaml").write_text(decision_text())
    result = cli(["score", str(tmp_path / "d.yaml"), "--evidence", str(store)])
    assert result.exit_code == 0, result.stderr
    refused(["evidence", "add", "--evidence", str(store), "--candidate", "a", "--metric",
             "decode_tok_s", "--value", "5"], str(store), "permissions")


def test_a_store_path_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "store.db"
    os.mkfifo(fifo)
    refused(["evidence", "list", "--evidence", str(fifo)], "not a regular file")
    refused(["evidence", "add", "--evidence", str(fifo), "--candidate", "a", "--metric",
             "decode_tok_s", "--value", "5"], "not a regular file")


def test_records_stored_before_domains_were_checked_are_named_with_a_way_out(store: Path) -> None:
    db = sqlite3.connect(store)
    db.execute("UPDATE records SET metric = 'ttft_ms_p50', unit = 'ms', value = -5 WHERE id = 7")
    db.commit()
    db.close()
    message = refused(["evidence", "list", "--evidence", str(store)], "records[id=7]",
                      "-5 ms is not a possible ttft_ms_p50")
    assert "DELETE FROM records WHERE id = 7" in message
