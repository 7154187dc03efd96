"""Reading evidence files of any kind: the registry of importers, and the entry points that
recognise a file by its content and hand it to its reader.

``IMPORTERS`` lists, in the order they are tried, each kind of JSON file as a pair of functions:
``detect`` (does this object look like one) and ``read`` (its records). The first that detects a
file's object reads it; JSON lines are read when every line is detected by the same importer, one
that takes lines. ``FOLDER_IMPORTERS`` does the same for folders. A new kind of file is one
reader module and one entry here.

* stackdecide evidence exports and records (``evidence.native``);
* ``stackdecide bench --json`` results (``evidence.native``);
* ``vllm bench serve --save-result`` results (``evidence.vllm_results``);
* ``vllm bench sweep`` experiment folders, GuideLLM reports, AIPerf exports (``evidence.foreign``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stackdecide._files import read_user_text
from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence._json_values import JsonBudget, loads
from stackdecide.evidence.foreign import (
    looks_like_aiperf,
    looks_like_guidellm,
    looks_like_sweep_folder,
    read_aiperf,
    read_guidellm,
    read_sweep_folder,
)
from stackdecide.evidence.import_base import (
    MAX_FILE_BYTES,
    FileKind,
    FolderImporter,
    Importer,
    ImportResult,
    RunContext,
)
from stackdecide.evidence.native import (
    looks_like_bench_result,
    looks_like_export,
    looks_like_record,
    read_bench_results,
    read_export,
    read_records,
)
from stackdecide.evidence.vllm_results import looks_like_vllm_result, read_vllm_results

__all__ = ["IMPORTERS", "KIND_LABELS", "ImportResult", "RunContext", "parse_evidence_text",
           "read_evidence_file"]

EVIDENCE_RECORDS = Importer("stackdecide", "stackdecide evidence", looks_like_record,
                            read_records, lines=True)
IMPORTERS: tuple[Importer, ...] = (
    Importer("guidellm", "GuideLLM report", looks_like_guidellm, read_guidellm),
    Importer("aiperf", "AIPerf export", looks_like_aiperf, read_aiperf),
    Importer("stackdecide-bench", "stackdecide bench result", looks_like_bench_result,
             read_bench_results),
    Importer("stackdecide", "stackdecide evidence", looks_like_export, read_export),
    Importer("vllm-bench-serve", "vllm bench serve result", looks_like_vllm_result,
             read_vllm_results, lines=True),
    EVIDENCE_RECORDS,
)
FOLDER_IMPORTERS: tuple[FolderImporter, ...] = (
    FolderImporter("vllm-bench-sweep", "vllm bench sweep folder", looks_like_sweep_folder,
                   read_sweep_folder),
)
KIND_LABELS: dict[FileKind, str] = {i.kind: i.label for i in (*FOLDER_IMPORTERS, *IMPORTERS)}


def read_evidence_file(path: str | Path, context: RunContext | None = None) -> ImportResult:
    """Read one evidence file of any kind (a folder: a ``vllm bench sweep`` experiment); errors
    name the file and, where known, the line."""
    path = Path(path)
    if path.is_dir():
        folder = next((i for i in FOLDER_IMPORTERS if i.detect(path)), None)
        if folder is not None:
            return folder.read(path, context or RunContext())
    text = read_user_text(path, kind="evidence file", content="JSON", limit=MAX_FILE_BYTES,
                          error=EvidenceError)
    return parse_evidence_text(text, str(path), context)


def parse_evidence_text(text: str, file: str = "<input>",
                        context: RunContext | None = None) -> ImportResult:
    """Detect the format of ``text`` (one JSON document, or JSON lines) and read its records.
    Parsing and reading stop at the limits of ``_json_values`` and ``MAX_RECORDS``, so a file
    within the byte limit cannot exhaust memory."""
    context = context or RunContext()
    if not text.strip():
        raise EvidenceError("empty file, expected JSON evidence or a vllm bench serve result",
                            Location(file))
    try:
        document = loads(text, Location(file))
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise EvidenceError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                Location(file, exc.lineno)) from None
        return _parse_lines(text, file, context)
    where = Location(file, _first_content_line(text))
    if isinstance(document, list):  # a list of records
        return EVIDENCE_RECORDS.read([(item, Location(file, None, None, f"[{i}]"))
                                      for i, item in enumerate(document)], file, context)
    if not isinstance(document, dict):
        raise EvidenceError(f"expected a JSON object or list, got {type(document).__name__}",
                            where)
    return _importer_of(document, IMPORTERS, where).read([(document, where)], file, context)


def _importer_of(document: Mapping[str, Any], importers: Sequence[Importer],
                 where: Location) -> Importer:
    found = next((importer for importer in importers if importer.detect(document)), None)
    if found is None:
        keys = ", ".join(sorted(document)[:8]) or "none"
        raise EvidenceError("not a kind of file stackdecide reads: stackdecide evidence (records "
                            "with 'candidate', 'metric', 'value'), a vllm bench serve result (with "
                            "'completed', 'request_throughput' and 'backend', 'date' or mean_*_ms "
                            "latencies), a GuideLLM report ('benchmarks' with 'metrics') or an "
                            "AIPerf export ('aiperf_version', 'time_to_first_token' or 'records' "
                            f"by metric); its keys: {keys}", where)
    return found


def _first_content_line(text: str) -> int:
    stripped = text.lstrip()
    return text[: len(text) - len(stripped)].count("\n") + 1


def _parse_lines(text: str, file: str, context: RunContext) -> ImportResult:
    line_importers = [importer for importer in IMPORTERS if importer.lines]
    items: list[tuple[dict[str, Any], Location]] = []
    chosen: Importer | None = None
    budget = JsonBudget()  # all lines together
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(file, number)
        try:
            item = loads(line, where, budget)
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"invalid JSON: {exc.msg} (column {exc.colno})", where) from None
        if not isinstance(item, dict):
            raise EvidenceError(f"each line must be a JSON object, got {type(item).__name__}",
                                where)
        importer = _importer_of(item, line_importers, where)
        if chosen is not None and importer is not chosen:
            raise EvidenceError("this line is a different kind of record from the lines above "
                                "(stackdecide evidence and vllm bench serve results are mixed)",
                                where)
        chosen = importer
        items.append((item, where))
    assert chosen is not None  # the text is not blank, and every line was read or refused
    return chosen.read(items, file, context)
