"""Known-invalid serving configurations, refused with the reason before anything starts.

Every check is a function of plain facts returning ``Problem`` objects. The static ones need only
the decision file and live in ``audit.engine_config`` (so ``check`` and ``score`` run them too);
this module adds the installed vLLM's facts to them, and the runtime checks, which take what was
measured on this machine (free GPU memory, who holds a port, the installed versions) as arguments.
Gathering those facts (``port_state``) is kept apart.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from stackdecide.audit import engine_config
from stackdecide.audit.engine_config import ModelFacts, TargetHardware, file_hardware
from stackdecide.facts import vllm_defaults
from stackdecide.facts.memory import gib
from stackdecide.facts.pins import pin_matches
from stackdecide.facts.vllm_defaults import VllmRelease
from stackdecide.launch.leftovers import LiveRun, run_of_pid
from stackdecide.model.problems import Problem
from stackdecide.model.schema import Hardware, Stack
from stackdecide.model.stack import PACKAGES, engine_value
from stackdecide.vllm.args import VllmArgSpec
from stackdecide.vllm.probe import GpuInfo, RuntimeVersions

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class PortState:
    host: str
    port: int
    in_use: bool
    holders: tuple[tuple[int, str], ...] = ()  # (pid, command) of listening processes
    error: str | None = None  # why host:port cannot be bound at all (no such address here)


def target_hardware(gpus: tuple[GpuInfo, ...] = (), hardware: Hardware | None = None,
                    visible_index: int = 0, count: int | None = None) -> TargetHardware | None:
    """The visible GPU when there is one, else the decision's ``hardware`` block; ``count``: the
    GPUs this launch may use (default: every probed GPU, or ``hardware.count``). A probed GPU's
    memory is what CUDA can hand out (NVML's total less the driver's reservation), the figure
    vLLM's budget starts from; its batch defaults read NVML's total."""
    if gpus:
        gpu = next((g for g in gpus if g.index == visible_index), gpus[0])
        reserved = f", {gib(gpu.reserved_bytes)} of its {gib(gpu.total_bytes)} reserved by the " \
            "driver" if gpu.reserved_bytes else ""
        return TargetHardware("gpu", gpu.cuda_total_bytes, gpu.compute_capability,
                              f"GPU {gpu.index} ({gpu.name}, read through NVML{reserved})",
                              name=gpu.name, count=count if count is not None else len(gpus),
                              nvml_bytes=gpu.total_bytes)
    target = file_hardware(hardware)
    if target is not None and count is not None and target.device == "gpu":
        return replace(target, count=count)
    return target


def static_problems(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware | None, spec: VllmArgSpec | None = None,
                    release: VllmRelease | None = None,
                    secrets: Collection[str] = ()) -> list[Problem]:
    """The static checks (``audit.engine_config``), with the installed vLLM's own facts when known:
    its attention backends' KV-cache dtypes, and the release whose defaults fill the keys left
    out (default: ``launch_release`` of ``spec``, else of the vLLM installed here); ``secrets``:
    the decision's names of secrets."""
    return engine_config.static_problems(
        engine, env, model, target, spec.attention_backends if spec else None,
        release or launch_release(None, spec, engine_config.installed_vllm()), secrets=secrets)


def code_loading(problems: Sequence[Problem], allowed: bool) -> list[Problem]:
    """``problems`` as a launch holds them: what makes the server load code the decision file
    points at (``audit.engine_config.CODE_LOADING_CODES``, warnings in ``check`` and ``score``)
    refuses the launch unless ``allowed`` (``launch --allow-code-loading`` or
    ``decision.allow_code_loading: true``)."""
    if allowed:
        return list(problems)
    return [replace(p, severity="error") if p.code in engine_config.CODE_LOADING_CODES else p
            for p in problems]


def parser_default_utilization(spec: VllmArgSpec | None) -> float | None:
    """The ``--gpu-memory-utilization`` default of the installed vLLM's parser; None without a
    parser, or where it has no number (vLLM 0.34 leaves it unset and resolves it later)."""
    action = spec.action("gpu_memory_utilization") if spec else None
    default = action.default if action else None
    return float(default) if isinstance(default, int | float) and not isinstance(default, bool) \
        else None


