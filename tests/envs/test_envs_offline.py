"""Resolving and building from a local wheelhouse with the real uv, without any index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from wheelhouse import make_wheel, stack_decision

import stackdecide
from stackdecide.cli import main
from stackdecide.envs.build import MANIFEST, MARKER, build_env, is_marked, mark, read_env
from stackdecide.envs.download import download_wheels
from stackdecide.envs.requirements import stack_requirements
from stackdecide.envs.resolve import resolve
from stackdecide.envs.store import list_envs, prune
from stackdecide.envs.uv import EnvError, Sources, UvMissing, find_uv
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.model.schema import Stack
from stackdecide.vllm.probe import GpuReport

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    make_wheel(folder, "sd-alpha", "1.0")
    make_wheel(folder, "sd-alpha", "1.1")
    make_wheel(folder, "sd-beta", "2.0", requires=("sd-alpha>=1.1",))
    return folder


def _offline(folder: Path) -> Sources:
    return Sources(find_links=(str(folder),), no_index=True, offline=True)


def _requirements(**packages: str):
    return stack_requirements("cand", Stack(packages=packages), cpu=True, python_version=PYTHON)


def test_resolve_and_build_from_a_wheelhouse(wheelhouse: Path, tmp_path: Path) -> None:
    resolution = resolve(_requirements(**{"sd-beta": "2.0"}), _offline(wheelhouse))
    assert resolution.status == "ok", resolution.reason
    assert resolution.lock is not None
    assert resolution.lock.packages == (("sd-alpha", "1.1"), ("sd-beta", "2.0"))
    envs = tmp_path / "envs"
    env = build_env(resolution, envs, sources=_offline(wheelhouse))
    assert env.built_now and env.path == envs / resolution.lock.short
    assert env.distributions == ("sd-alpha==1.1", "sd-beta==2.0")
    ran = subprocess.run([env.python, "-c", "import sd_beta, sd_alpha; print('ok')"],
                         capture_output=True, text=True, check=False)
    assert ran.stdout.strip() == "ok", ran.stderr
    manifest = json.loads((env.path / MANIFEST).read_text())
    assert manifest["lock_sha256"] == resolution.lock.sha256
    assert manifest["requirements"] == ["sd-beta==2.0"]
    assert is_marked(env.path)  # what lets env prune remove it
    assert json.loads((env.path / MARKER).read_text())["made_by"].startswith("stackdecide ")
    # the same lock again: the environment is reused, not rebuilt
    again = build_env(resolution, envs, sources=_offline(wheelhouse))
    assert not again.built_now and again.path == env.path
    assert [entry.env.lock_sha256 for entry in list_envs(envs) if entry.env] == [env.lock_sha256]
    listed = CliRunner().invoke(main, ["env", "list", "--env-dir", str(envs)])
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[3].split()[:4] == [env.short, "-", "-", PYTHON]
    pruned = CliRunner().invoke(main, ["env", "prune", "--env-dir", str(envs), "--all"])
    assert pruned.stdout == f"removed {env.path}\n" and list(envs.iterdir()) == []


def test_a_pin_the_wheelhouse_cannot_satisfy_names_it(wheelhouse: Path) -> None:
    resolution = resolve(_requirements(**{"sd-alpha": "3.0"}), _offline(wheelhouse))
    assert resolution.status == "conflict"
    assert "sd-alpha==3.0" in resolution.reason
    assert resolution.summary().startswith("cannot be installed as pinned: Because there is no "
                                           "version of sd-alpha==3.0")


def test_a_wheelhouse_missing_a_wheel_of_the_lock_fails_the_build_naming_pin(
        wheelhouse: Path, tmp_path: Path) -> None:
    resolution = resolve(_requirements(**{"sd-beta": "2.0"}), _offline(wheelhouse))
    emptied = tmp_path / "partial"
    make_wheel(emptied, "sd-alpha", "1.1")  # sd-beta's wheel is missing
    with pytest.raises(EnvError) as caught:
        build_env(resolution, tmp_path / "envs", sources=_offline(emptied))
    message = str(caught.value)
    assert message.startswith("candidate 'cand': installing its lock failed (pin "
                              "stack.packages.sd-beta ==2.0)"), message
    assert not any((tmp_path / "envs").iterdir())  # nothing half-built is left


def test_a_folder_that_is_no_environment_is_never_used(wheelhouse: Path, tmp_path: Path) -> None:
    resolution = resolve(_requirements(**{"sd-alpha": "1.0"}), _offline(wheelhouse))
    envs = tmp_path / "envs"
    assert resolution.lock is not None
    half = envs / resolution.lock.short
    (half / "bin").mkdir(parents=True)  # as a copy stopped half-way would leave it
    mark(half)
    assert read_env(half) is None
    stale = envs / ".building-0123456789abcdef-999999999-abcdef"
    stale.mkdir()
    mark(stale)
    assert [entry.complete for entry in list_envs(envs)] == [False, False]
    env = build_env(resolution, envs, sources=_offline(wheelhouse))
    assert env.built_now and read_env(half) is not None and is_marked(half)
    assert prune(envs).removed == (stale,)
    assert prune(envs, locks=(env.lock_sha256[:8],)).removed == (half,)


WRONG_SHAPES = [
    [], "stackdecide/env/v1", {"schema": "stackdecide/env/v1"},
    {"schema": "stackdecide/env/v1", "python_version": "3.11"},
    {"schema": "stackdecide/env/v1", "lock_sha256": 7, "python_version": "3.11"},
    {"schema": "stackdecide/env/v1", "lock_sha256": "../..", "python_version": "3.11"},
    {"schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": ["3.11"]},
    {"schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": "3.11",
     "distributions": "torch==2.7.1"},
    {"schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": "3.11",
     "distributions": [{"torch": "2.7.1"}]},
    {"schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": "3.11",
     "build_s": "12 s"},
    {"schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": "3.11",
     "base_env": ["/usr/bin/python3"]},
]


@pytest.mark.parametrize("manifest", WRONG_SHAPES, ids=range(len(WRONG_SHAPES)))
@pytest.mark.parametrize("marked", [True, False])
def test_a_manifest_of_another_shape_is_no_environment(manifest: object, marked: bool,
                                                       tmp_path: Path) -> None:
    """A folder whose manifest lacks a field stackdecide reads back, or holds it as another
    type, is no environment it can use: listed as one that is not, never a traceback."""
    folder = tmp_path / "envs" / "abababababababab"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    (folder / MANIFEST).write_text(json.dumps(manifest))
    if marked:
        mark(folder)
    assert read_env(folder) is None
    listed = CliRunner().invoke(main, ["env", "list", "--env-dir", str(tmp_path / "envs")])
    assert listed.exit_code == 0 and listed.exception is None, listed.output
    state = "incomplete (env prune removes it)" if marked else "not stackdecide's (env prune keeps it)"
    assert [line for line in listed.output.splitlines()
            if line.startswith("abababababababab ") and state in line]


def test_the_manifest_build_env_writes_has_the_shape_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "abababababababab"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    (folder / MANIFEST).write_text(json.dumps({
        "schema": "stackdecide/env/v1", "lock_sha256": "ab" * 32, "python_version": "3.11",
        "distributions": ["torch==2.7.1"], "build_s": 12, "base_env": "/usr/bin/python3"}))
    env = read_env(folder)
    assert env is not None and env.short == "ab" * 8 and env.version("torch") == "2.7.1"


def test_a_folder_stackdecide_did_not_make_in_the_way_is_left_alone(wheelhouse: Path,
                                                                     tmp_path: Path) -> None:
    resolution = resolve(_requirements(**{"sd-alpha": "1.0"}), _offline(wheelhouse))
    assert resolution.lock is not None
    envs = tmp_path / "envs"
    theirs = envs / resolution.lock.short
    theirs.mkdir(parents=True)
    (theirs / "results.csv").write_text("a,b\n")
    with pytest.raises(EnvError, match="was not made by stackdecide"):
        build_env(resolution, envs, sources=_offline(wheelhouse))
    assert (theirs / "results.csv").read_text() == "a,b\n"
    assert [path.name for path in envs.iterdir()] == [theirs.name]  # its own build folder went


def _slow_sync_uv(tmp_path: Path) -> tuple[Path, Path]:
    """The real uv, except that ``pip sync`` (the install) first says so and waits: a slow
    install to interrupt, on machines where a real one finishes before any signal could land."""
    marker = tmp_path / "syncing"
    wrapper = tmp_path / "uv"
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" = pip ] && [ "$2" = sync ]; then touch '{marker}'; sleep 120; fi
exec '{find_uv()}' "$@"
""")
    wrapper.chmod(0o755)
    return wrapper, marker


