"""Start a planned vLLM server, wait until it answers, and always stop what was started.

``launch_server`` is the context manager the benchmark loop uses::

    with launch_server(decision, "cpu-default", LaunchOptions(port=None)) as server:
        ...  # server.url, server.served_model_name, server.pid, server.pgid, server.startup_s

The server runs in its own session and process group (``start_new_session``), bound to 127.0.0.1
unless told otherwise, logging to its run folder. On leaving the block, on an error, on Ctrl-C or
SIGTERM, the whole group gets SIGTERM, a grace period, then SIGKILL, and the launcher checks with
``os.killpg(pgid, 0)`` that nothing of it is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from stackdecide.audit.engine_config import API_KEY_VARIABLE, auth_header, redact_text
from stackdecide.decision import Decision
from stackdecide.errors import EngineError
from stackdecide.launch.leftovers import process_of, run_folders
from stackdecide.launch.plan import (
    READY_PROMPT,
    LaunchOptions,
    LaunchPlan,
    LaunchRefused,
    Progress,
    plan_launch,
)
from stackdecide.launch.process import (
    DEFAULT_GRACE_S,
    StopReport,
    signals_interrupt,
    stop_process_group,
)
from stackdecide.launch.real_model import prepare_real_model, real_model_in
from stackdecide.launch.runs import (
    COMMAND_FILE,
    LOG_FILE,
    OUTCOME_FILE,
    RUN_FILE_MODE,
    LaunchOutcome,
    cold_start_of,
    create_run_dir,
    iso,
    read_lines,
    run_dir_name,
    utc_now,
    write_json,
)
from stackdecide.launch.scaffold import SCAFFOLD_PLACEHOLDER, shared_scaffold
from stackdecide.launch.supervision import Supervisor, start_supervisor
from stackdecide.model.problems import errors
from stackdecide.vllm import logs as failures
from stackdecide.vllm.probe import probe_cpu


class LaunchFailed(EngineError):
    """A launch that did not become ready; ``outcome`` says why, with the log lines."""

    def __init__(self, outcome: LaunchOutcome) -> None:
        lines = "\n".join(f"  | {line}" for line in outcome.evidence)
        super().__init__(f"launch of '{outcome.candidate_id}' failed: {outcome.failure}: "
                         f"{outcome.reason}" + (f"\n{lines}" if lines else "")
                         + f"\n  run folder: {outcome.run_dir}")
        self.outcome = outcome


@dataclass
class ServerHandle:
    """A running server started by ``launch_server`` or ``start_server``."""

    url: str
    served_model_name: str
    pid: int
    pgid: int
    run_dir: Path
    startup_s: float
    outcome: LaunchOutcome
    process: subprocess.Popen[bytes] = field(repr=False)
    grace_s: float = DEFAULT_GRACE_S
    stopped: StopReport | None = None
    supervisor: Supervisor | None = field(default=None, repr=False)
    # the key the server requires (VLLM_API_KEY in its environment): clients send it as a bearer
    api_key: str | None = field(default=None, repr=False)
    secret_values: tuple[str, ...] = field(default=(), repr=False)  # blanked out of log lines

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_FILE

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        """Raise ``LaunchFailed`` with the classified reason if the server has died."""
        code = self.process.poll()
        if code is None:
            return
        found = failures.classify(read_lines(self.log_path), code)
        failure, reason = found.failure, found.reason
        if code < 0 and failure == failures.ENGINE_DIED:  # a signal nobody in this launch sent
            failure, reason = failures.KILLED, (f"killed from outside by signal {-code} after "
                                                "start-up")
        raise LaunchFailed(replace(
            self.outcome, ok=False, failure=failure,
            reason=redact_text(f"the server died after start-up: {reason}", self.secret_values),
            evidence=tuple(redact_text(line, self.secret_values) for line in found.evidence),
            exit_code=code))

    def stop(self) -> StopReport:
        """Stop the whole process group (idempotent) and record how it ended."""
        if self.stopped is None:
            self.stopped = stop_process_group(self.process, self.pgid, self.grace_s)
            self.outcome = replace(self.outcome,
                                   stop={**self.stopped.to_dict(), "at": iso(utc_now())})
            with contextlib.suppress(OSError):
                self.outcome.write()
            if self.supervisor is not None:
                self.supervisor.release("done")
        return self.stopped

    def detach(self) -> None:
        """Leave the server running after this process ends (``--keep``)."""
        if self.supervisor is not None:
            self.supervisor.release("detach")


FATAL_GRACE_S = 15.0


class _LogFollower:
    """Reads new lines of the server log and reports each start-up phase once."""

    def __init__(self, path: Path, started: float, report: Callable[[Progress], None],
                 secret_values: tuple[str, ...] = ()) -> None:
        self.path, self.started, self.report = path, started, report
        self.secret_values = secret_values
        self.offset = 0
        self.partial = ""
        self.phases: list[tuple[str, float]] = []
        self.fatal_at: float | None = None  # when a line said start-up cannot go on

    def poll(self) -> None:
        try:
            with self.path.open("r", errors="replace") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
                self.offset = handle.tell()
        except OSError:
            return
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            if self.fatal_at is None and failures.is_fatal_at_start(line):
                self.fatal_at = time.monotonic()
            phase = failures.phase_of(line)
            if phase and phase not in (name for name, _ in self.phases):
                at = round(time.monotonic() - self.started, 3)
                self.phases.append((phase, at))
                self.report(Progress(phase, at, redact_text(line.strip(), self.secret_values)))


def _http(url: str, payload: dict[str, Any] | None = None, timeout: float = 5.0,
          api_key: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **auth_header(api_key)}
    request = urllib.request.Request(url, data=json.dumps(payload).encode() if payload else None,
                                     headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(request, timeout=timeout) as response:
        body = response.read()
        return json.loads(body) if body else None


def _ready_step(url: str, served: str, reached: set[str], api_key: str | None = None
                ) -> str | None:
    """Advance readiness by one step; returns the step just passed, or None if not yet. Every
    request carries ``api_key`` as a bearer token when the server has one."""
    try:
        if "health" not in reached:
            _http(f"{url}/health", timeout=2, api_key=api_key)
            return "health"
        if "models" not in reached:
            models = _http(f"{url}/v1/models", api_key=api_key)
            ids = [m.get("id") for m in (models or {}).get("data", [])]
            if served not in ids:
                raise EngineError(f"/v1/models lists {ids}, not '{served}'")
            return "models"
        answer = _http(f"{url}/v1/completions", {"model": served, "prompt": READY_PROMPT,
                                                 "max_tokens": 1, "temperature": 0}, timeout=60,
                       api_key=api_key)
        if not (answer or {}).get("choices"):
            raise EngineError(f"/v1/completions answered without choices: {answer}")
        return "completion"
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None


def _outcome(plan: LaunchPlan, run_dir: Path, **values: Any) -> LaunchOutcome:
    command = plan.command
    cpu = probe_cpu()
    return LaunchOutcome(
        candidate_id=plan.candidate_id, decision_file=plan.decision_file,
        engine_sha256=plan.engine_sha256, run_dir=str(run_dir), url=plan.url,
        served_model_name=plan.served_model_name,
        argv=command.argv if command else (), env=command.shown_env if command else {},
        versions=asdict(plan.runtime),
        hardware={"gpus": [asdict(g) for g in plan.gpu.gpus], "gpu_indices": list(plan.gpu_indices),
                  "interconnect": plan.interconnect, "layout": plan.layout,
                  "driver": plan.gpu.driver,
                  "cuda_driver": plan.gpu.cuda_driver, "gpu_unavailable": plan.gpu.unavailable,
                  "cpu": asdict(cpu)},
        problems=tuple(p.to_dict() for p in plan.problems),
        environment=plan.environment_record(), **values)


def _materialize(plan: LaunchPlan, scaffold: bool = True) -> tuple[LaunchPlan, Path]:
    """Create the run folder, find or write the shared scaffold for dummy weights (or prepare
    the real model a plan serves), and point the command's model path at it."""
    # a real model is prepared before the run folder exists: a failure leaves no folder behind
    real = real_model_in(plan.command.argv) if scaffold and plan.command is not None else None
    if real is not None and plan.command is not None:
        folder = str(prepare_real_model(real.name).path)
        argv = tuple(folder if word == real.placeholder else word for word in plan.command.argv)
        plan = replace(plan, command=replace(plan.command, argv=argv))
    run_dir = create_run_dir(plan.runs_parent, run_dir_name(plan.candidate_id, utc_now()))
    model_dir = None
    if scaffold and plan.scaffold_shape and plan.command is not None:
        model_dir = shared_scaffold(plan.scaffold_shape, fp8=plan.scaffold_fp8).path
        argv = tuple(str(model_dir) if word == SCAFFOLD_PLACEHOLDER else word
                     for word in plan.command.argv)
        plan = replace(plan, command=replace(plan.command, argv=argv))
    write_json(run_dir / COMMAND_FILE, {  # secrets as *** (plan.engine and plan.env hold none)
        "candidate_id": plan.candidate_id, "decision_file": plan.decision_file,
        "argv": list(plan.command.argv) if plan.command else None,
        "env": plan.command.shown_env if plan.command else plan.env,
        "shell": plan.command.shell() if plan.command else None,
        "cwd": os.getcwd(), "url": plan.url, "served_model_name": plan.served_model_name,
        "vllm_version": plan.runtime.vllm, "python": plan.runtime.python,
        "environment": plan.environment_record(),
        "engine": plan.engine, "engine_sha256": plan.engine_sha256,
        "rendered": plan.command.rendered if plan.command else {},
        "scaffold_shape": plan.scaffold_shape, "scaffold_dir": model_dir,
        "problems": [p.to_dict() for p in plan.problems], "notes": list(plan.notes),
        "created_at": iso(utc_now())})
    return plan, run_dir


