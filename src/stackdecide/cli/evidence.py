"""``stackdecide evidence list|add|import|export``: the measurements behind measured scores."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from tabulate import tabulate

import stackdecide
from stackdecide._text import shown
from stackdecide.cli._app import handle_errors, main
from stackdecide.decision import Decision
from stackdecide.errors import EvidenceError
from stackdecide.evidence.apply import check_candidates
from stackdecide.evidence.importers import (
    KIND_LABELS,
    RunContext,
    read_evidence_file,
)
from stackdecide.evidence.provenance import (
    PlannedFile,
    file_digest,
    model_mismatches,
    plan_imports,
)
from stackdecide.evidence.records import (
    EXPORT_FORMATS,
    EvidenceRecord,
    HardwareInfo,
    dump_records,
    parse_scenario_value,
)
from stackdecide.evidence.store import EvidenceStore, resolve_evidence_path
from stackdecide.model.metrics import METRICS
from stackdecide.state import last_decision

F = TypeVar("F", bound=Callable[..., Any])


@main.group()
def evidence() -> None:
    """Store, list, import and export measurements (evidence).

    The store is --evidence PATH, or .stackdecide/evidence.db beside the decision file given with
    --decision (default: the decision last scored in this folder).
    """


def _store_options(func: F) -> F:
    func = click.option("--decision", "decision_file", type=click.Path(dir_okay=False),
                        help="Decision file: its folder holds the default store, and added "
                             "records must name its candidates.")(func)
    return click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
                        help="Evidence store (SQLite) to use.")(func)


def _provenance_options(func: F) -> F:
    options = [
        click.option("--gpu", help="GPU the measurement ran on, as the driver names it."),
        click.option("--vram-gb", type=float, help="That GPU's memory, in GiB."),
        click.option("--compute-capability", help="That GPU's compute capability, e.g. 8.9."),
        click.option("--driver", help="NVIDIA driver version."),
        click.option("--software", "software", multiple=True, metavar="PACKAGE=VERSION",
                     help="An installed version, e.g. vllm=0.10.1.1 (repeatable)."),
        click.option("--scenario", "scenario", multiple=True, metavar="KEY=VALUE",
                     help="A scenario parameter, e.g. concurrency=1 (repeatable)."),
        click.option("--config-sha256", help="sha256 of the engine configuration that ran."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise EvidenceError(f"{option} '{text}' is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def _hardware(gpu: str | None, vram_gb: float | None, compute_capability: str | None,
              driver: str | None) -> HardwareInfo | None:
    if gpu is None:
        if vram_gb is not None or compute_capability or driver:
            raise EvidenceError("--vram-gb, --compute-capability and --driver describe a GPU; "
                                "name it with --gpu")
        return None
    return HardwareInfo(gpu=gpu, vram_gb=vram_gb, compute_capability=compute_capability,
                        driver=driver)


def _decision(decision_file: str | None, evidence_path: str | None) -> Decision | None:
    """The decision that added records must fit: the one named, or the one whose default store
    is in use."""
    if decision_file is not None:
        return stackdecide.load(decision_file)
    if evidence_path is None and (last := last_decision()) is not None:
        return stackdecide.load(last)
    return None


@evidence.command("list")
@_store_options
@click.option("--candidate", help="Only this candidate's records.")
@click.option("--metric", help="Only this metric's records.")
@click.option("--format", "fmt", type=click.Choice(("table", *EXPORT_FORMATS)),
              default="table", show_default=True, help="Output format.")
@handle_errors
def list_records(evidence_path: str | None, decision_file: str | None, candidate: str | None,
                 metric: str | None, fmt: str) -> None:
    """List stored records, oldest first."""
    path = resolve_evidence_path(evidence_path, decision_file)
    with EvidenceStore(path, create=False, readonly=True) as store:
        records = store.load(candidate, metric)
    if fmt != "table":
        click.echo(dump_records(records, fmt), nl=False)
        return
    click.echo(f"{path}: {len(records)} record{'' if len(records) == 1 else 's'}", err=True)
    if len(records):
        click.echo(tabulate([_row(r) for r in records], headers=_HEADERS, disable_numparse=True))


_HEADERS = ("id", "candidate", "metric", "value", "unit", "n", "scenario", "gpu", "software",
            "time (UTC)", "source")


def _row(record: EvidenceRecord) -> list[str]:
    value = f"{record.value:.6g}"
    if record.spread is not None:
        value += f" ±{record.spread / 2:.3g}"
    if record.interval is not None:
        value += f" [{record.interval[0]:.3g}, {record.interval[1]:.3g}]"
    # a store or an import is someone else's text: what it says reaches the terminal escaped
    return [shown(text) for text in (
        str(record.id), record.candidate, record.metric, value, record.unit, str(record.repeats),
        " ".join(f"{k}={v}" for k, v in sorted(record.scenario.items())),
        record.hardware.gpu if record.hardware else "-",
        " ".join(f"{k}={v}" for k, v in sorted(record.software.items())) or "-",
        record.timestamp.strftime("%Y-%m-%d %H:%M"), record.source or "-",
    )]


@evidence.command("add")
@_store_options
@click.option("--candidate", required=True, help="Candidate id from the decision file.")
@click.option("--metric", required=True,
              help=f"What was measured: one of {', '.join(METRICS)}.")
@click.option("--value", required=True, type=float, help="The measured value.")
@click.option("--unit", help="Unit of the value; must be the metric's own unit.")
@click.option("--repeats", type=int, default=1, show_default=True,
              help="Runs that VALUE summarises (their median).")
@click.option("--spread", type=float, help="max - min of those runs.")
@_provenance_options
@click.option("--source", help="Where the value comes from (run id, notebook, ...).")
@click.option("--note", help="Anything a reader needs, e.g. why launch_ok is 0.")
@handle_errors
def add(evidence_path: str | None, decision_file: str | None, candidate: str, metric: str,
        value: float, unit: str | None, repeats: int, spread: float | None, gpu: str | None,
        vram_gb: float | None, compute_capability: str | None, driver: str | None,
        software: tuple[str, ...], scenario: tuple[str, ...], config_sha256: str | None,
        source: str | None, note: str | None) -> None:
    """Store one measurement typed in by hand."""
    path = resolve_evidence_path(evidence_path, decision_file)
    record = EvidenceRecord(
        candidate=candidate, metric=metric, value=value, unit=unit or "", repeats=repeats,
        spread=spread, hardware=_hardware(gpu, vram_gb, compute_capability, driver),
        software=_pairs(software, "--software"),
        scenario={k: parse_scenario_value(v) for k, v in _pairs(scenario, "--scenario").items()},
        config_sha256=config_sha256, source=source or "stackdecide evidence add", note=note)
    decision = _decision(decision_file, evidence_path)
    if decision is not None:
        check_candidates(decision, [record])
    with EvidenceStore(path) as store:
        (record_id,) = store.add([record])
    click.echo(f"stored record {record_id} ({metric} = {value:g} {record.unit} for {candidate}) "
               f"in {path}")


@evidence.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@_store_options
@click.option("--candidate", help="Candidate that ran the stackdecide bench, vllm bench serve, "
                                  "vllm bench sweep, GuideLLM or AIPerf results.")
@_provenance_options
@click.option("--dry-run", is_flag=True, help="Read and check the files, store nothing.")
@handle_errors
def import_files(files: tuple[str, ...], evidence_path: str | None, decision_file: str | None,
                 candidate: str | None, gpu: str | None, vram_gb: float | None,
                 compute_capability: str | None, driver: str | None, software: tuple[str, ...],
                 scenario: tuple[str, ...], config_sha256: str | None, dry_run: bool) -> None:
    """Import stackdecide JSON/JSONL exports, `stackdecide bench --json` results, `vllm bench
    serve --save-result` files, `vllm bench sweep` experiment folders, GuideLLM benchmarks.json
    reports or AIPerf profile_export_aiperf.json exports.

    All files are stored in one transaction: either every record is stored or none is.
    """
    path = resolve_evidence_path(evidence_path, decision_file)
    context = RunContext(
        candidate=candidate, hardware=_hardware(gpu, vram_gb, compute_capability, driver),
        software=_pairs(software, "--software"),
        scenario={k: parse_scenario_value(v) for k, v in _pairs(scenario, "--scenario").items()},
        config_sha256=config_sha256)
    results = [read_evidence_file(file, context) for file in files]
    files_read = list(zip(results, [file_digest(file) for file in files], strict=True))
    decision = _decision(decision_file, evidence_path)
    if decision is not None:
        check_candidates(decision, [r for result in results for r in result.records])
    if dry_run:
        stored: list[EvidenceRecord] = []
        if Path(path).exists():
            with EvidenceStore(path, create=False, readonly=True) as store:
                stored = list(store.load())
        planned, records = plan_imports(stored, files_read)
        _say_planned(planned, decision)
        click.echo(f"dry run: {len(records)} records checked, none stored")
        return
    # What is new is decided under the store's write lock: a file imported by another process
    # at the same moment is seen, and skipped, rather than stored twice.
    with EvidenceStore(path) as store:
        planned, ids = store.add_chosen(lambda stored: plan_imports(stored, files_read))
    _say_planned(planned, decision)
    shown = f" (ids {ids[0]}..{ids[-1]})" if ids else ""
    click.echo(f"stored {len(ids)} records{shown} in {path}")


def _say_planned(planned: Sequence[PlannedFile], decision: Decision | None) -> None:
    """Each file's kind, records and notes, or why it was skipped; then records of another model
    than their candidate's."""
    for file in planned:
        result = file.result
        if file.skipped:
            before = list(file.stored_before)
            when = f"before as records {_id_range(before)}" if before else "in this import"
            click.echo(f"{result.file}: skipped, the same content ({file.digest}) was imported "
                       f"{when}; importing it again would count its measurements twice", err=True)
            continue
        click.echo(f"{result.file}: {KIND_LABELS[result.kind]}, {len(result.records)} records",
                   err=True)
        for note in result.notes:
            click.echo(f"  note: {shown(note)}", err=True)
    new = [record for file in planned if not file.skipped for record in file.result.records]
    for warning in model_mismatches(decision, new) if decision is not None else []:
        click.echo(f"warning: {shown(warning)}", err=True)


def _id_range(ids: list[int]) -> str:
    return f"{ids[0]}..{ids[-1]}" if ids and ids[0] != ids[-1] else str(ids[0])


@evidence.command("export")
@_store_options
@click.option("--candidate", help="Only this candidate's records.")
@click.option("--metric", help="Only this metric's records.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="json",
              show_default=True, help="json and jsonl can be imported again; csv is for sheets.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File to write (default: "
              "standard output).")
@handle_errors
def export(evidence_path: str | None, decision_file: str | None, candidate: str | None,
           metric: str | None, fmt: str, output: str | None) -> None:
    """Write stored records as JSON, JSON lines or CSV."""
    path = resolve_evidence_path(evidence_path, decision_file)
    with EvidenceStore(path, create=False, readonly=True) as store:
        records = store.load(candidate, metric)
    text = dump_records(records, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EvidenceError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(records)} records to {output}", err=True)