def test_interrupted_build_leaves_nothing_usable(tmp_path: Path) -> None:
    """Ctrl-C while uv installs: the temporary folder goes, no environment appears."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "sd-many", "1.0")
    decision = stack_decision(tmp_path / "d.yaml",
                              f"id: cand, stack: {{python: '{PYTHON}', packages: {{sd-many: '1.0'}}}}")
    envs = tmp_path / "envs"
    uv, syncing = _slow_sync_uv(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "stackdecide", "env", "build", str(decision), "--env-dir",
         str(envs), "--find-links", str(wheels), "--no-index", "--offline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # a shell's background job inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: give the build the terminal's default, as Ctrl-C would find it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env={**os.environ, "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "",
             "STACKDECIDE_UV": str(uv),
             # a cache of its own: no lock held by another uv on this machine can stall it
             "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not syncing.exists() and process.poll() is None:
        time.sleep(0.05)
    if not syncing.exists():
        group = subprocess.run(["ps", "-o", "pid,etime,args", "-g", str(process.pid)],
                               capture_output=True, text=True).stdout
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"the install never started; processes:\n{group}\n"
                    f"stderr:\n{process.communicate(timeout=10)[1]}")
    assert [p.name.startswith(".building-") for p in envs.iterdir()] == [True]
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert list(envs.iterdir()) == []


def test_a_missing_uv_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKDECIDE_UV", "/nonexistent/uv")
    with pytest.raises(UvMissing, match="STACKDECIDE_UV names '/nonexistent/uv', which is not an "
                                        "executable"):
        find_uv()


def test_a_lock_for_another_python_needs_that_interpreter(wheelhouse: Path, tmp_path: Path) -> None:
    other = "3.12" if PYTHON != "3.12" else "3.13"
    requirements = stack_requirements("cand", Stack(packages={"sd-alpha": "1.0"}), cpu=True,
                                      python_version=other)
    resolution = resolve(requirements, _offline(wheelhouse))
    with pytest.raises(EnvError, match=rf"^candidate 'cand': its lock is for Python {other}, but "
                                       rf"the base interpreter .* is {PYTHON}; pass --base-python"):
        build_env(resolution, tmp_path / "envs", sources=_offline(wheelhouse))


def test_download_fills_a_wheelhouse_for_the_target(wheelhouse: Path, tmp_path: Path) -> None:
    resolution = resolve(_requirements(**{"sd-beta": "2.0"}), _offline(wheelhouse))
    _, wheels = download_wheels(resolution, tmp_path / "out", _offline(wheelhouse))
    assert [w.name for w in wheels] == ["sd_alpha-1.1-py3-none-any.whl",
                                        "sd_beta-2.0-py3-none-any.whl"]
    # and that wheelhouse alone builds the environment
    env = build_env(resolution, tmp_path / "envs", sources=_offline(tmp_path / "out"))
    assert env.distributions == ("sd-alpha==1.1", "sd-beta==2.0")


def test_cli_without_uv_says_so_once(tmp_path: Path) -> None:
    decision = tmp_path / "d.yaml"
    decision.write_text("schema: stackdecide/v1\ndecision: {title: t}\n"
                        "criteria: [{id: c, weight: 1}]\ncandidates:\n"
                        "  - {id: cand, stack: {torch: '2.7.1'}, scores: {c: 5}}\n")
    result = subprocess.run([sys.executable, "-m", "stackdecide", "env", "resolve", str(decision)],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "STACKDECIDE_UV": "/nonexistent/uv"})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("error: $STACKDECIDE_UV names '/nonexistent/uv', which is not an "
                             "executable\n")


def test_a_launch_plan_runs_the_candidate_in_its_own_environment(wheelhouse: Path,
                                                                 tmp_path: Path) -> None:
    """The plan asks the environment's interpreter for vLLM (this one has none, so the plan says
    so about that interpreter) and records the environment it would run in."""
    decision_file = stack_decision(
        tmp_path / "d.yaml",
        f"id: cand, stack: {{python: '{PYTHON}', packages: {{sd-beta: '2.0'}}}}, engine: {{model: m}}")
    decision = stackdecide.load(decision_file)
    resolution = resolve(_requirements(**{"sd-beta": "2.0"}), _offline(wheelhouse))
    env = build_env(resolution, tmp_path / "envs", sources=_offline(wheelhouse))
    plan = plan_launch(decision, "cand", LaunchOptions(port=None, environments={"cand": env}),
                       gpu=GpuReport((), unavailable="test: no GPU"))
    assert plan.runtime.python == env.python
    assert [p.code for p in plan.problems if p.severity == "error"] == ["vllm-unavailable"]
    assert f"vLLM is not installed in '{env.python}'" in plan.problems[0].message
    assert plan.environment_record() == {
        "lock_sha256": env.lock_sha256, "path": str(env.path), "python_version": PYTHON,
        "distributions": ["sd-alpha==1.1", "sd-beta==2.0"]}


@pytest.mark.slow
def test_a_parallel_tournament_builds_and_uses_the_environments(wheelhouse: Path,
                                                                tmp_path: Path) -> None:
    """`launch --parallel --build-envs`: each worker runs its candidate with the environment built
    for it (this one has no vLLM, so the launch is refused naming that interpreter)."""
    decision = stack_decision(
        tmp_path / "d.yaml",
        f"id: cand, stack: {{python: '{PYTHON}', packages: {{sd-beta: '2.0'}}}}, engine: {{model: m}}",
        measure="{metric: launch_ok, value: pass_fail}")
    envs = tmp_path / "envs"
    result = subprocess.run(
        [sys.executable, "-m", "stackdecide", "launch", str(decision), "--bench", "--parallel",
         "1", "--confirm-top", "0", "--build-envs", "--env-dir", str(envs), "--find-links",
         str(wheelhouse), "--offline", "--no-index"],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600)
    assert result.returncode == 1, result.stderr
    built = [entry.env for entry in list_envs(envs) if entry.env]
    assert len(built) == 1
    assert f"* cand: environment {built[0].short} built in" in result.stderr
    assert "did not start: refused" in result.stdout
    outcomes = list((tmp_path / ".stackdecide" / "runs").glob("*-cand/outcome.json"))
    assert len(outcomes) == 1
    outcome = json.loads(outcomes[0].read_text())
    assert f"vLLM is not installed in '{built[0].python}'" in json.dumps(outcome)


def test_offline_with_an_empty_cache_is_could_not_check(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """UV_OFFLINE=1 (an air-gapped machine) and no wheelhouse: uv's cache cannot answer, which
    says nothing about whether the pins install."""
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-cache"))
    resolution = resolve(_requirements(**{"sd-alpha": "1.1"}))
    assert resolution.status == "unchecked", resolution.reason
    assert "was not found in the cache" in resolution.reason
