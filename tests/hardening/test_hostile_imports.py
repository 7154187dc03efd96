"""Hostile input to the evidence stores and importers (issue #27): foreign SQLite files, damaged
stores, wrong types in every importer, units, repeated keys, inverted percentiles, huge and deep
files, concurrent imports, NaN and Infinity, negative counts.

Each case has an id, a family, a one-line description of its input and the verdict it asserts;
docs/hostile/imports.md is the table of them (``test_the_table_lists_every_case`` keeps the two
alike). Most inputs are real exports (tests/data/exports/) with one value made hostile.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stackdecide.cli.evidence as evidence_cli
from stackdecide.cli import main
from stackdecide.evidence.records import EvidenceRecord
from stackdecide.evidence.store import APPLICATION_ID, MIGRATIONS, EvidenceStore, load_evidence

from .conftest import cli, refused

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "hostile" / "imports.md"
GUIDELLM = "guidellm-0.5-benchmarks.json"
AIPERF = "aiperf-0.10-concurrency-profile_export_aiperf.json"
VLLM = "vllm-0.25.1-bench-serve.json"


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    input: str  # one line: what the hostile file or store is
    verdict: str  # one line: what stackdecide does with it, as the test asserts
    run: Callable[[Path], None]


CASES: list[Case] = []


def case(id: str, family: str, input: str, verdict: str
         ) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def register(run: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES.append(Case(id, family, input, verdict, run))
        return run
    return register


# -- building inputs -----------------------------------------------------------------------------
def export(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXPORTS / name).read_text(encoding="utf-8"))
    return data


def changed(name: str, path: str, value: Any) -> dict[str, Any]:
    """The export ``name`` with the value at ``path`` (``a.0.b``) replaced, or removed when
    ``value`` is ``...``."""
    document = copy.deepcopy(export(name))
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    holder: Any = document
    for part in parents:
        holder = holder[part]
    if value is ...:
        del holder[last]
    else:
        holder[last] = value
    return document


def write(tmp: Path, content: dict[str, Any] | str, name: str = "in.json") -> Path:
    path = tmp / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    return path


def import_args(tmp: Path, path: Path, store: Path | None = None,
                candidate: str | None = "a") -> list[str]:
    return ["evidence", "import", str(path), *(["--candidate", candidate] if candidate else []),
            "--evidence", str(store or tmp / "e.db")]


def refused_file(tmp: Path, content: dict[str, Any] | str, *expected: str,
                 candidate: str | None = "a") -> str:
    """Import ``content`` (for ``candidate``: the tools' results name none): refused with one
    line naming the file and each of ``expected``, and no store made."""
    path = write(tmp, content)
    message = refused(import_args(tmp, path, candidate=candidate), str(path), *expected)
    assert not (tmp / "e.db").exists()
    return message


def stored(tmp: Path, content: dict[str, Any] | str) -> tuple[dict[str, EvidenceRecord], str]:
    """Import ``content``: stored; its records by metric, and what the import said."""
    path = write(tmp, content)
    result = cli(import_args(tmp, path))
    assert result.exit_code == 0, result.stderr
    return {r.metric: r for r in load_evidence(tmp / "e.db")}, result.stderr


def g(path: str) -> str:  # a path inside the GuideLLM export's first benchmark
    return f"benchmarks.0.{path}"


TTFT = "metrics.time_to_first_token_ms.successful"


# -- GuideLLM: wrong types -----------------------------------------------------------------------
def guidellm_refused(id: str, input: str, path: str, value: Any, field: str, why: str) -> None:
    @case(id, "GuideLLM types", input, f"refused at `{field}`: {why}")
    def run(tmp: Path) -> None:
        refused_file(tmp, changed(GUIDELLM, g(path), value), f"in.json:1 {field}: {why}")


guidellm_refused("guidellm-metric-number", "a metric that is a number, not a distribution",
                 "metrics.time_to_first_token_ms", 5,
                 "benchmarks[0].metrics.time_to_first_token_ms", "expected an object, got 5")
guidellm_refused("guidellm-successful-list", "`successful` is a list",
                 f"{TTFT}", [], "benchmarks[0].metrics.time_to_first_token_ms.successful",
                 "expected an object, got []")
guidellm_refused("guidellm-mean-text", "a mean written as text", f"{TTFT}.mean", "171.7",
                 "benchmarks[0].metrics.time_to_first_token_ms.successful.mean",
                 "expected a number, got '171.7'")
guidellm_refused("guidellm-percentiles-list", "`percentiles` is a list", f"{TTFT}.percentiles",
                 [1, 2], "benchmarks[0].metrics.time_to_first_token_ms.successful.percentiles",
                 "expected an object, got [1, 2]")
guidellm_refused("guidellm-percentile-text", "a percentile written as text",
                 f"{TTFT}.percentiles.p99", "172",
                 "benchmarks[0].metrics.time_to_first_token_ms.successful.percentiles.p99",
                 "expected a number, got '172'")
guidellm_refused("guidellm-rate-bool", "a throughput that is `true`",
                 "metrics.requests_per_second.successful.mean", True,
                 "benchmarks[0].metrics.requests_per_second.successful.mean",
                 "expected a number, got True")
guidellm_refused("guidellm-config-list", "`config` is a list", "config", [],
                 "benchmarks[0].config", "expected an object, got []")
guidellm_refused("guidellm-strategy-text", "the strategy is a text, not an object",
                 "config.strategy", "concurrent", "benchmarks[0].config.strategy",
                 "expected an object, got 'concurrent'")
guidellm_refused("guidellm-streams-text", '`"streams": "16"`: the load as text',
                 "config.strategy.streams", "16", "benchmarks[0].config.strategy.streams",
                 "expected a number, got '16'")
guidellm_refused("guidellm-streams-zero", "a concurrent strategy of 0 streams",
                 "config.strategy.streams", 0, "benchmarks[0].config.strategy.streams",
                 "expected a whole number of at least 1, got 0")
guidellm_refused("guidellm-start-text", "a start time written as text",
                 "scheduler_state.start_time", "yesterday",
                 "benchmarks[0].scheduler_state.start_time", "expected a number, got 'yesterday'")
guidellm_refused("guidellm-negative-errored", "a negative count of errored requests",
                 "metrics.request_totals.errored", -3,
                 "benchmarks[0].metrics.request_totals.errored", "expected a whole number, got -3")
guidellm_refused("guidellm-negative-latency", "a negative mean TTFT", f"{TTFT}.mean", -5.0,
                 "benchmarks[0].metrics.time_to_first_token_ms.successful.mean",
                 "-5 ms is not a possible ttft_ms_mean")


@case("guidellm-negative-rate", "GuideLLM types", "a Poisson strategy at -4 requests/s",
      "refused at `benchmarks[0].config.strategy.rate`: the rate must be above 0")
def _(tmp: Path) -> None:
    report = changed(GUIDELLM, g("config.strategy"), {"type_": "poisson", "rate": -4})
    refused_file(tmp, report, "benchmarks[0].config.strategy.rate: a poisson strategy needs a "
                              "request rate above 0, got -4.0")


@case("guidellm-nan", "non-finite numbers", "`NaN` as a GuideLLM p99",
      "refused at its JSON path: not a finite number")
def _(tmp: Path) -> None:
    text = json.dumps(changed(GUIDELLM, g(f"{TTFT}.percentiles.p99"), float("nan")))
    refused_file(tmp, text, "successful.percentiles.p99: nan is not a finite number")


@case("guidellm-inverted", "inverted percentiles", "a GuideLLM TTFT p99 below its p50",
      "refused at the p99: percentiles rise with the percentile")
def _(tmp: Path) -> None:
    report = changed(GUIDELLM, g(f"{TTFT}.percentiles.p99"), 1.0)
    refused_file(tmp, report, "percentiles.p99: p99 (1) is below p95")


@case("guidellm-repeated-key", "repeated keys", "`mean` written twice in one GuideLLM distribution",
      "refused at the line and JSON path of the second `mean`")
def _(tmp: Path) -> None:
    text = json.dumps(export(GUIDELLM), indent=1)
    first = '"mean": 171.7655062675476,'
    assert text.count(first) == 1
    text = text.replace(first, first + ' "mean": 1.0,')
    line = text[:text.index(first)].count("\n") + 1
    refused_file(tmp, text, f"in.json:{line} benchmarks[0].metrics.time_to_first_token_ms"
                            ".successful.mean: key 'mean' is written twice")


# -- AIPerf: wrong types and units ---------------------------------------------------------------
def aiperf_refused(id: str, family: str, input: str, path: str, value: Any, field: str,
                   why: str) -> None:
    @case(id, family, input, f"refused at `{field}`: {why}")
    def run(tmp: Path) -> None:
        refused_file(tmp, changed(AIPERF, path, value), f"in.json:1 {field}: {why}")


aiperf_refused("aiperf-avg-text", "AIPerf types", "a TTFT average written as text",
               "time_to_first_token.avg", "118", "time_to_first_token.avg",
               "expected a number, got '118'")
aiperf_refused("aiperf-unit-number", "AIPerf types", "a unit that is a number",
               "time_to_first_token.unit", 5, "time_to_first_token.unit",
               "expected a text, got 5")
aiperf_refused("aiperf-metric-list", "AIPerf types", "a metric that is a list",
               "request_latency", [1], "request_latency", "expected an object, got [1]")
aiperf_refused("aiperf-concurrency-text", "AIPerf types", "the measured phase's concurrency as text",
               "input_config.phases.1.concurrency", "8", "input_config.phases[1].concurrency",
               "expected a number, got '8'")
aiperf_refused("aiperf-negative-concurrency", "negative counts", "a concurrency of -1",
               "input_config.phases.1.concurrency", -1, "input_config.phases[1].concurrency",
               "expected a whole number, got -1")
aiperf_refused("aiperf-negative-failures", "negative counts", "-2 failed requests",
               "error_request_count", {"unit": "requests", "avg": -2},
               "error_request_count.avg", "expected a whole number, got -2")
aiperf_refused("aiperf-infinity", "non-finite numbers", "`Infinity` as an AIPerf p90",
               "request_latency.p90", float("inf"), "request_latency.p90",
               "inf is not a finite number")
aiperf_refused("aiperf-inverted", "inverted percentiles", "an AIPerf TTFT p99 below its p50",
               "time_to_first_token.p99", 1.0, "time_to_first_token.p99",
               "p99 (1) is below p95")


@case("aiperf-requests-per-minute", "units", "AIPerf throughput in `requests/min`",
      "stored per second: 202.3 requests/min is 3.3717 req/s")
def _(tmp: Path) -> None:
    records, _ = stored(tmp, changed(AIPERF, "request_throughput",
                                     {"unit": "requests/min", "avg": 202.3}))
    assert records["request_per_s"].value == pytest.approx(202.3 / 60)


@case("aiperf-seconds", "units", "AIPerf TTFT in `sec`", "stored in ms (x1000)")
def _(tmp: Path) -> None:
    records, _ = stored(tmp, changed(AIPERF, "time_to_first_token",
                                     {"unit": "sec", "avg": 0.118, "p50": 0.117}))
    assert records["ttft_ms_mean"].value == pytest.approx(118.0)
    assert records["ttft_ms_p50"].value == pytest.approx(117.0)


@case("aiperf-unknown-unit", "units", "AIPerf throughput in `requests/fortnight`",
      "not stored; the import's note names the unit")
def _(tmp: Path) -> None:
    records, said = stored(tmp, changed(AIPERF, "request_throughput",
                                        {"unit": "requests/fortnight", "avg": 9.0}))
    assert "request_per_s" not in records and "output_tok_s" in records
    assert "request_throughput has unit 'requests/fortnight', not the req/s of request_per_s; " \
           "skipped" in said


@case("aiperf-tokens-as-requests", "units", "AIPerf request throughput in `tokens/sec`",
      "not stored: it counts tokens, not requests; the note says so")
def _(tmp: Path) -> None:
    records, said = stored(tmp, changed(AIPERF, "request_throughput",
                                        {"unit": "tokens/sec", "avg": 769.6}))
    assert "request_per_s" not in records
    assert "not the req/s of request_per_s" in said


@case("aiperf-warm-up-load", "AIPerf load", "a warm-up phase at concurrency 2 before a measured 16",
      "stored at concurrency 16")
def _(tmp: Path) -> None:
    document = changed(AIPERF, "input_config.phases.0.concurrency", 2)
    document["input_config"]["phases"][1]["concurrency"] = 16
    records, _ = stored(tmp, document)
    assert {r.scenario["concurrency"] for r in records.values()} == {16}


@case("aiperf-two-measured-loads", "AIPerf load", "two measured phases at concurrency 8 and 16",
      "refused at `input_config.phases`: one load per export")
def _(tmp: Path) -> None:
    document = export(AIPERF)
    document["input_config"]["phases"].append({"name": "profiling-2", "concurrency": 16})
    refused_file(tmp, document, "in.json:1 input_config.phases: several measured phases")


# -- vllm bench serve ----------------------------------------------------------------------------
def vllm_refused(id: str, family: str, input: str, key: str, value: Any, why: str) -> None:
    @case(id, family, input, f"refused at `{key}`: {why}")
    def run(tmp: Path) -> None:
        refused_file(tmp, json.dumps(changed(VLLM, key, value)), f"in.json:1 {key}: {why}")


vllm_refused("vllm-number-text", "vLLM types", '`"max_concurrency": "16"`', "max_concurrency",
             "16", "expected a number, got '16'")
vllm_refused("vllm-completed-bool", "vLLM types", "`completed` is `true`", "completed", True,
             "expected a number, got True")
vllm_refused("vllm-negative-failed", "negative counts", "-1 failed requests", "failed", -1,
             "expected a whole number, got -1")
vllm_refused("vllm-negative-latency", "vLLM types", "a negative mean TPOT", "mean_tpot_ms", -3.0,
             "-3 ms is not a possible tpot_ms_mean")
vllm_refused("vllm-nan", "non-finite numbers", "`NaN` as the mean TTFT", "mean_ttft_ms",
             float("nan"), "nan is not a finite number")
vllm_refused("vllm-infinity", "non-finite numbers", "`Infinity` as the output throughput",
             "output_throughput", float("inf"), "inf is not a finite number")
vllm_refused("vllm-inverted", "inverted percentiles", "a p99 TTFT below the median TTFT",
             "p99_ttft_ms", 1.0, "p99 (1) is below p50 (55.6814)")


@case("vllm-repeated-key", "repeated keys", "`completed` written twice in a vLLM result",
      "refused at the line of the second `completed`")
def _(tmp: Path) -> None:
    text = (EXPORTS / VLLM).read_text()
    text = text.replace('  "failed": 0,', '  "failed": 0,\n  "completed": 80,')
    line = text[:text.index('"completed": 80')].count("\n") + 1
    refused_file(tmp, text, f"in.json:{line} completed: key 'completed' is written twice")


@case("vllm-repeated-key-line", "repeated keys", "a repeated key on line 2 of appended results",
      "refused at line 2, naming the key")
def _(tmp: Path) -> None:
    line = json.dumps(export(VLLM))
    second = line.replace('"failed": 0', '"failed": 0, "request_throughput": 9.9')
    refused_file(tmp, f"{line}\n{second}\n", "in.json:2 request_throughput: key "
                                             "'request_throughput' is written twice")


# -- size and depth ------------------------------------------------------------------------------
@case("huge-export", "size", "a 40 MB export of 820,000 minimal records",
      "refused before parsing, holding < 200 MB: more JSON strings than an evidence file holds")
def _(tmp: Path) -> None:
    record = '{"candidate":"a","metric":"vram_gb","value":1.5}'
    text = '{"format":"stackdecide-evidence/v1","records":[' + \
        ",".join([record] * 820_000) + "]}"
    assert len(text) > 40_000_000
    tracemalloc.start()
    try:
        refused_file(tmp, text, "holds more than 2,000,000 JSON strings", candidate=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20


@case("many-records", "size", "an export of 60,000 records (4 MB)",
      "refused before the records are made: more than 50,000")
def _(tmp: Path) -> None:
    records = [{"candidate": "a", "metric": "vram_gb", "value": 1.5}] * 60_000
    refused_file(tmp, {"format": "stackdecide-evidence/v1", "records": records},
                 "makes more than 50,000 evidence records", candidate=None)


@case("many-numbers", "size", "a vLLM result with 4.5 million per-token gaps",
      "refused while parsing: more JSON numbers than an evidence file holds")
def _(tmp: Path) -> None:
    text = json.dumps(export(VLLM))[:-1] + ', "itls": [[' + ",".join(["1"] * 4_500_000) + "]]}"
    refused_file(tmp, text, "holds more than 4,000,000 JSON numbers")


@case("deep-nesting", "size", "100,000 nested lists", "refused: nested too deeply")
def _(tmp: Path) -> None:
    refused_file(tmp, "[" * 100_000 + "]" * 100_000, "JSON nested too deeply")


# -- stores --------------------------------------------------------------------------------------
def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's content hash and the names beside it (a -wal or -shm file would show)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


def result_file(tmp: Path) -> Path:
    folder = tmp / "results"
    folder.mkdir(exist_ok=True)
    return write(folder, export(VLLM), "run.json")


def store_refused(tmp: Path, store: Path, *expected: str, args: list[str] | None = None) -> None:
    """Importing into ``store`` (or running ``args``) is refused and leaves it byte for byte."""
    args = args or import_args(tmp, result_file(tmp), store)
    before = fingerprint(store)
    refused(args, str(store), *expected)
    assert fingerprint(store) == before


def foreign_database(path: Path, *statements: str) -> Path:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path


def legacy_store(path: Path, rows: int = 300) -> Path:
    """A store made before stores were marked: schema 1, no application_id, rollback journal."""
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.executemany(
        "INSERT INTO records (candidate, metric, value, unit, repeats, scenario, software, "
        "timestamp, tool_version, note) VALUES ('a', 'vram_gb', ?, 'GiB', 1, '{}', '{}', "
        "'2025-01-01T00:00:00+00:00', '0.1', ?)", [(1.0 + i, "x" * 400) for i in range(rows)])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    return path


def damage(path: Path) -> None:
    """Overwrite pages in the middle of the file, as a failing disk or a bad copy would."""
    page = 4096
    with path.open("r+b") as handle:
        handle.seek(page * 8)
        handle.write(bytes(range(256)) * (page * 4 // 256))


@case("store-foreign-table", "foreign SQLite", "another application's database (table `items`)",
      "refused before any write: no `records` table, no WAL switch, same bytes")
def _(tmp: Path) -> None:
    store = foreign_database(tmp / "app.db", "CREATE TABLE items (x)", "INSERT INTO items VALUES (1)")
    store_refused(tmp, store, "another application", "its tables: items")
    db = sqlite3.connect(store)
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("items",)]
    db.close()


@case("store-foreign-id", "foreign SQLite", "an SQLite file marked with another application_id",
      "refused from its header, without opening it as a database")
def _(tmp: Path) -> None:
    store = foreign_database(tmp / "other.db", "PRAGMA application_id = 252006673")
    store_refused(tmp, store, "another application", "application_id 0x0f055111")


@case("store-foreign-records", "foreign SQLite", "another application's table called `records`",
      "refused: its columns are not a store's")
def _(tmp: Path) -> None:
    store = foreign_database(tmp / "app.db", "CREATE TABLE records (id INTEGER, body TEXT)")
    store_refused(tmp, store, "another application", "its tables: records")


@case("store-foreign-read", "foreign SQLite", "`evidence list` of another application's database",
      "refused, and read without writing")
def _(tmp: Path) -> None:
    store = foreign_database(tmp / "app.db", "CREATE TABLE items (x)")
    store_refused(tmp, store, "another application",
                  args=["evidence", "list", "--evidence", str(store)])


@case("store-damaged-rollback", "damaged stores", "a damaged store in rollback-journal mode",
      "refused before the WAL switch: same bytes, the message says how to recover")
def _(tmp: Path) -> None:
    store = tmp / "evidence.db"
    with EvidenceStore(store) as opened:
        opened.add([EvidenceRecord(candidate="a", metric="vram_gb", value=1.0 + i, note="x" * 400)
                    for i in range(300)])
    db = sqlite3.connect(store)
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    damage(store)
    store_refused(tmp, store, "damaged", "nothing was written", ".recover")


@case("store-damaged-legacy", "damaged stores", "a damaged store of schema 1, made before the mark",
      "refused before migrating it: same bytes")
def _(tmp: Path) -> None:
    store = legacy_store(tmp / "evidence.db")
    damage(store)
    store_refused(tmp, store, "damaged", "quick_check")


@case("store-newer", "damaged stores", "a store of a newer stackdecide (schema 99)",
      "refused: same bytes, upgrade stackdecide")
def _(tmp: Path) -> None:
    store = tmp / "evidence.db"
    with EvidenceStore(store) as opened:
        opened.add([EvidenceRecord(candidate="a", metric="vram_gb", value=1.0)])
    db = sqlite3.connect(store)
    db.execute("PRAGMA user_version = 99")
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    store_refused(tmp, store, "schema version 99, newer than")


@case("store-not-sqlite", "foreign SQLite", "a text file given as the store",
      "refused: not an SQLite database, same bytes")
def _(tmp: Path) -> None:
    store = tmp / "notes.db"
    store.write_text("these are notes\n")
    store_refused(tmp, store, "not an SQLite database")


@case("store-legacy", "foreign SQLite", "a store made before the mark (schema 1, unmarked)",
      "imported into: migrated, marked, its 300 records kept")
def _(tmp: Path) -> None:
    store = legacy_store(tmp / "evidence.db")
    assert cli(import_args(tmp, result_file(tmp), store)).exit_code == 0
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("SELECT count(*) FROM records WHERE metric = 'vram_gb'").fetchone()[0] == 300
    db.close()


@case("store-empty-sqlite", "foreign SQLite", "an SQLite file with no tables",
      "imported into: nothing of anyone's to damage")
def _(tmp: Path) -> None:
    store = tmp / "evidence.db"
    db = sqlite3.connect(store)
    db.execute("VACUUM")
    db.close()
    assert store.stat().st_size > 0
    assert cli(import_args(tmp, result_file(tmp), store)).exit_code == 0
    assert len(load_evidence(store)) == 13


@case("concurrent-imports", "concurrency", "two imports of the same file into a new store at once",
      "stored once: the second finds the first's records under the write lock")
def _(tmp: Path) -> None:
    both_open = threading.Barrier(2)

    class Gate(EvidenceStore):
        """A store whose writers open together, so that neither has stored anything yet."""

        def __init__(self, path: str | Path, **options: Any) -> None:
            if not options.get("readonly"):
                both_open.wait(timeout=30)
            super().__init__(path, **options)

    path = result_file(tmp)
    exits: list[object] = []

    def run() -> None:
        try:
            main.main(import_args(tmp, path), standalone_mode=False)
            exits.append(0)
        except SystemExit as exc:
            exits.append(exc.code)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence_cli, "EvidenceStore", Gate)
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert exits == [0, 0]
    assert len(load_evidence(tmp / "e.db")) == 13  # one run's records, once


# -- the cases, and their table ------------------------------------------------------------------
@pytest.mark.parametrize("hostile", CASES, ids=[c.id for c in CASES])
def test_hostile_input(hostile: Case, tmp_path: Path) -> None:
    hostile.run(tmp_path)


def table_rows() -> Iterator[str]:
    for c in CASES:
        yield f"| `{c.id}` | {c.family} | {c.input} | {c.verdict} |"


def test_the_table_lists_every_case() -> None:
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)
    table = [line for line in DOCS.read_text(encoding="utf-8").splitlines()
             if line.startswith("| `")]
    assert table == list(table_rows())