def _earlier_runs(plan: LaunchPlan) -> set[Path]:
    """Run folders that may hold earlier starts of a plan: those beside its own, and every run
    folder of ``.stackdecide/`` here (the demos' included)."""
    beside = {path.parent for path in plan.runs_parent.glob(f"*/{OUTCOME_FILE}")}
    return {path.resolve() for path in beside | set(run_folders())}


def _refuse(plan: LaunchPlan, started_at: str) -> LaunchRefused:
    plan_dir = _materialize(plan, scaffold=False)[1]
    outcome = _outcome(plan, plan_dir, ok=False, failure=failures.REFUSED,
                       reason="; ".join(p.message for p in errors(plan.problems))
                       or "vLLM's arguments are unknown", started_at=started_at,
                       finished_at=started_at)
    outcome.write()
    return LaunchRefused(plan, outcome)


class _Startup:
    """One engine process from spawn to ready: its group, its supervisor, its log, its outcome."""

    def __init__(self, plan: LaunchPlan, run_dir: Path, options: LaunchOptions,
                 started_at: str) -> None:
        assert plan.command is not None  # plan.ok guarantees it
        self.plan, self.options = plan, options
        self.report = options.on_progress or (lambda event: None)
        self.log_path = run_dir / LOG_FILE
        self.started = time.monotonic()
        environment = {**os.environ, **plan.command.env}
        self.api_key = environment.get(API_KEY_VARIABLE) or None
        # the log may repeat what the server was given: readable by its owner only
        with open(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, RUN_FILE_MODE),
                  "wb") as log:
            self.process = subprocess.Popen(
                list(plan.command.argv), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=environment, start_new_session=True)
        self.pgid = self.process.pid  # a new session: the child leads its own process group
        self.supervisor = start_supervisor(self.pgid, run_dir, options.grace_s)
        self.report(Progress("started", 0.0, f"PID {self.process.pid}, process group {self.pgid}"))
        self.follower = _LogFollower(self.log_path, self.started, self.report,
                                     plan.secret_values)
        self.base = _outcome(plan, run_dir, ok=False, pid=self.process.pid, pgid=self.pgid,
                             started_at=started_at,
                             process_started=started.started
                             if (started := process_of(self.process.pid)) else None)
        self.base.write()

    def fail(self, failure: str, reason: str, evidence: tuple[str, ...] = (),
             code: int | None = None) -> LaunchOutcome:
        """Stop the group, record why the start failed, and release the supervisor."""
        self.follower.poll()
        stop = stop_process_group(self.process, self.pgid, self.options.grace_s)
        secrets = self.plan.secret_values
        outcome = replace(self.base, failure=failure, reason=redact_text(reason, secrets),
                          evidence=tuple(redact_text(line, secrets) for line in evidence),
                          exit_code=code if code is not None else self.process.returncode,
                          phases=tuple(self.follower.phases), finished_at=iso(utc_now()),
                          stop={**stop.to_dict(), "at": iso(utc_now())})
        outcome.write()
        self.supervisor.release("done")
        return outcome

    def _timeout(self, reached: set[str]) -> LaunchFailed:
        steps = ", ".join(sorted(reached)) or "none"
        phase = self.follower.phases[-1][0] if self.follower.phases else "none"
        lines = failures.error_lines(read_lines(self.log_path))[-4:]
        return LaunchFailed(self.fail(
            failures.TIMEOUT, f"not ready after {self.options.timeout_s:g} s (last phase: {phase}; "
            f"readiness steps passed: {steps}); raise --timeout for a first start", tuple(lines)))

    def _gave_up(self) -> bool:
        """The engine logged a fatal start-up error and has not exited within a grace period
        (its own teardown gets the chance to finish and say more first)."""
        fatal_at = self.follower.fatal_at
        return fatal_at is not None and time.monotonic() - fatal_at > FATAL_GRACE_S

    def wait_ready(self) -> None:
        """Poll the log, the process and the readiness steps until a completion is answered."""
        reached: set[str] = set()
        served = self.plan.served_model_name or ""
        while True:
            self.follower.poll()
            code = self.process.poll()
            if code is not None:
                found = failures.classify(read_lines(self.log_path), code)
                raise LaunchFailed(self.fail(found.failure, found.reason, found.evidence, code))
            elapsed = time.monotonic() - self.started
            if self._gave_up():
                found = failures.classify(read_lines(self.log_path))
                raise LaunchFailed(self.fail(found.failure, found.reason, found.evidence))
            if elapsed > self.options.timeout_s:
                raise self._timeout(reached)
            step = _ready_step(self.plan.url, served, reached, self.api_key)
            if step is None:
                time.sleep(0.5)
                continue
            reached.add(step)
            self.report(Progress(f"ready: {step}", round(elapsed, 3)))
            if step == "completion":
                return


