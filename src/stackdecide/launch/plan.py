"""What ``launch`` would start: the candidate's engine config rendered for the installed vLLM, with
everything preflight found, and the portable ``vllm serve`` line for the vLLM the candidate pins.
Nothing here starts a process or writes a file (``launch --dry-run``).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stackdecide.audit import engine_config
from stackdecide.audit.capacity import Capacity, capacity_of
from stackdecide.decision import Decision, left_out_of
from stackdecide.envs.build import BuiltEnv
from stackdecide.errors import EngineError, StackdecideError
from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.pins import pin_matches
from stackdecide.facts.shapes import SHAPES
from stackdecide.launch import gpus as gpu_selection
from stackdecide.launch import preflight
from stackdecide.launch.leftovers import live_runs
from stackdecide.launch.process import DEFAULT_GRACE_S
from stackdecide.launch.real_model import default_real_models_dir, real_model_served_as
from stackdecide.launch.runs import LaunchOutcome, runs_dir
from stackdecide.launch.scaffold import SCAFFOLD_PLACEHOLDER, default_models_dir
from stackdecide.model.problems import Problem, errors
from stackdecide.model.ranking import NoFeasibleCandidate
from stackdecide.model.stack import layout_of
from stackdecide.state import last_decision
from stackdecide.vllm.args import VllmArgSpec, load_arg_spec
from stackdecide.vllm.flags import release_for_pin
from stackdecide.vllm.probe import (
    VLLM_PYTHON_ENV,
    GpuReport,
    RuntimeVersions,
    probe_gpus,
    probe_runtime,
    vllm_python,
)
from stackdecide.vllm.render import RenderedCommand, render, render_for_version, serve_command

DEFAULT_TIMEOUT_S = 900.0  # a first GPU start compiles kernels and fills caches for minutes
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
    # candidate id -> its own environment (envs.build); a candidate not here runs in ``python``
    environments: Mapping[str, BuiltEnv] = field(default_factory=dict)
    use_current_env: bool = False  # measure the interpreter's stack even where pins differ
    on_progress: Callable[[Progress], None] | None = None
    gpus: tuple[int, ...] | None = None  # NVML indices placed on (CUDA_VISIBLE_DEVICES)
    # start a candidate whose engine keys or env make the server load code the decision file
    # points at (also decision.allow_code_loading); refused otherwise
    allow_code_loading: bool = False


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
    engine: dict[str, Any]  # as written in the decision file, secrets as ***
    env: dict[str, str]  # candidate env plus launcher defaults, before rendering, secrets as ***
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
    capacity: Capacity | None = None  # weights, KV cache, tokens and sequences that fit
    portable: str | None = None  # the `vllm serve MODEL ...` line for the host that runs it
    portable_note: str = ""  # which vLLM it was rendered against
    gpu_indices: tuple[int, ...] = ()  # the GPUs it uses (NVML indices); () on a CPU
    interconnect: str | None = None  # between those GPUs: nvlink, pcie, or None (one / unknown)
    layout: str = "TP 1"  # tensor x pipeline x data parallel
    environment: BuiltEnv | None = None  # the candidate's own environment, when it has one
    # the candidate's secret values, blanked out of the log lines a launch repeats
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def environment_record(self) -> dict[str, Any]:
        """What a launch records of the environment it ran in."""
        env = self.environment
        if env is None:
            return {}
        layered = {"base_env": env.manifest["base_env"]} if env.manifest.get("base_env") else {}
        return {"lock_sha256": env.lock_sha256, "path": str(env.path),
                "python_version": env.python_version, "distributions": list(env.distributions),
                **layered}

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


def pick_winner(decision: Decision) -> tuple[str, str]:
    """The candidate ``launch --winner`` starts, and how it was picked: the best feasible one by
    the weighted sum. ``NoFeasibleCandidate`` (exit 1), naming why each is infeasible, when every
    candidate cannot start as written or breaks a constraint."""
    ranking = decision.score()
    left_out = left_out_of(ranking)
    if ranking.winner is None:
        raise NoFeasibleCandidate(left_out, "to launch (`stackdecide check` says what each "
                                  "configuration must change)")
    how = "the winner by weighted sum"
    if left_out:
        how += ("; passed over as infeasible: "
                + "; ".join(f"{cid}: {why}" for cid, why in left_out.items()))
    return ranking.winner, how


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
    # every check reads the keys as rendering does (the command's own spelling)
    engine = engine_config.canonical_engine(candidate.engine)
    written_env = {**candidate.env, **options.env}
    environment = options.environments.get(candidate_id)
    python = environment.python if environment is not None else vllm_python(options.python)
    gpu = gpu if gpu is not None else probe_gpus()
    runtime = runtime or probe_runtime(python)
    problems: list[Problem] = []
    notes: list[str] = []
    model = engine_config.candidate_model(decision, candidate_id)
    dummy = options.dummy_weights or engine.get("load_format") == "dummy"
    real = real_model_served_as(engine.get("model"))
    if real is not None and engine.get("load_format") != "dummy":
        dummy = False  # its weights are here: random ones would measure nothing of it
    if dummy and model.fp8_checkpoint:  # the scaffold is block-FP8, whatever the id said
        model = replace(model, weights="fp8-block")
    layout = layout_of(engine)
    selection = gpu_selection.select_gpus(gpu, options.gpus, os.environ)
    if options.gpus:
        written_env["CUDA_VISIBLE_DEVICES"] = selection.visible_devices
    target = preflight.target_hardware(
        gpu.gpus, meta.hardware, selection.indices[0] if selection.indices else 0,
        len(selection.indices) if gpu.gpus or options.gpus else None)
    if target is not None and target.device == "gpu" and not gpu.gpus:
        notes.append(f"no GPU visible ({gpu.unavailable}); memory checks use {target.source}")
    env, env_notes = launcher_env(written_env, model, target)
    notes += env_notes
    used = selection.indices[:layout.gpus] if gpu.gpus or options.gpus else ()
    link = gpu_selection.interconnect(gpu, used)
    notes += _gpu_notes(gpu, layout, selection, used, bool(options.gpus))
    problems += gpu_selection.check_multicast(written_env, os.environ)
    problems += gpu_selection.check_fused_allreduce(engine, layout.tp, written_env, os.environ)
    problems += gpu_selection.check_gpu_count(layout.gpus, selection)

    runs_parent = options.runs_dir or runs_dir()
    effective = dict(engine)
    served_name = scaffold_shape = None
    if dummy:
        scaffold_shape, served_name, dummy_problems, dummy_notes = _dummy_model(
            decision, candidate_id, model)
        problems += dummy_problems
        notes += dummy_notes
        if scaffold_shape is not None:
            effective["model"] = SCAFFOLD_PLACEHOLDER  # made real when the launch starts
            effective["load_format"] = "dummy"
            effective.setdefault("served_model_name", served_name)  # else the folder's path
    if real is not None and scaffold_shape is None:
        effective["model"] = real.placeholder  # prepared when the launch starts
        effective.setdefault("served_model_name", real.served_id)
        notes.append(f"real model {real.name}: {real.description}; prepared once into "
                     f"{default_real_models_dir()} when a launch starts (or by `stackdecide model "
                     f"prepare {real.name}`) and served as '{effective['served_model_name']}'"
                     + (" with its own weights (--dummy-weights is for models whose weights are "
                        "not here)" if options.dummy_weights else ""))

    try:
        spec = spec or load_arg_spec(python, runtime)
    except EngineError as exc:
        problems.append(Problem("vllm-unavailable", exc.message, "--python"))
        spec = None
    host_errors = [p for p in preflight.check_host(options.host) if p.severity == "error"]
    # a free port can only be asked of an address that can be bound; check_port says why not
    port = options.port if options.port is not None or host_errors else free_port(options.host)
    port = port or 0
    command = None
    if spec is not None:
        command = render(effective, spec, host=options.host, port=port, env=env, python=python,
                         secrets=meta.secrets)
        problems += command.problems
    release = preflight.launch_release(candidate.stack.vllm, spec, runtime.vllm)
    problems += preflight.static_problems(engine, env, model, target, spec, release, meta.secrets)
    fit = capacity_of(candidate_id, engine, env, model, target, release)
    portable, portable_note, portable_changes = _portable(engine, env, spec, candidate.stack.vllm,
                                                          options, port, meta.secrets)
    notes += portable_changes
    leftovers = live_runs()
    for visible in (g for g in gpu.gpus if g.index in (used or selection.indices[:1])):
        problems += preflight.check_free_memory(engine, visible, release,
                                                _process_groups(visible), leftovers)
    problems += preflight.check_port(preflight.port_state(options.host, port), leftovers)
    chosen = options.use_current_env or bool(options.python) or bool(
        os.environ.get(VLLM_PYTHON_ENV))  # an interpreter the user named is measured as it is
    problems += preflight.check_stack(candidate.stack, runtime,
                                      "warning" if chosen else "error")
    if environment is not None:
        notes.append(f"environment {environment.short} ({environment.path}): the candidate's "
                     f"own, built from its stack pins")
    # rendering and the static checks find some problems alike: each is said once
    problems = preflight.code_loading(list(dict.fromkeys(problems)),
                                      options.allow_code_loading or meta.allow_code_loading)
    return LaunchPlan(candidate_id, decision.source_file,
                      engine_config.redacted_engine(candidate.engine, meta.secrets),
                      engine_config.redacted_env(env, meta.secrets),
                      candidate.config_sha256, command, tuple(problems),
                      tuple(notes), options.host, port, runtime, gpu, target, scaffold_shape,
                      model.fp8_checkpoint, runs_parent, fit, portable, portable_note,
                      tuple(used), link, layout.label, environment,
                      engine_config.secret_values(candidate.engine, env, meta.secrets))


def _gpu_notes(gpu: GpuReport, layout: ParallelLayout,
               selection: gpu_selection.GpuSelection, used: tuple[int, ...],
               placed: bool) -> list[str]:
    """What the plan says about the GPUs it uses: the layout on them and how they are linked."""
    notes = []
    if layout.gpus > 1 or placed:
        notes.append(f"{layout.label}: {layout.gpus} GPU(s), "
                     f"{','.join(map(str, used)) or 'none visible here'} ({selection.source}); "
                     "weights and KV cache are planned per GPU")
    link_note = gpu_selection.interconnect_note(gpu, used)
    return notes + ([link_note] if link_note else [])


def _portable(engine: dict[str, Any], env: dict[str, str], spec: VllmArgSpec | None,
              pin: str | None, options: LaunchOptions, port: int, secrets: Collection[str] = ()
              ) -> tuple[str | None, str, list[str]]:
    """The engine config as written, as a `vllm serve` line, which vLLM it was rendered against
    (argument spellings differ between releases), and what rendering for that release changed.
    The installed vLLM's parser renders it where the candidate's pin allows that vLLM; otherwise
    the flag history renders it for the pinned release (``vllm.flags.release_for_pin``)."""
    pinned = f"; the candidate pins vllm {pin}" if pin else ""
    if spec is not None and (not pin or pin_matches(pin, spec.vllm_version) is not False):
        command = render(engine, spec, host=options.host, port=port, env=env, secrets=secrets)
        return serve_command(command), (f"rendered for the installed vLLM {spec.vllm_version} "
                                        f"({spec.python}){pinned}"), []
    version, how = release_for_pin(pin)
    here = f"the installed vLLM is {spec.vllm_version}" if spec else "no vLLM installed here"
    if version is None:
        return None, f"{how}; {here}", []
    command = render_for_version(engine, version, host=options.host, port=port, env=env,
                                 secrets=secrets)
    changes = [f"portable command for vLLM {version}: {_said(problem)}"
               for problem in command.problems]
    return serve_command(command), (f"rendered for vLLM {version} from stackdecide's flag "
                                    f"history: {how}; {here}"), changes


def _said(problem: Problem) -> str:
    """A rendering problem as a note: ``[warning: ]engine.key: what happened``."""
    severity = "" if problem.severity == "info" else f"{problem.severity}: "
    where = f"{problem.field}: " if problem.field else ""
    return f"{severity}{where}{problem.message}"


def _dummy_model(decision: Decision, candidate_id: str, model: engine_config.ModelFacts
                 ) -> tuple[str | None, str | None, list[Problem], list[str]]:
    """What dummy weights scaffold (a built-in shape name or a config.json path, as
    ``scaffold_model`` takes it), the name it is served as, and problems and notes."""
    spec = decision.model_of(candidate_id)
    engine = engine_config.canonical_engine(decision.candidate(candidate_id).engine)
    base = Path(decision.source_file).parent if decision.source_file else Path.cwd()
    shape: str | None = None
    if spec is not None and spec.shape:
        shape = spec.shape
    elif spec is not None and spec.config:
        shape = str((base / Path(spec.config).expanduser()).resolve())
    elif model.shape is not None and model.shape.name in SHAPES:
        shape = model.shape.name  # the built-in published under the model id
    if shape is None:
        return None, None, [Problem("no-model-shape", "dummy weights need the model's shape to "
                                    "scaffold the model directory: give model.shape (e.g. "
                                    "qwen3-4b) or model.config (a config.json)",
                                    "decision.model.shape")], []
    named = engine.get("served_model_name")  # a list names aliases: the first is the name
    named = named[0] if isinstance(named, list) and named else named
    served = str(named or (spec.id if spec else None) or shape)
    return shape, served, [], [f"dummy weights: model shape {shape} is scaffolded into its folder "
                               f"under {default_models_dir()}, shared by every launch of it so "
                               "vLLM's compile cache is reused, and served as "
                               f"'{served}' (--load-format dummy)"]


def _process_groups(gpu: Any) -> dict[int, int]:
    groups = {}
    for process in getattr(gpu, "processes", ()):
        with contextlib.suppress(OSError):
            groups[process.pid] = os.getpgid(process.pid)
    return groups


