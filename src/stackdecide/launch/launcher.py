"""Start a candidate's vLLM server, wait until it answers, and always stop what was started.

``plan_launch`` renders and preflights without starting anything (``launch --dry-run``).
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
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from stackdecide.audit import engine_config
from stackdecide.decision import Decision
from stackdecide.errors import EngineError, StackdecideError
from stackdecide.launch import preflight
from stackdecide.launch.runs import (
    COMMAND_FILE,
    LOG_FILE,
    LaunchOutcome,
    create_run_dir,
    engine_sha256,
    iso,
    run_dir_name,
    runs_dir,
    utc_now,
    write_json,
)
from stackdecide.launch.scaffold import scaffold_model
from stackdecide.model.problems import Problem, errors
from stackdecide.state import last_decision
from stackdecide.vllm import logs as failures
from stackdecide.vllm.args import VllmArgSpec, load_arg_spec
from stackdecide.vllm.probe import (
    GpuReport,
    RuntimeVersions,
    probe_cpu,
    probe_gpus,
    probe_runtime,
    vllm_python,
)
from stackdecide.vllm.render import RenderedCommand, render

DEFAULT_TIMEOUT_S = 900.0  # a first GPU start compiles kernels and fills caches for minutes
DEFAULT_GRACE_S = 20.0
READY_PROMPT = "Hello"


@dataclass(frozen=True)
class LaunchOptions:
    host: str = "127.0.0.1"
    port: int | None = 8000  # None: pick a free port
    timeout_s: float = DEFAULT_TIMEOUT_S
    dummy_weights: bool = False
    keep: bool = False  # leave the server running when the launcher exits
    python: str | None = None  # interpreter that runs vLLM (default: see probe.vllm_python)
    runs_dir: Path | None = None  # default .stackdecide/runs in the current directory
    grace_s: float = DEFAULT_GRACE_S
    env: Mapping[str, str] = field(default_factory=dict)  # added to the candidate's env
    on_progress: Callable[[Progress], None] | None = None


@dataclass(frozen=True)
class Progress:
    """A start-up event: a phase reached (from the log) or a readiness step."""

    phase: str
    elapsed_s: float
    line: str | None = None


@dataclass(frozen=True)
class LaunchPlan:
    """What ``launch`` would start, and everything preflight found. Nothing has started yet."""

    candidate_id: str
    decision_file: str | None
    engine: dict[str, Any]  # as written in the decision file
    env: dict[str, str]  # candidate env plus launcher defaults, before rendering
    engine_sha256: str
    command: RenderedCommand | None  # None when vLLM could not be asked for its arguments
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    host: str
    port: int
    runtime: RuntimeVersions
    gpu: GpuReport
    target: engine_config.TargetHardware | None
    scaffold_shape: str | None = None  # set when serving dummy weights
    scaffold_fp8: bool = False
    runs_parent: Path = Path(".stackdecide/runs")

    @property
    def ok(self) -> bool:
        return self.command is not None and not errors(self.problems)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '::') else host}:{self.port}"

    @property
    def served_model_name(self) -> str | None:
        return self.command.served_model_name if self.command else None


class LaunchFailed(EngineError):
    """A launch that did not become ready; ``outcome`` says why, with the log lines."""

    def __init__(self, outcome: LaunchOutcome) -> None:
        lines = "\n".join(f"  | {line}" for line in outcome.evidence)
        super().__init__(f"launch of '{outcome.candidate_id}' failed: {outcome.failure}: "
                         f"{outcome.reason}" + (f"\n{lines}" if lines else "")
                         + f"\n  run folder: {outcome.run_dir}")
        self.outcome = outcome


class LaunchRefused(EngineError):
    """Preflight refused the configuration; nothing was started."""

    def __init__(self, plan: LaunchPlan, outcome: LaunchOutcome | None = None) -> None:
        reasons = [str(p) for p in errors(plan.problems)] or ["vLLM's arguments are unknown"]
        super().__init__(f"refused to launch '{plan.candidate_id}':\n  " + "\n  ".join(reasons))
        self.plan = plan
        self.outcome = outcome


# -- choosing what to launch -------------------------------------------------------------------

def resolve_decision_file(file: str | None, base: Path | None = None) -> tuple[Path, str]:
    """The decision file to use and a sentence saying why it was chosen."""
    if file:
        return Path(file), f"using {file}"
    base = base or Path.cwd()
    last = last_decision(base)
    if last is not None:
        return last, f"using {last} (the decision last scored here)"
    criteria = sorted((base / "criteria").glob("*.y*ml")) if (base / "criteria").is_dir() else []
    if len(criteria) == 1:
        return criteria[0], f"using {criteria[0]} (the only decision file in criteria/)"
    found = f" (criteria/ holds {len(criteria)} files)" if criteria else ""
    raise StackdecideError("which decision? pass FILE, or run `stackdecide score FILE` here "
                           f"first so launch can use the decision last scored{found}")


def winner_id(decision: Decision) -> str:
    winner = decision.score().winner
    if winner is None:
        raise StackdecideError("no feasible candidate: every candidate breaks a constraint")
    return winner


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def launcher_env(candidate_env: Mapping[str, str], model: engine_config.ModelFacts,
                 target: engine_config.TargetHardware | None) -> tuple[dict[str, str], list[str]]:
    """The candidate's environment plus the launcher's defaults, and a note for each default."""
    env = dict(candidate_env)
    notes = []
    if "PYTHONUNBUFFERED" not in env:
        env["PYTHONUNBUFFERED"] = "1"  # log lines arrive as they happen: progress reads them
    capability = target.compute_capability if target else None
    hopper = target is not None and target.device == "gpu" and bool(capability) and \
        str(capability).startswith("9.")
    deep_gemm_set = "VLLM_USE_DEEP_GEMM" in env or "VLLM_DEEP_GEMM_WARMUP" in env
    if hopper and model.weights and "block" in model.weights.lower() and not deep_gemm_set:
        env["VLLM_USE_DEEP_GEMM"] = "0"
        notes.append("VLLM_USE_DEEP_GEMM=0: block-FP8 on Hopper would select DeepGEMM, whose "
                     "warm-up JIT-compiles ~1100 kernels (~20 min); Cutlass block-FP8 kernels "
                     "start in minutes. Set VLLM_USE_DEEP_GEMM in the candidate's env to choose.")
    return env, notes


def plan_launch(decision: Decision, candidate_id: str, options: LaunchOptions | None = None, *,
                spec: VllmArgSpec | None = None, gpu: GpuReport | None = None,
                runtime: RuntimeVersions | None = None) -> LaunchPlan:
    """Render and preflight a candidate's server; starts nothing, writes nothing."""
    options = options or LaunchOptions()
    candidate = decision.candidate(candidate_id)
    meta = decision.model.decision
    engine = dict(candidate.engine)
    written_env = {**candidate.env, **options.env}
    python = vllm_python(options.python)
    gpu = gpu if gpu is not None else probe_gpus()
    runtime = runtime or probe_runtime(python)
    problems: list[Problem] = []
    notes: list[str] = []
    model = engine_config.model_facts(engine, meta.model)
    dummy = options.dummy_weights or engine.get("load_format") == "dummy"
    if dummy and model.fp8_checkpoint:  # the scaffold is block-FP8, whatever the id said
        model = replace(model, weights="fp8-block")
    target = preflight.target_hardware(gpu.gpus, meta.hardware, preflight.visible_gpu_index())
    if target is not None and target.device == "gpu" and not gpu.gpus:
        notes.append(f"no GPU visible ({gpu.unavailable}); memory checks use {target.source}")
    env, env_notes = launcher_env(written_env, model, target)
    notes += env_notes

    served_name: str | None = None
    scaffold_shape = None
    runs_parent = options.runs_dir or runs_dir()
    effective = dict(engine)
    if dummy:
        shape = meta.model.shape if meta.model else None
        if shape is None:
            problems.append(Problem("no-model-shape", "dummy weights need decision.model.shape "
                                    "(e.g. qwen3-4b) to scaffold the model directory",
                                    "decision.model.shape"))
        else:
            scaffold_shape = shape
            served_name = str(engine.get("served_model_name") or (meta.model.id if meta.model
                                                                   else None) or shape)
            effective["model"] = "<run folder>/model"  # made real when the run folder exists
            effective["load_format"] = "dummy"
            notes.append(f"dummy weights: model shape {shape} is scaffolded into the run folder "
                         f"and served as '{served_name}' (--load-format dummy)")

    try:
        spec = spec or load_arg_spec(python, runtime)
    except EngineError as exc:
        problems.append(Problem("vllm-unavailable", exc.message, "--python"))
        spec = None
    port = options.port if options.port is not None else free_port(options.host)
    command = None
    if spec is not None:
        command = render(effective, spec, host=options.host, port=port,
                         served_model_name=served_name, env=env, python=python)
        problems += command.problems
    problems += preflight.static_problems(engine, env, model, target, spec)
    visible = next((g for g in gpu.gpus if g.index == preflight.visible_gpu_index()), None)
    problems += preflight.check_free_memory(engine, visible,
                                            preflight.parser_default_utilization(spec),
                                            _process_groups(visible))
    problems += preflight.check_port(preflight.port_state(options.host, port))
    problems += preflight.check_stack(candidate.stack, runtime)
    return LaunchPlan(candidate_id, decision.source_file, engine, env,
                      engine_sha256(candidate.engine, candidate.env), command, tuple(problems),
                      tuple(notes), options.host, port, runtime, gpu, target, scaffold_shape,
                      model.fp8_checkpoint, runs_parent)