def launch_release(pin: str | None, spec: VllmArgSpec | None,
                   installed: str | None = None) -> VllmRelease:
    """The vLLM whose defaults a launch gets: the one that will run it (``spec``'s, else
    ``installed``, the probed interpreter's), with its parser's ``gpu_memory_utilization``
    default; else the candidate's ``stack.vllm`` pin; else the newest release read."""
    parser = parser_default_utilization(spec)
    running = spec.vllm_version if spec else installed
    if running:
        release = vllm_defaults.vllm_release(None, running, parser)
        where = f" in {spec.python}" if spec else ""
        return replace(release, said_by=f"the vLLM that runs it ({running}{where})")
    return vllm_defaults.vllm_release(pin, None, parser)


# -- runtime checks ----------------------------------------------------------------------------

def check_free_memory(engine: Mapping[str, Any], gpu: GpuInfo | None,
                      release: VllmRelease | None = None,
                      process_groups: Mapping[int, int] | None = None,
                      runs: Sequence[LiveRun] = ()) -> list[Problem]:
    """vLLM needs ``gpu_memory_utilization`` x CUDA's total to be free when it starts (vLLM 0.32
    ``vllm/v1/worker/utils.py`` ``request_memory``: "Free memory on device ... is less than
    desired GPU memory utilization"); unset, the utilization is ``release``'s default (default:
    the vLLM installed here). ``runs`` name the holders that are leftover servers of our
    own runs."""
    if gpu is None:
        return []
    configured = engine_value(engine, "gpu_memory_utilization")
    if configured is not None and (not isinstance(configured, int | float)
                                   or isinstance(configured, bool)):
        return []
    release = release or launch_release(None, None, engine_config.installed_vllm())
    utilization = vllm_defaults.memory_utilization(release, configured).value
    if gpu.cuda_total_bytes * utilization <= gpu.free_bytes:
        return []
    holders = []
    for process in gpu.processes:
        used = f" holds {gib(process.used_bytes)}" if process.used_bytes else ""
        group = (process_groups or {}).get(process.pid)
        group_text = f", process group {group}" if group else ""
        holders.append(f"PID {process.pid} ({process.name or 'unknown'}{group_text}"
                       f"{_leftover(process.pid, runs)}){used}")
    who = ("; " + "; ".join(holders) + " — a leftover server? `stackdecide ps` lists ours; "
           "stop another's process group (kill -TERM -- -PGID)") if holders else ""
    return [Problem(
        "gpu-memory-busy",
        f"gpu_memory_utilization {utilization:g} asks for {gib(gpu.cuda_total_bytes * utilization)} of "
        f"GPU {gpu.index} ({gpu.name}), but only {gib(gpu.free_bytes)} "
        f"({gpu.free_fraction:.2f}) is free{who}", "engine.gpu_memory_utilization")]


