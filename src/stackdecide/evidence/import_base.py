"""What every reader of evidence files shares: the context a file cannot say about itself
(``RunContext``), what one file gave (``ImportResult``), and the entry each reader has in the
registry of ``evidence.importers`` (``Importer``: how to recognise its files, how to read them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import EvidenceRecord, HardwareInfo, ScenarioValue

MAX_FILE_BYTES = 512 * 1024 * 1024  # detailed vLLM results hold every generated text
MAX_RECORDS = 50_000  # records of one file: about 1.7 kB each once read (the parse has its own)

FileKind = Literal["stackdecide", "stackdecide-bench", "vllm-bench-serve", "vllm-bench-sweep",
                   "guidellm", "aiperf"]
# The JSON objects of one file, each with where it starts (one per line for JSON lines).
Documents = Sequence[tuple[Any, Location]]


@dataclass(frozen=True)
class ImportResult:
    """Records read from one file, what kind of file it was, and what was skipped and why."""

    file: str
    kind: FileKind
    records: tuple[EvidenceRecord, ...]
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RunContext:
    """What a benchmark's result file cannot say about itself, given by whoever imports it."""

    candidate: str | None = None
    hardware: HardwareInfo | None = None
    software: Mapping[str, str] = field(default_factory=dict)
    scenario: Mapping[str, ScenarioValue] = field(default_factory=dict)
    config_sha256: str | None = None

    @property
    def given(self) -> list[str]:
        """Names of the options set, for messages."""
        names = {"candidate": self.candidate, "hardware": self.hardware, "software": self.software,
                 "scenario": self.scenario, "config_sha256": self.config_sha256}
        return [name for name, value in names.items() if value]


@dataclass(frozen=True)
class Importer:
    """One kind of JSON evidence file: ``detect`` tells its objects from others', ``read`` makes
    records of them (errors name the file, the line and the field)."""

    kind: FileKind
    label: str  # how messages name such a file: "vllm bench serve result"
    detect: Callable[[Mapping[str, Any]], bool]
    read: Callable[[Documents, str, RunContext], ImportResult]
    lines: bool = False  # may also come as JSON lines, one object per line


@dataclass(frozen=True)
class FolderImporter:
    """One kind of evidence folder (a tool's experiment with one result file per run)."""

    kind: FileKind
    label: str
    detect: Callable[[Path], bool]
    read: Callable[[Path, RunContext], ImportResult]


def check_record_count(count: int, where: Location) -> None:
    """Refuse a file once reading it has made more than ``MAX_RECORDS`` records, at the place
    that passed the limit: records are built one run at a time, so memory stays bounded."""
    if count > MAX_RECORDS:
        raise EvidenceError(f"makes more than {MAX_RECORDS:,} evidence records; import it in parts "
                            "(one file per run, or evidence export --candidate/--metric)", where)
