"""Whether imported evidence is what it claims: the same file twice, or another model's results.

* A file imported twice would count its measurements twice (more records, a tighter interval, a
  surer winner). Each record imported from a ``vllm bench serve`` result carries the file's content
  hash at the end of its ``source`` (``sha256:<first 16 hex digits>``), so a second import of the
  same bytes, under any name, is recognised and skipped (``imported_ids``). stackdecide's own
  exports keep their records exactly as stored (a round trip must not change them): one whose
  records are all in the store already is recognised by the records themselves
  (``stored_copies``).
* ``vllm bench serve`` results name the model they were run against (``model_id``, kept as the
  scenario's ``model``). A result of a model other than the candidate's (its ``model.id``, its
  engine's ``model`` or ``served_model_name``) measures something else: ``model_mismatches`` says
  so before it is stored.

``plan_imports`` applies the first rule to the files of one import against the records stored;
the store runs it under its write lock (``EvidenceStore.add_chosen``), so that two imports of the
same file at once cannot both find it new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stackdecide._files import read_user_bytes
from stackdecide.errors import EvidenceError
from stackdecide.evidence.import_base import ImportResult
from stackdecide.evidence.records import EvidenceRecord

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

HASH_TAG = "sha256:"
HASH_DIGITS = 16  # 64 bits: enough to tell files apart, short enough to read in a source
MAX_HASHED_BYTES = 512 * 1024 * 1024  # larger than any evidence file the importers accept


def file_digest(path: str | Path) -> str:
    """The tag of a file's content: ``sha256:`` and the first 16 hex digits of its hash; of a
    folder (a ``vllm bench sweep`` experiment): of its ``run=N.json`` files' names and contents."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for run in sorted(path.rglob("run=*.json")):
            if run.name.endswith(".failure.json"):
                continue
            digest.update(str(run.relative_to(path)).encode() + b"\0")
            digest.update(read_user_bytes(run, kind="evidence file", limit=MAX_HASHED_BYTES,
                                          error=EvidenceError))
        return HASH_TAG + digest.hexdigest()[:HASH_DIGITS]
    data = read_user_bytes(path, kind="evidence file", limit=MAX_HASHED_BYTES,
                           error=EvidenceError)
    return HASH_TAG + hashlib.sha256(data).hexdigest()[:HASH_DIGITS]


def tag_records(records: Iterable[EvidenceRecord], digest: str) -> list[EvidenceRecord]:
    """The records with the file's content tag at the end of their ``source``."""
    return [record.model_copy(update={"source": f"{record.source or 'import'} {digest}"})
            for record in records]


def imported_ids(stored: Iterable[EvidenceRecord], digest: str) -> list[int]:
    """Ids of stored records imported from a file with this content tag."""
    return sorted(r.id for r in stored
                  if r.id is not None and r.source and r.source.endswith(f" {digest}"))


def stored_copies(stored: Iterable[EvidenceRecord], records: Sequence[EvidenceRecord]) -> list[int]:
    """Ids of stored records equal to ``records`` in everything but the id, when every one of
    ``records`` has such a copy (else none: a file that adds something is not a re-import)."""
    by_content: dict[str, int] = {}
    for record in stored:
        if record.id is not None:
            by_content.setdefault(record.model_dump_json(exclude={"id"}), record.id)
    ids = [by_content.get(record.model_dump_json(exclude={"id"})) for record in records]
    return sorted(i for i in ids if i is not None) if records and None not in ids else []


@dataclass(frozen=True)
class PlannedFile:
    """What importing one file does: store its records, or skip it as content imported before
    (``stored_before``: the ids it made then) or earlier in the same import."""

    result: ImportResult
    digest: str
    stored_before: tuple[int, ...] = ()
    repeated_here: bool = False

    @property
    def skipped(self) -> bool:
        return bool(self.stored_before) or self.repeated_here


def plan_imports(stored: Iterable[EvidenceRecord], files: Sequence[tuple[ImportResult, str]]
                 ) -> tuple[list[PlannedFile], list[EvidenceRecord]]:
    """For each ``(result, content digest)`` of one import, whether it repeats what ``stored``
    holds or a file before it; and the records to store, tagged with their file's digest.
    stackdecide's own exports keep their records exactly as stored, so they are compared by
    their records instead."""
    stored = list(stored)
    planned: list[PlannedFile] = []
    records: list[EvidenceRecord] = []
    taken: set[str] = set()
    for result, digest in files:
        ours = result.kind == "stackdecide"
        before = stored_copies(stored, result.records) if ours else imported_ids(stored, digest)
        planned.append(PlannedFile(result, digest, tuple(before), not before and digest in taken))
        if before or digest in taken:
            continue
        taken.add(digest)
        records += result.records if ours else tag_records(result.records, digest)
    return planned, records


def _names(decision: DecisionMatrix, candidate_id: str) -> set[str]:
    candidate = decision.candidate(candidate_id)
    spec = decision.model_of(candidate_id)
    served = candidate.engine.get("served_model_name")
    names = [spec.id if spec else None, candidate.engine.get("model"),
             *(served if isinstance(served, list) else [served])]
    return {str(name).strip().lower() for name in names if name}


def model_mismatches(decision: DecisionMatrix, records: Sequence[EvidenceRecord]) -> list[str]:
    """One warning per candidate and served model that is not the candidate's model."""
    seen: dict[tuple[str, str], str] = {}
    for record in records:
        served = record.scenario.get("model")
        if not isinstance(served, str) or record.candidate not in decision.candidate_ids:
            continue
        names = _names(decision, record.candidate)
        if names and served.strip().lower() not in names and \
                (record.candidate, served) not in seen:
            seen[(record.candidate, served)] = (
                f"{record.source or 'a record'}: the server ran model '{served}', but candidate "
                f"'{record.candidate}' serves {', '.join(sorted(names))}: these measurements "
                "are of another model")
    return list(seen.values())
