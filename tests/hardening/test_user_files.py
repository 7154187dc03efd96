"""Finding 1: a file a person names is read only when it is a regular file, and never past its limit.

A decision or evidence file that is a link to /dev/zero used to be read until memory ran out (its
``st_size`` is 0, so the size check passed), and a FIFO blocked forever. The CLI tests run the
command in a child process with a memory limit and a timeout, so a regression fails the test
instead of hanging the suite or exhausting the machine.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from stackdecide._files import read_user_bytes, read_user_text
from stackdecide.errors import DecisionFileError, EvidenceError, StackdecideError

from .conftest import cli, decision_text

LIMITED_S = 60  # far above the moment these take; only a regression (a hang) reaches it
HEADROOM = 2 * 2**30  # memory the child may take beyond what the test process already has


def _in_child(args: list[str], cwd: str, answer: Connection) -> None:
    try:
        with open("/proc/self/status") as status:  # the address space already mapped, in kB
            mapped = next(int(line.split()[1]) * 1024 for line in status
                          if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (mapped + HEADROOM, mapped + HEADROOM))
    except OSError:  # no /proc: the timeout still stops a regression
        pass
    os.chdir(cwd)
    try:
        result = cli(args)
        answer.send((result.exit_code, result.stderr))
    except BaseException as exc:  # a traceback the user would have seen
        answer.send((-1, f"Traceback: {type(exc).__name__}: {exc}"))


def run_cli(*args: str, cwd: Path) -> tuple[int, str]:
    """``stackdecide ARGS`` in a forked child (no second import) that cannot take more than 2 GiB
    of new memory or a minute; returns its exit code and standard error."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_in_child, args=(list(args), str(cwd), send))
    child.start()
    try:
        if not receive.poll(LIMITED_S):
            raise AssertionError(f"stackdecide {' '.join(args)} gave no answer in {LIMITED_S} s")
        return receive.recv()
    finally:
        child.kill()
        child.join()


def _assert_refused(result: tuple[int, str], *expected: str) -> None:
    code, stderr = result
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    for text in expected:
        assert text in stderr, (text, stderr)


@pytest.fixture
def zero_link(tmp_path: Path) -> Path:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    return link


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def test_a_decision_file_linked_to_dev_zero_is_refused_not_read(zero_link: Path) -> None:
    _assert_refused(run_cli("score", zero_link.name, cwd=zero_link.parent),
                    "zero.yaml", "character device", "/dev/zero", "regular file")


def test_a_decision_file_that_is_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    _assert_refused(run_cli("score", fifo.name, cwd=fifo.parent), "pipe.yaml", "FIFO")


def test_an_evidence_file_linked_to_dev_zero_or_a_fifo_is_refused(zero_link: Path,
                                                                  fifo: Path) -> None:
    folder = zero_link.parent
    _assert_refused(run_cli("evidence", "import", zero_link.name, "--evidence", "e.db",
                            "--dry-run", cwd=folder), "zero.yaml", "character device")
    _assert_refused(run_cli("evidence", "import", fifo.name, "--evidence", "e.db", "--dry-run",
                            cwd=folder), "pipe.yaml", "FIFO")
    # score --evidence reads a store or an export file: a FIFO is neither, and must not block
    (folder / "d.yaml").write_text(decision_text())
    _assert_refused(run_cli("score", "d.yaml", "--evidence", fifo.name, cwd=folder), "FIFO")


def test_a_directory_is_refused_as_decision_and_as_evidence(tmp_path: Path) -> None:
    with pytest.raises(DecisionFileError, match="is a directory, not a decision file"):
        read_user_text(tmp_path, kind="decision file", content="YAML", limit=10,
                       error=DecisionFileError)
    with pytest.raises(EvidenceError, match="is a directory, not an evidence file"):
        read_user_text(tmp_path, kind="evidence file", content="JSON", limit=10,
                       error=EvidenceError)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_the_limit_holds_while_reading_when_st_size_says_zero() -> None:
    """Files under /proc are regular files whose st_size is 0 however much they hold: only a
    limit applied while reading catches them."""
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    with pytest.raises(StackdecideError, match="more than 16 bytes"):
        read_user_bytes(status, kind="decision file", limit=16)
    assert len(read_user_bytes(status, kind="decision file", limit=1 << 20)) > 16


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_bytes(b"x" * 100)
    assert read_user_bytes(path, kind="decision file", limit=100) == b"x" * 100
    path.write_bytes(b"x" * 101)
    with pytest.raises(StackdecideError, match="file is 101 bytes; decision files are at most 100"):
        read_user_bytes(path, kind="decision file", limit=100)


def test_unopenable_paths_are_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DecisionFileError, match="no such file"):
        read_user_text(tmp_path / "missing.yaml", kind="decision file", content="YAML",
                       limit=10, error=DecisionFileError)
    with pytest.raises(DecisionFileError, match="cannot open this decision file"):
        read_user_text(Path("nul\x00byte.yaml"), kind="decision file", content="YAML",
                       limit=10, error=DecisionFileError)
    with pytest.raises(DecisionFileError, match="cannot open this decision file"):
        read_user_text(tmp_path / ("x" * 5000), kind="decision file", content="YAML",
                       limit=10, error=DecisionFileError)
