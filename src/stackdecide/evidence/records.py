"""Evidence records: one measured value of one metric for one candidate, with its provenance.

A record says what was measured (candidate, metric, value, unit, how many repeats and their spread),
under which load (scenario parameters such as concurrency and prompt length), on what (GPU and
driver; package versions; the sha256 of the engine configuration that ran) and where it came from
(timestamp, tool version, run id or imported file). Records are immutable and round-trip through
JSON unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stackdecide._text import csv_cell
from stackdecide._version import __version__
from stackdecide.errors import EvidenceError, Location
from stackdecide.model.metrics import (
    MAX_COUNT,
    MAX_MEASURED,
    METRICS,
    get_metric,
    scenario_problem,
    unknown_metric_message,
)
from stackdecide.model.schema import Identifier

EXPORT_FORMAT = "stackdecide-evidence/v1"
LEGACY_RUN = "run "  # how a launch's records named it in ``source`` before ``launch`` existed

ScenarioValue = str | int | float | bool
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class HardwareInfo(_Frozen):
    """The machine a measurement ran on, as the driver names it."""

    gpu: Annotated[str, Field(min_length=1)]
    vram_gb: Annotated[float, Field(gt=0, le=MAX_MEASURED, allow_inf_nan=False)] | None = None
    compute_capability: str | None = None
    driver: str | None = None
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1

    def __init__(self, **data: Any) -> None:
        # Built directly from command-line options (evidence add --vram-gb): the error must be
        # a located EvidenceError like every other, not pydantic's own.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise validation_error(exc, prefix="hardware") from None

    @field_validator("compute_capability", "driver", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class EvidenceRecord(_Frozen):
    """One measurement. ``id`` is assigned by the store and is None until the record is stored."""

    id: int | None = None
    candidate: Identifier
    metric: str
    value: FiniteFloat
    unit: str = ""  # the metric's unit when left out; another unit is an error
    repeats: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1  # runs summarised by ``value`` (median)
    # max - min of those runs
    spread: Annotated[float, Field(ge=0, le=MAX_MEASURED, allow_inf_nan=False)] | None = None
    # [low, high]: the value's 95% interval from within its one run, where the run gives one
    # (the quality scenario's bootstrap over prompts); it holds the value
    interval: tuple[FiniteFloat, FiniteFloat] | None = None
    scenario: dict[str, ScenarioValue] = {}
    hardware: HardwareInfo | None = None
    software: dict[str, str] = {}  # package -> installed version, e.g. {"vllm": "0.10.1.1"}
    config_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tool_version: str = __version__
    source: str | None = None  # run id or imported file
    note: str | None = None  # e.g. why launch_ok is 0, or how a value was derived
    # the launch (run folder) the record came from: records of one launch are one replicate
    launch: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise validation_error(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        metric = data.get("metric")
        if isinstance(metric, str) and metric in METRICS and not data.get("unit"):
            data = {**data, "unit": METRICS[metric].unit}
        source = data.get("source")
        if data.get("launch") is None and isinstance(source, str) and source.startswith(LEGACY_RUN):
            # records written before they named their launch said it only as "run <folder>"
            data = {**data, "launch": source.removeprefix(LEGACY_RUN)}
        return data

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(unknown_metric_message(value))
        return value

    @field_validator("value")
    @classmethod
    def _possible(cls, value: float, info: ValidationInfo) -> float:
        # A negative latency would win its criterion (lower is better): refuse anything outside
        # the metric's physical domain here, where every record passes, whatever made it.
        metric = METRICS.get(info.data.get("metric", ""))
        # 1/0 metrics have their own message, with the reason a 0 needs (``_consistent``)
        problem = metric.problem(value) if metric and not metric.boolean else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("scenario", mode="before")
    @classmethod
    def _flat_scenario(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(item, str | int | float | bool):
                    raise ValueError(f"scenario '{key}' must be a number, text or true/false, "
                                     f"got {type(item).__name__}")
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"scenario '{key}' is {item}; write it as text, e.g. \"inf\"")
                if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_COUNT:
                    raise ValueError(f"'{key}' is {_short(item)}, beyond {MAX_COUNT:g}")
                problem = scenario_problem(str(key), item)
                if problem:
                    raise ValueError(problem)
        return value

    @field_validator("software", mode="before")
    @classmethod
    def _versions_as_text(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: str(item) if isinstance(item, int | float) and not isinstance(item, bool)
                    else item for key, item in value.items()}
        return value

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # A timestamp without a zone is taken as UTC, so every stored time compares.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _consistent(self) -> EvidenceRecord:
        metric = METRICS[self.metric]
        if self.unit != metric.unit:
            raise ValueError(f"unit '{self.unit}' does not fit metric '{self.metric}', which is in "
                             f"'{metric.unit}'")
        if metric.boolean:
            if self.value not in (0.0, 1.0):
                raise ValueError(f"'{self.metric}' is 1 (yes) or 0 (no), got {self.value:g}")
            if self.value == 0.0 and not self.note:
                raise ValueError(f"'{self.metric}' = 0 needs the reason in 'note'")
        if self.interval is not None and not self.interval[0] <= self.value <= self.interval[1]:
            raise ValueError(f"interval [{self.interval[0]:g}, {self.interval[1]:g}] does not "
                             f"hold the value {self.value:g}")
        return self

    @property
    def scenario_key(self) -> str:
        """The scenario as canonical JSON text, as stored."""
        return json.dumps(self.scenario, sort_keys=True, separators=(",", ":"))

    @property
    def load(self) -> tuple[tuple[str, Any], ...]:
        """The load the record measured: its scenario by meaning (``scenario_value``), without
        the keys that say where a value came from (``PROVENANCE_KEYS``). Records with equal loads
        measured alike; the one rule every comparison of scenarios uses."""
        return tuple(sorted((key, scenario_value(value)) for key, value in self.scenario.items()
                            if key not in PROVENANCE_KEYS))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``EvidenceRecord.from_dict`` reads it back to an equal record."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_dict(cls, data: Any, location: Location | None = None) -> EvidenceRecord:
        """Validate a dict read from a file; errors name ``location`` and the field."""
        if not isinstance(data, Mapping):
            raise RecordError(f"expected an evidence record (a JSON object), got "
                              f"{type(data).__name__}", None, location)
        try:
            return cls(**data)
        except EvidenceError as exc:
            raise _relocate(exc, location) from None


class RecordError(EvidenceError):
    """An invalid record; ``field`` is the path of the bad field inside the record, if any."""

    def __init__(self, message: str, field: str | None = None,
                 location: Location | None = None) -> None:
        # Without a file to name, the field leads the message: "metric: unknown metric ...".
        shown = f"{field}: {message}" if field and location is None else message
        super().__init__(shown, location)
        self.bare_message = message
        self.field = field


def _relocate(exc: EvidenceError, location: Location | None) -> EvidenceError:
    """The same error placed inside ``location`` (file, line, and the record's own field path)."""
    if location is None or not isinstance(exc, RecordError):
        return exc
    path = ".".join(part for part in (location.field, exc.field) if part) or None
    return RecordError(exc.bare_message, exc.field,
                       Location(location.file, location.line, location.column, path))


def validation_error(exc: ValidationError, location: Location | None = None,
                     prefix: str | None = None) -> EvidenceError:
    """The first pydantic error as an ``EvidenceError`` naming the field (below ``prefix``)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(first["loc"]))
    if first["type"] == "extra_forbidden":
        message = f"unknown field '{first['loc'][-1]}'"
        if len(first["loc"]) == 1 and prefix is None:
            message += f"; fields: {', '.join(EvidenceRecord.model_fields)}"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "value_error":
        message = str(first["msg"]).removeprefix("Value error, ")
    else:
        message = f"{_short(first.get('input'), 60)}: {first['msg']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return _relocate(RecordError(message, field or None), location)


def _short(value: Any, width: int = 40) -> str:
    try:
        shown = repr(value)
    except ValueError:  # an int too long for repr (Python refuses over 4300 digits)
        shown = f"a {value.bit_length()}-bit number" if isinstance(value, int) else "?"
    return shown if len(shown) <= width else shown[: width - 3] + "..."


# where a value came from, not what load it measured: the prompt seed, the GPUs a candidate ran
# on and who ran beside it (schedule.tournament)
PROVENANCE_KEYS = frozenset({"seed", "gpus", "beside"})


def parse_scenario_value(text: str) -> ScenarioValue:
    """``"8"`` -> 8, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            return text.strip()
        return number
    return text.strip()


def scenario_value(value: Any) -> Any:
    """A scenario value by meaning, for comparing: 8 == 8.0 == "8", and infinity is "inf"."""
    if isinstance(value, str):
        value = parse_scenario_value(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return "inf" if math.isinf(value) else float(value)
    return value


def replicates(records: Sequence[EvidenceRecord]) -> tuple[tuple[str, float], ...]:
    """One value per launch, ``(launch, median of its records)``, sorted by launch.

    The records of one launch (one server start) are one replicate: the noise that separates
    candidates lives between restarts. A record that names no launch is its import's (``source``);
    one with neither is a launch of its own.
    """
    groups: dict[str, list[float]] = defaultdict(list)
    for index, record in enumerate(records):
        key = record.launch or record.source or \
            f"record {record.id if record.id is not None else index}"
        groups[key].append(record.value)
    return tuple((key, float(statistics.median(groups[key]))) for key in sorted(groups))


@dataclass(frozen=True)
class EvidenceSet:
    """An immutable collection of evidence records, in the order they were stored."""

    records: tuple[EvidenceRecord, ...] = ()

    @classmethod
    def of(cls, records: Iterable[EvidenceRecord]) -> EvidenceSet:
        return cls(tuple(records))

    def __iter__(self) -> Iterator[EvidenceRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def filter(self, candidate: str | None = None, metric: str | None = None) -> EvidenceSet:
        if metric is not None:
            get_metric(metric)
        return EvidenceSet(tuple(r for r in self.records
                                 if (candidate is None or r.candidate == candidate)
                                 and (metric is None or r.metric == metric)))

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.candidate for r in self.records))

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.metric for r in self.records))

    def to_json(self) -> str:
        return dump_json(self.records)