def port_state(host: str, port: int) -> PortState:
    """Whether ``host:port`` can be bound now, who listens on it if not, and why it cannot be
    bound at all when the host is no address of this machine (``error``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
            return PortState(host, port, False)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return PortState(host, port, False, error=exc.strerror or str(exc))
        except (UnicodeError, ValueError, TypeError, OverflowError) as exc:
            # a name IDNA cannot encode (a label over 63 characters), a NUL byte, a bad port
            return PortState(host, port, False, error=str(exc) or type(exc).__name__)
    return PortState(host, port, True, _listeners(port))


def _listeners(port: int) -> tuple[tuple[int, str], ...]:
    try:
        import psutil

        found = []
        for connection in psutil.net_connections(kind="inet"):
            if (connection.status == psutil.CONN_LISTEN and connection.laddr
                    and connection.laddr.port == port and connection.pid):
                try:
                    command = " ".join(psutil.Process(connection.pid).cmdline()[:4])
                except psutil.Error:
                    command = "?"
                found.append((connection.pid, command))
        return tuple(sorted(set(found)))
    except Exception:  # no psutil or no permission: the port number alone still says enough
        return ()


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                            "ip6-loopback"})


def check_host(host: str) -> list[Problem]:
    """The address the server is to bind, as written: an error when it cannot be one, a warning
    when it makes the server reachable from other machines. Pure: nothing is resolved or bound.

    vLLM's OpenAI server answers anyone who can reach it (without ``api_key`` in the engine, with
    no authentication at all), so binding more than loopback must never happen quietly.
    """
    text = host.strip()
    if host != text or len(host) > 253 or any(not char.isprintable() or char.isspace()
                                              for char in host):
        return [Problem("bad-host", f"--host {host!r} is not an address or host name (no spaces, "
                        "control characters, at most 253 characters); the default 127.0.0.1 "
                        "serves this machine only", "--host")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if (address is not None and address.is_loopback) or text.lower() in LOOPBACK_NAMES:
        return []
    if not text or (address is not None and address.is_unspecified):
        reach = "every network interface of this machine, so any machine that can reach it"
    elif address is not None:
        reach = f"the network of {address}, so any machine on it"
    else:
        reach = f"whatever {host} resolves to; unless that is loopback, other machines"
    return [Problem("host-exposed", f"--host {host or repr(host)} binds {reach} can use the "
                    "server (vLLM's API has no authentication unless the engine sets api_key); "
                    "keep the default 127.0.0.1 unless that is intended", "--host", "warning")]


def _leftover(pid: int, runs: Sequence[LiveRun]) -> str:
    run = run_of_pid(pid, runs)
    return f", a leftover server of run {run.name}: `stackdecide stop {run.name}`" if run else ""


def check_port(state: PortState, runs: Sequence[LiveRun] = ()) -> list[Problem]:
    """Problems with the address the server will bind: its host (``check_host``: exposure, or no
    address at all) and its port (held by another process; ``runs`` name our own leftovers)."""
    problems = check_host(state.host)
    if state.error is not None and not any(p.severity == "error" for p in problems):
        # nothing will listen there at all: the exposure warning would only add noise
        problems = [Problem("bad-host", f"cannot bind {state.host}:{state.port}: {state.error}; "
                            "pass --host with an address of this machine, e.g. 127.0.0.1",
                            "--host")]
    if not state.in_use:
        return problems
    who = "; held by " + ", ".join(f"PID {pid} ({command}{_leftover(pid, runs)})"
                                   for pid, command in state.holders) if state.holders else ""
    return [*problems, Problem("port-in-use", f"{state.host}:{state.port} is already in use{who}; "
                               "pass --port with a free port", "--port")]


STACK_HINT = ("; build the candidate's own environment (launch --build-envs, or stackdecide env "
              "build) or measure this one on purpose (--use-current-env)")


def check_stack(stack: Stack, runtime: RuntimeVersions, severity: str = "warning") -> list[Problem]:
    """Where the installed stack is not the one the candidate pins: a warning when the user chose
    this interpreter, an error (``severity``) when a launch would measure another stack than the
    candidate's without being asked to."""
    problems = _stack_differences(stack, runtime)
    if severity == "error":  # the hint once, on the first
        return [Problem(p.code, p.message.replace(": results describe the installed stack", "")
                        + (STACK_HINT if index == 0 else ""), p.field, "error")
                for index, p in enumerate(problems)]
    return problems


def _stack_differences(stack: Stack, runtime: RuntimeVersions) -> list[Problem]:
    problems = []
    for name in PACKAGES:  # RuntimeVersions names each package's version by its stack field
        version, pin = getattr(runtime, name), getattr(stack, name)
        if pin is None:
            continue
        if version is None:
            problems.append(Problem("stack-differs", f"the candidate pins {name} {pin}; "
                                    f"{runtime.python} has no {name}", f"stack.{name}", "warning"))
        elif pin_matches(pin, version) is False:  # the rule evidence matching uses too
            problems.append(Problem("stack-differs", f"the candidate pins {name} {pin}; "
                                    f"{runtime.python} has {version}: results describe the "
                                    "installed stack", f"stack.{name}", "warning"))
    if stack.cuda and runtime.torch and (
            runtime.torch_cuda is None or pin_matches(stack.cuda, runtime.torch_cuda) is False):
        built = f"CUDA {runtime.torch_cuda}" if runtime.torch_cuda else "no CUDA (a CPU build)"
        problems.append(Problem("stack-differs", f"the candidate pins CUDA {stack.cuda}; torch "
                                f"{runtime.torch} is built for {built}", "stack.cuda", "warning"))
    if "flashinfer" in stack.extras and runtime.flashinfer is None:
        problems.append(Problem("stack-differs", "the candidate uses the flashinfer extra; "
                                f"{runtime.python} has no flashinfer", "stack.extras", "warning"))
    return problems