def start_server(plan: LaunchPlan, options: LaunchOptions | None = None) -> ServerHandle:
    """Start a planned server and wait until it answers a completion.

    Raises ``LaunchRefused`` when preflight found errors and ``LaunchFailed`` when the server did
    not become ready; in both cases nothing started is left running and ``outcome.json`` is
    written. The caller owns the returned handle and must ``stop()`` it (``launch_server`` does).
    A supervisor process stops the server if this process dies before it does (see
    ``launch.supervisor``).
    """
    options = options or LaunchOptions()
    started_at = iso(utc_now())
    if not plan.ok:
        raise _refuse(plan, started_at)
    plan, run_dir = _materialize(plan)
    startup = _Startup(plan, run_dir, options, started_at)
    try:
        with signals_interrupt():
            startup.wait_ready()
    except KeyboardInterrupt:
        startup.fail(failures.INTERRUPTED, "interrupted during start-up; the process group was "
                     "stopped")
        raise
    except LaunchFailed:
        raise
    except EngineError as exc:  # the server answered, but not as a ready server should
        raise LaunchFailed(startup.fail(failures.NOT_READY, exc.message)) from None
    except BaseException as exc:
        startup.fail(failures.ENGINE_DIED, f"the launcher failed while waiting: {exc!r}")
        raise
    startup_s = round(time.monotonic() - startup.started, 3)
    lines = read_lines(startup.log_path)
    outcome = replace(startup.base, ok=True, startup_s=startup_s,
                      phases=tuple(startup.follower.phases), finished_at=iso(utc_now()),
                      compile_cache=failures.compile_cache_state(lines),
                      compile_cache_dir=failures.compile_cache_dir(lines),
                      compile_cache_error=_redacted(failures.compile_cache_load_error(lines),
                                                    plan.secret_values))
    outcome = replace(outcome, cold_start=cold_start_of(outcome, _earlier_runs(plan)))
    outcome.write()
    return ServerHandle(plan.url, plan.served_model_name or "", startup.process.pid, startup.pgid,
                        run_dir, startup_s, outcome, startup.process, options.grace_s,
                        supervisor=startup.supervisor, api_key=startup.api_key,
                        secret_values=plan.secret_values)