# -- text formats ------------------------------------------------------------------------------
def dump_json(records: Iterable[EvidenceRecord]) -> str:
    """Our export format: ``{"format": "stackdecide-evidence/v1", "records": [...]}``."""
    payload = {"format": EXPORT_FORMAT, "tool_version": __version__,
               "records": [record.to_dict() for record in records]}
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


def dump_jsonl(records: Iterable[EvidenceRecord]) -> str:
    """One record per line; appending lines of several exports stays valid."""
    return "".join(json.dumps(record.to_dict(), separators=(",", ":"), allow_nan=False) + "\n"
                   for record in records)


CSV_COLUMNS = ("id", "candidate", "metric", "value", "unit", "repeats", "spread", "scenario", "gpu",
               "gpu_count", "vram_gb", "compute_capability", "driver", "software", "config_sha256",
               "timestamp", "tool_version", "source", "note", "launch", "interval")


def dump_csv(records: Iterable[EvidenceRecord]) -> str:
    """A flat table for spreadsheets; scenario and software are JSON text in their cells, and
    text a spreadsheet would run as a formula is written with a leading ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in records:
        hw = r.hardware
        writer.writerow(map(csv_cell, [
            r.id, r.candidate, r.metric, repr(r.value), r.unit, r.repeats,
            "" if r.spread is None else repr(r.spread), r.scenario_key,
            hw.gpu if hw else "", hw.count if hw else "",
            "" if hw is None or hw.vram_gb is None else hw.vram_gb,
            (hw.compute_capability or "") if hw else "", (hw.driver or "") if hw else "",
            json.dumps(r.software, sort_keys=True, separators=(",", ":")), r.config_sha256 or "",
            r.timestamp.isoformat(), r.tool_version, r.source or "", r.note or "", r.launch or "",
            "" if r.interval is None else json.dumps(list(r.interval)),
        ]))
    return out.getvalue()


ExportFormat = Literal["json", "jsonl", "csv"]  # json and jsonl import again; csv is for sheets
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)


def dump_records(records: Iterable[EvidenceRecord], fmt: ExportFormat | str) -> str:
    """Records as text in one of ``EXPORT_FORMATS``."""
    dumps = {"json": dump_json, "jsonl": dump_jsonl, "csv": dump_csv}
    if fmt not in dumps:
        raise EvidenceError(f"unknown export format '{fmt}'; choose {', '.join(EXPORT_FORMATS)}")
    return dumps[fmt](records)
