"""Files the package reads from users and writes for itself: one way to do each.

``read_user_text`` is the single entry point for reading a file a person named (decision files,
evidence files): every check on such a file (exists, not a directory, size limit, text) lives here,
so hardening it once hardens every reader. ``write_json_atomic`` is the one way state, run and
cache files are written. Base layer: imports only the standard library and ``errors``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackdecide.errors import Location, StackdecideError


def read_user_text(path: Path, *, kind: str, content: str, limit: int,
                   error: type[StackdecideError] = StackdecideError) -> str:
    """A user's file as UTF-8 text, or ``error`` saying clearly why it cannot be one.

    ``kind`` names the file in messages ("decision file"), ``content`` what text it should hold
    ("YAML"), ``limit`` is the largest size in bytes. Missing files, directories, anything that is
    not a regular file (a device such as /dev/zero, a FIFO, a socket, also behind a symlink),
    files over the limit, binary files (NUL bytes) and text that is not UTF-8 are refused, each
    with the file (and, for bad bytes, the line) in the error's location.
    """
    raw = read_user_bytes(path, kind=kind, limit=limit, error=error)
    shown = str(path)
    if b"\x00" in raw:
        raise error(f"binary file (contains NUL bytes), expected {content} text", Location(shown))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"not UTF-8 text (byte {exc.start})", Location(shown, line)) from None


def read_user_bytes(path: Path, *, kind: str, limit: int,
                    error: type[StackdecideError] = StackdecideError) -> bytes:
    """At most ``limit`` bytes of a regular file a person named; anything else is ``error``.

    ``st_size`` cannot be trusted before reading: it is 0 for /dev/zero and for files under
    /proc, and a file may grow while it is read. So the type is checked on the path (without
    opening it: opening some devices has effects), checked again on the opened descriptor (the
    path may have been swapped in between), and the read itself stops after ``limit + 1`` bytes.
    The file is opened non-blocking: opening a FIFO for reading otherwise waits for a writer.
    """
    where = Location(str(path))
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    try:
        _refuse_special(os.stat(path).st_mode, path, kind, article, error)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOCTTY | _CLOEXEC)
    except FileNotFoundError:
        raise error("no such file", where) from None
    except PermissionError:
        raise error(f"permission denied: this {kind} cannot be read; check its permissions",
                    where) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"cannot open this {kind}: {reason}", where) from None
    try:
        _refuse_special(os.fstat(descriptor).st_mode, path, kind, article, error)
        size = os.fstat(descriptor).st_size
        if size > limit:
            raise error(f"file is {size} bytes; {kind}s are at most {limit}", where)
        chunks: list[bytes] = []
        remaining = limit + 1  # one byte past the limit tells "too big" from "exactly the limit"
        while remaining > 0:
            try:
                chunk = os.read(descriptor, min(remaining, _CHUNK))
            except BlockingIOError:  # a regular file never blocks; be safe if one claims to
                raise error(f"this {kind} cannot be read without waiting", where) from None
            except OSError as exc:
                raise error(f"cannot read this {kind}: {exc.strerror or exc}", where) from None
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(descriptor)
    raw = b"".join(chunks)
    if len(raw) > limit:
        raise error(f"file holds more than {limit} bytes; {kind}s are at most {limit}", where)
    return raw


_CHUNK = 1 << 20
_NOCTTY = getattr(os, "O_NOCTTY", 0)  # a terminal device must not become our controlling tty
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SPECIAL_KINDS = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                  (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"))


def _refuse_special(mode: int, path: Path, kind: str, article: str,
                    error: type[StackdecideError]) -> None:
    """Raise ``error`` unless ``mode`` is a regular file's."""
    if stat.S_ISREG(mode):
        return
    where = Location(str(path))
    if stat.S_ISDIR(mode):
        raise error(f"is a directory, not {article} {kind}", where)
    what = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")
    target = ""
    if os.path.islink(path):
        target = f" (a link to {os.path.realpath(path)})"
    raise error(f"is a {what}{target}, not a regular file; {article} {kind} must be a regular file",
                where)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = None,
                      default: Callable[[Any], Any] | None = None) -> None:
    """Write ``data`` as JSON so that a reader sees the old file or the new one, never half.

    The text goes to a temporary file in the same folder (a rename is atomic only within one
    file system), which then replaces ``path``; the temporary file is removed if anything fails.
    """
    text = json.dumps(data, indent=indent, default=default) + "\n"
    # pid and a random part: two processes, or two threads of one, never share a temporary file
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