def _redacted(text: str | None, secret_values: tuple[str, ...]) -> str | None:
    return None if text is None else redact_text(text, secret_values)


@contextlib.contextmanager
def launch_server(decision: Decision, candidate_id: str, options: LaunchOptions | None = None, *,
                  plan: LaunchPlan | None = None) -> Iterator[ServerHandle]:
    """Start a candidate's server for the duration of a ``with`` block.

    The server is stopped when the block ends, however it ends, unless ``options.keep`` is set
    and the block ended normally.
    """
    options = options or LaunchOptions()
    plan = plan or plan_launch(decision, candidate_id, options)
    server = start_server(plan, options)
    keep = False
    try:
        with signals_interrupt():
            yield server
        keep = options.keep
    finally:
        if keep:
            server.detach()
        else:
            server.stop()


@dataclass(frozen=True)
class ServeEnd:
    """How serving in the foreground ended: the stop, and the failure if the server died."""

    stop: StopReport
    error: LaunchFailed | None = None


def serve_until_interrupted(server: ServerHandle, poll_s: float = 1.0) -> ServeEnd:
    """Keep a started server until Ctrl-C, SIGTERM or SIGHUP, or until it dies; then stop it."""
    error = None
    try:
        with signals_interrupt():
            while server.alive():
                time.sleep(poll_s)
            server.check()
    except KeyboardInterrupt:
        pass
    except LaunchFailed as exc:
        error = exc
    finally:
        stop = server.stop()
    return ServeEnd(stop, error)
