"""Run folders and launch outcomes.

Each launch gets ``.stackdecide/runs/<UTC time>-<candidate id>/`` with ``command.json`` (what was
started and why), ``server.log`` (the server's stdout and stderr) and ``outcome.json`` (a
``LaunchOutcome``: success or the classified failure, with the log lines that prove it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackdecide._files import write_json_atomic
from stackdecide.state import state_dir
from stackdecide.vllm import logs as failures

RUNS = "runs"
COMMAND_FILE = "command.json"
LOG_FILE = "server.log"
OUTCOME_FILE = "outcome.json"
OUTCOME_SCHEMA = "stackdecide/launch-outcome/v1"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def runs_dir(base: Path | None = None) -> Path:
    return state_dir(base) / RUNS


def run_dir_name(candidate_id: str, moment: datetime) -> str:
    return f"{moment:%Y%m%dT%H%M%SZ}-{candidate_id}"


# A run folder holds the command and log of a server, which may name what it was given: its
# owner's only (files in it are written 0600 too).
RUN_DIR_MODE = 0o700
RUN_FILE_MODE = 0o600


def create_run_dir(parent: Path, name: str) -> Path:
    """Create a fresh run folder, ``RUN_DIR_MODE``; a second launch in the same second gets a
    numbered suffix."""
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        path = parent / (name if attempt == 0 else f"{name}-{attempt + 1}")
        try:
            path.mkdir(mode=RUN_DIR_MODE)
            path.chmod(RUN_DIR_MODE)  # mkdir's mode passes through the umask
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name under {parent} for {name}")


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """A run file, indented for people, atomically (``_files.write_json_atomic``), readable by
    its owner only (``RUN_FILE_MODE``; the folder already keeps others out); values JSON cannot
    hold (paths, times) are written as text."""
    write_json_atomic(path, data, indent=2, default=str)
    path.chmod(RUN_FILE_MODE)


@dataclass(frozen=True)
class LaunchOutcome:
    """Everything known about one launch, successful or not.

    ``failure`` is one of the classes in ``engine.failures`` (``None`` when ``ok``); ``evidence``
    holds the server log lines behind it. ``startup_s`` runs from starting the process to the
    first answered completion.
    """

    ok: bool
    candidate_id: str
    decision_file: str | None
    engine_sha256: str
    run_dir: str
    failure: str | None = None
    reason: str | None = None
    evidence: tuple[str, ...] = ()
    startup_s: float | None = None
    phases: tuple[tuple[str, float], ...] = ()  # (phase, seconds after start) in order reached
    url: str | None = None
    served_model_name: str | None = None
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    pgid: int | None = None
    exit_code: int | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    problems: tuple[dict[str, Any], ...] = ()
    started_at: str | None = None
    # the server process's own start time (epoch seconds, psutil's): what ``stop`` matches a
    # live process against, with ``argv``, before it signals one (``leftovers``)
    process_started: float | None = None
    finished_at: str | None = None
    stop: dict[str, Any] | None = None  # how the process group ended, once it has
    compile_cache: str | None = None  # cold, warm or unknown (vllm.logs.compile_cache_state)
    compile_cache_dir: str | None = None  # the compile cache it used (vllm.logs.compile_cache_dir)
    compile_cache_error: str | None = None  # why vLLM could not load what that cache held
    # a warm start's cold counterpart here ({"startup_s", "run_dir"}): see cold_start_of
    cold_start: dict[str, Any] | None = None
    # the candidate's own environment: lock_sha256, path, distributions (name==version); empty
    # when it ran in an interpreter the user chose
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def fault(self) -> str | None:
        """Whose fault a failure is: ``candidate``, ``environment``, or None when it started."""
        if self.ok:
            return None
        codes = tuple(str(p.get("code")) for p in self.problems if p.get("severity") == "error")
        return failures.fault_of(self.failure, codes)

    @property
    def start(self) -> str:
        """How it started, as a launch says it: ``cold start``, ``warm start; cold start here
        131.2 s`` (when the cold start of the same configuration is known), ``unknown start``; a
        cold start that vLLM's cache should have spared says why it did not."""
        said = f"{self.compile_cache or 'unknown'} start"
        if self.cold_start is not None:
            said += f"; cold start here {self.cold_start['startup_s']:.1f} s"
        if self.compile_cache_error is not None:
            said += f"; vLLM could not load its cached graphs: {self.compile_cache_error[:120]}"
        return said

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = OUTCOME_SCHEMA
        data["phases"] = [{"phase": name, "at_s": at} for name, at in self.phases]
        return data

    def write(self) -> Path:
        path = Path(self.run_dir) / OUTCOME_FILE
        write_json(path, self.to_dict())
        return path


def read_lines(path: Path) -> list[str]:
    """A run's log as lines (undecodable bytes replaced); none when it cannot be read."""
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def read_outcome(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / OUTCOME_FILE).read_text())


def cold_start_of(outcome: LaunchOutcome, run_dirs: Iterable[Path]) -> dict[str, Any] | None:
    """For a warm start, the latest cold start among ``run_dirs`` of the same configuration
    (``engine_sha256``) that filled the compile cache it loaded from (``compile_cache_dir``, a
    folder on this machine): ``{"startup_s", "run_dir"}``; None for any other start, or when no
    such cold start is in those run folders."""
    if outcome.compile_cache != "warm" or outcome.compile_cache_dir is None:
        return None
    found: tuple[str, dict[str, Any]] | None = None
    for run_dir in run_dirs:
        if Path(run_dir).resolve() == Path(outcome.run_dir).resolve():
            continue
        try:
            earlier = read_outcome(run_dir)
        except (OSError, ValueError):
            continue
        if earlier.get("ok") and earlier.get("compile_cache") == "cold" \
                and earlier.get("startup_s") is not None \
                and earlier.get("engine_sha256") == outcome.engine_sha256 \
                and earlier.get("compile_cache_dir") == outcome.compile_cache_dir:
            started = str(earlier.get("started_at") or "")
            if found is None or started > found[0]:
                found = started, {"startup_s": earlier["startup_s"], "run_dir": str(run_dir)}
    return found[1] if found else None


def record_stop(run_dir: str | Path, stop: Mapping[str, Any], by: str, *, overwrite: bool = True,
                **defaults: Any) -> None:
    """Write into a run's ``outcome.json`` how its server was stopped and by whom.

    ``defaults`` fill fields the launcher left empty (``failure``, ``reason``); without
    ``overwrite`` a stop the launcher already recorded is kept as it is.
    """
    try:
        outcome = read_outcome(run_dir)
    except (OSError, ValueError):
        outcome = {}
    if outcome.get("stop") and not overwrite:
        return
    outcome.update({key: value for key, value in defaults.items() if not outcome.get(key)})
    outcome["stop"] = {**stop, "by": by, "at": iso(utc_now())}
    write_json(Path(run_dir) / OUTCOME_FILE, outcome)
