"""Errors that reach users: each says where (file:line:col and field path) and what to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a decision file; any part may be unknown."""

    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    field: str | None = None  # e.g. "candidates[1].scores.fp8_performance"

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where} {self.field}" if self.field else where


class StackdecideError(Exception):
    """Base of every error the library raises on purpose; the CLI prints it without a traceback."""

    exit_code = 2

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class DecisionFileError(StackdecideError):
    """The decision file cannot be read or is not a valid decision."""


class EvidenceError(StackdecideError):
    """An evidence file or store cannot be read, or a record is invalid."""


class EngineError(StackdecideError):
    """The engine cannot be rendered, launched or reached."""

    exit_code = 1