def _process_groups(gpu: Any) -> dict[int, int]:
    groups = {}
    for process in getattr(gpu, "processes", ()):
        with contextlib.suppress(OSError):
            groups[process.pid] = os.getpgid(process.pid)
    return groups


# -- the running server ------------------------------------------------------------------------

@dataclass(frozen=True)
class StopReport:
    signal: str | None  # the last signal sent: SIGTERM, SIGKILL, or None if already gone
    waited_s: float
    left: tuple[int, ...] = ()  # PIDs still alive after SIGKILL (should be empty)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group; empty when the group is gone."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    try:
        import psutil
    except ImportError:
        return [pgid]
    members = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def stop_process_group(process: subprocess.Popen[bytes], pgid: int,
                       grace_s: float = DEFAULT_GRACE_S) -> StopReport:
    """SIGTERM the group, wait up to ``grace_s``, SIGKILL what is left; reap our child."""
    start = time.monotonic()
    sent: str | None = None
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        process.poll()
        if not group_members(pgid):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
            sent = sig.name
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            process.poll()  # reap our direct child so it does not linger as a zombie
            if not group_members(pgid):
                break
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return StopReport(sent, round(time.monotonic() - start, 3), tuple(group_members(pgid)))


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
        found = failures.classify(_read_lines(self.log_path), code)
        raise LaunchFailed(replace(self.outcome, ok=False, failure=found.failure,
                                   reason=f"the server died after start-up: {found.reason}",
                                   evidence=found.evidence, exit_code=code))

    def stop(self) -> StopReport:
        """Stop the whole process group (idempotent) and record how it ended."""
        if self.stopped is None:
            self.stopped = stop_process_group(self.process, self.pgid, self.grace_s)
            self.outcome = replace(self.outcome,
                                   stop={**self.stopped.to_dict(), "at": iso(utc_now())})
            with contextlib.suppress(OSError):
                self.outcome.write()
        return self.stopped


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C does, so the
    cleanup that stops a server runs however the launcher is asked to end (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _LogFollower:
    """Reads new lines of the server log and reports each start-up phase once."""

    def __init__(self, path: Path, started: float, report: Callable[[Progress], None]) -> None:
        self.path, self.started, self.report = path, started, report
        self.offset = 0
        self.partial = ""
        self.phases: list[tuple[str, float]] = []

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
            phase = failures.phase_of(line)
            if phase and phase not in (name for name, _ in self.phases):
                at = round(time.monotonic() - self.started, 3)
                self.phases.append((phase, at))
                self.report(Progress(phase, at, line.strip()))


def _http(url: str, payload: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=json.dumps(payload).encode() if payload else None,
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(request, timeout=timeout) as response:
        body = response.read()
        return json.loads(body) if body else None


def _ready_step(url: str, served: str, reached: set[str]) -> str | None:
    """Advance readiness by one step; returns the step just passed, or None if not yet."""
    try:
        if "health" not in reached:
            _http(f"{url}/health", timeout=2)
            return "health"
        if "models" not in reached:
            models = _http(f"{url}/v1/models")
            ids = [m.get("id") for m in (models or {}).get("data", [])]
            if served not in ids:
                raise EngineError(f"/v1/models lists {ids}, not '{served}'")
            return "models"
        answer = _http(f"{url}/v1/completions", {"model": served, "prompt": READY_PROMPT,
                                                 "max_tokens": 1, "temperature": 0}, timeout=60)
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
        argv=command.argv if command else (), env=dict(command.env) if command else {},
        versions=asdict(plan.runtime),
        hardware={"gpus": [asdict(g) for g in plan.gpu.gpus], "driver": plan.gpu.driver,
                  "cuda_driver": plan.gpu.cuda_driver, "gpu_unavailable": plan.gpu.unavailable,
                  "cpu": asdict(cpu)},
        problems=tuple(p.to_dict() for p in plan.problems), **values)


def _materialize(plan: LaunchPlan, scaffold: bool = True) -> tuple[LaunchPlan, Path]:
    """Create the run folder, scaffold dummy weights into it, and fix the command's model path."""
    run_dir = create_run_dir(plan.runs_parent, run_dir_name(plan.candidate_id, utc_now()))
    if scaffold and plan.scaffold_shape and plan.command is not None:
        model_dir = run_dir / "model"
        scaffold_model(plan.scaffold_shape, model_dir, fp8=plan.scaffold_fp8)
        argv = tuple(str(model_dir) if word == "<run folder>/model" else word
                     for word in plan.command.argv)
        plan = replace(plan, command=replace(plan.command, argv=argv))
    write_json(run_dir / COMMAND_FILE, {
        "candidate_id": plan.candidate_id, "decision_file": plan.decision_file,
        "argv": list(plan.command.argv) if plan.command else None,
        "env": plan.command.env if plan.command else plan.env,
        "shell": plan.command.shell() if plan.command else None,
        "cwd": os.getcwd(), "url": plan.url, "served_model_name": plan.served_model_name,
        "vllm_version": plan.runtime.vllm, "python": plan.runtime.python,
        "engine": plan.engine, "engine_sha256": plan.engine_sha256,
        "rendered": plan.command.rendered if plan.command else {},
        "scaffold_shape": plan.scaffold_shape,
        "problems": [p.to_dict() for p in plan.problems], "notes": list(plan.notes),
        "created_at": iso(utc_now())})
    return plan, run_dir


def start_server(plan: LaunchPlan, options: LaunchOptions | None = None) -> ServerHandle:
    """Start a planned server and wait until it answers a completion.

    Raises ``LaunchRefused`` when preflight found errors and ``LaunchFailed`` when the server did
    not become ready; in both cases nothing started is left running and ``outcome.json`` is
    written. The caller owns the returned handle and must ``stop()`` it (``launch_server`` does).
    """
    options = options or LaunchOptions()
    report = options.on_progress or (lambda event: None)
    started_at = iso(utc_now())
    if not plan.ok:
        plan_dir = _materialize(plan, scaffold=False)[1]
        outcome = _outcome(plan, plan_dir, ok=False, failure=failures.REFUSED,
                           reason="; ".join(p.message for p in errors(plan.problems))
                           or "vLLM's arguments are unknown", started_at=started_at,
                           finished_at=started_at)
        outcome.write()
        raise LaunchRefused(plan, outcome)
    plan, run_dir = _materialize(plan)
    assert plan.command is not None  # plan.ok guarantees it
    log_path = run_dir / LOG_FILE
    environment = {**os.environ, **plan.command.env}
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(list(plan.command.argv), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=environment,
                                   start_new_session=True,
                                   preexec_fn=None if options.keep else _die_with_parent)
    pgid = process.pid  # a new session: the child leads its own process group
    report(Progress("started", 0.0, f"PID {process.pid}, process group {pgid}"))
    follower = _LogFollower(log_path, started, report)
    base = _outcome(plan, run_dir, ok=False, pid=process.pid, pgid=pgid, started_at=started_at)
    base.write()

    def fail(failure: str, reason: str, evidence: tuple[str, ...] = (),
             code: int | None = None) -> LaunchOutcome:
        follower.poll()
        stop = stop_process_group(process, pgid, options.grace_s)
        outcome = replace(base, failure=failure, reason=reason, evidence=evidence,
                          exit_code=code if code is not None else process.returncode,
                          phases=tuple(follower.phases), finished_at=iso(utc_now()),
                          stop={**stop.to_dict(), "at": iso(utc_now())})
        outcome.write()
        return outcome

    reached: set[str] = set()
    served = plan.served_model_name or ""
    try:
        with signals_interrupt():
            while True:
                follower.poll()
                code = process.poll()
                if code is not None:
                    found = failures.classify(_read_lines(log_path), code)
                    raise LaunchFailed(fail(found.failure, found.reason, found.evidence, code))
                elapsed = time.monotonic() - started
                if elapsed > options.timeout_s:
                    steps = ", ".join(sorted(reached)) or "none"
                    lines = failures.error_lines(_read_lines(log_path))[-4:]
                    raise LaunchFailed(fail(
                        failures.TIMEOUT, f"not ready after {options.timeout_s:g} s (last phase: "
                        f"{follower.phases[-1][0] if follower.phases else 'none'}; readiness "
                        f"steps passed: {steps}); raise --timeout for a first start",
                        tuple(lines)))
                step = _ready_step(plan.url, served, reached)
                if step is not None:
                    reached.add(step)
                    report(Progress(f"ready: {step}", round(elapsed, 3)))
                    if step == "completion":
                        break
                    continue
                time.sleep(0.5)
    except KeyboardInterrupt:
        fail(failures.INTERRUPTED, "interrupted during start-up; the process group was stopped")
        raise
    except LaunchFailed:
        raise
    except EngineError as exc:  # the server answered, but not as a ready server should
        raise LaunchFailed(fail(failures.NOT_READY, exc.message)) from None
    except BaseException as exc:
        fail(failures.ENGINE_DIED, f"the launcher failed while waiting: {exc!r}")
        raise
    startup_s = round(time.monotonic() - started, 3)
    outcome = replace(base, ok=True, startup_s=startup_s, phases=tuple(follower.phases),
                      finished_at=iso(utc_now()))
    outcome.write()
    return ServerHandle(plan.url, served, process.pid, pgid, run_dir, startup_s, outcome,
                        process, options.grace_s)


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
        if not keep:
            server.stop()
