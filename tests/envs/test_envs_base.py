"""Environments layered on an installed one (``--base-env``), with the real uv and no index.

The base stands for a GPU machine's image: a CUDA build of a big package (``sd-torch
2.11.0+cu130``) that no wheelhouse carries, and an engine release (``sd-engine 0.26``). The
candidates' wheelhouse has other engine releases and their small dependencies, never sd-torch.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from wheelhouse import make_wheel, stack_decision

from stackdecide.cli import main
from stackdecide.envs.base import PTH_FILE, BaseEnv, read_base_env
from stackdecide.envs.build import MANIFEST, build_env
from stackdecide.envs.decision import EnvOptions, target_python
from stackdecide.envs.requirements import stack_requirements
from stackdecide.envs.resolve import resolve
from stackdecide.envs.uv import EnvError, Sources, find_uv
from stackdecide.model.schema import Stack

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseEnv, Path]:
    """(the base environment, the candidates' wheelhouse)."""
    root = tmp_path_factory.mktemp("base")
    image = root / "image-wheels"
    make_wheel(image, "sd-torch", "2.11.0+cu130")
    make_wheel(image, "sd-alpha", "1.0")
    make_wheel(image, "sd-engine", "0.26", requires=("sd-torch==2.11.0", "sd-alpha>=1.0"))
    uv = find_uv()
    subprocess.run([uv, "venv", str(root / "image"), "--python", sys.executable, "--quiet"],
                   check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(root / "image/bin/python"),
                    "--no-index", "--find-links", str(image), "sd-engine==0.26"], check=True)
    wheels = root / "wheels"
    make_wheel(wheels, "sd-alpha", "1.0")
    make_wheel(wheels, "sd-alpha", "1.1")
    make_wheel(wheels, "sd-engine", "0.25", requires=("sd-torch==2.11.0", "sd-alpha>=1.1"))
    make_wheel(wheels, "sd-engine", "0.27", requires=("sd-torch==2.12.0",))
    return read_base_env(str(root / "image/bin/python")), wheels


def _offline(folder: Path) -> Sources:
    return Sources(find_links=(str(folder),), no_index=True, offline=True)


def _requirements(**packages: str):
    return stack_requirements("cand", Stack(packages=packages), cpu=True, python_version=PYTHON)


def _sees(env_python: str, *names: str) -> dict[str, str]:
    script = ("import importlib.metadata as m, json, sys; "
              "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    done = subprocess.run([env_python, "-c", script, *names], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_the_base_is_read_with_its_versions(machine: tuple[BaseEnv, Path]) -> None:
    base, _ = machine
    assert base.python_version == PYTHON
    assert {n: v for n, v in base.packages.items() if n.startswith("sd-")} == {
        "sd-alpha": "1.0", "sd-engine": "0.26", "sd-torch": "2.11.0+cu130"}


def test_a_stack_the_base_provides_installs_nothing(machine: tuple[BaseEnv, Path],
                                                    tmp_path: Path) -> None:
    """``==2.11.0`` accepts the base's ``2.11.0+cu130`` (pip's rule for local versions)."""
    base, wheels = machine
    resolution = resolve(_requirements(**{"sd-engine": "0.26", "sd-torch": "2.11.0"}),
                         _offline(wheels), base)
    assert resolution.status == "ok", resolution.reason
    assert resolution.lock is not None and resolution.lock.packages == ()
    assert resolution.lock.version("sd-torch") == "2.11.0+cu130"
    assert "0 packages over" in resolution.summary()
    env = build_env(resolution, tmp_path / "envs", sources=_offline(wheels), base=base)
    assert _sees(env.python, "sd-engine", "sd-torch") == {"sd-engine": "0.26",
                                                         "sd-torch": "2.11.0+cu130"}
    assert env.version("sd-torch") == "2.11.0+cu130"
    manifest = json.loads((env.path / MANIFEST).read_text())
    assert manifest["base_env"] == base.python and manifest["packages"] == []


def test_another_release_over_the_base_installs_what_it_needs_differently(
        machine: tuple[BaseEnv, Path], tmp_path: Path) -> None:
    """sd-engine 0.25 needs sd-alpha>=1.1; the base's 1.0 does not do, so 1.1 is installed beside
    it (a second round); sd-torch stays the base's."""
    base, wheels = machine
    resolution = resolve(_requirements(**{"sd-engine": "0.25", "sd-torch": "2.11.0"}),
                         _offline(wheels), base)
    assert resolution.lock is not None
    assert resolution.lock.packages == (("sd-engine", "0.25"),)  # first round: alpha left out
    env = build_env(resolution, tmp_path / "envs", sources=_offline(wheels), base=base)
    assert _sees(env.python, "sd-engine", "sd-alpha", "sd-torch") == {
        "sd-engine": "0.25", "sd-alpha": "1.1", "sd-torch": "2.11.0+cu130"}
    manifest = json.loads((env.path / MANIFEST).read_text())
    assert manifest["packages"] == ["sd-alpha==1.1", "sd-engine==0.25"]
    assert manifest["first_lock_sha256"] == resolution.lock.sha256 != env.lock_sha256
    assert "sd-torch" in manifest["from_base"] and "sd-alpha" not in manifest["from_base"]
    assert [d for d in env.distributions if d.startswith("sd-")] == [
        "sd-alpha==1.1", "sd-engine==0.25", "sd-torch==2.11.0+cu130"]
    assert (env.path / "lib" / f"python{PYTHON}" / "site-packages" / PTH_FILE).is_file()
    # the same question again finds the environment built from it, not a new build
    again = build_env(resolution, tmp_path / "envs", sources=_offline(wheels), base=base)
    assert not again.built_now and again.path == env.path


def test_a_pin_the_base_does_not_meet_needs_the_wheel(machine: tuple[BaseEnv, Path]) -> None:
    base, wheels = machine
    resolution = resolve(_requirements(**{"sd-torch": "2.12.0"}), _offline(wheels), base)
    assert resolution.status == "conflict"
    assert "sd-torch==2.12.0" in resolution.reason


def test_a_dependency_the_base_cannot_meet_is_named(machine: tuple[BaseEnv, Path],
                                                    tmp_path: Path) -> None:
    base, wheels = machine
    resolution = resolve(_requirements(**{"sd-engine": "0.27"}), _offline(wheels), base)
    assert resolution.ok  # sd-torch left out: the base has one
    with pytest.raises(EnvError) as caught:
        build_env(resolution, tmp_path / "envs", sources=_offline(wheels), base=base)
    message = str(caught.value)
    assert message.startswith("candidate 'cand': over the base environment ")
    assert "sd-torch must be installed again, and cannot be" in message
    assert "sd-torch==2.12.0" in message
    assert [p.name for p in (tmp_path / "envs").iterdir()] == []  # nothing half-built stays


@pytest.fixture(scope="module")
def shadowing(tmp_path_factory: pytest.TempPathFactory) -> tuple[BaseEnv, Path]:
    """A base whose packages need a newer sd-ffi than an older engine pins: the GPU machine's
    xgrammar 0.2.7 needs apache-tvm-ffi>=0.1.10, vLLM 0.25.1 pins 0.1.9. sd-tools is a base
    package the engine does not need at all."""
    root = tmp_path_factory.mktemp("shadowing")
    image = root / "image-wheels"
    make_wheel(image, "sd-ffi", "0.10")
    make_wheel(image, "sd-grammar", "0.27", requires=("sd-ffi>=0.10",))
    make_wheel(image, "sd-tools", "1.0", requires=("sd-ffi>=0.10",))
    make_wheel(image, "sd-engine", "0.26", requires=("sd-ffi==0.10", "sd-grammar>=0.2"))
    uv = find_uv()
    subprocess.run([uv, "venv", str(root / "image"), "--python", sys.executable, "--quiet"],
                   check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(root / "image/bin/python"),
                    "--no-index", "--find-links", str(image), "sd-engine==0.26", "sd-tools==1.0"],
                   check=True)
    wheels = root / "wheels"
    make_wheel(wheels, "sd-ffi", "0.9")
    make_wheel(wheels, "sd-grammar", "0.23", requires=("sd-ffi>=0.5",))
    make_wheel(wheels, "sd-grammar", "0.27", requires=("sd-ffi>=0.10",))
    make_wheel(wheels, "sd-tools", "0.9", requires=("sd-ffi",))
    make_wheel(wheels, "sd-engine", "0.25", requires=("sd-ffi==0.9", "sd-grammar>=0.2"))
    return read_base_env(str(root / "image/bin/python")), wheels


def test_base_packages_that_do_not_work_with_what_the_environment_shadows_are_installed_too(
        shadowing: tuple[BaseEnv, Path], tmp_path: Path) -> None:
    """sd-engine 0.25 pins sd-ffi 0.9; the base's sd-grammar 0.27 (which the engine uses) and
    sd-tools 1.0 (which it does not) need sd-ffi>=0.10, so versions of both that work with 0.9
    are installed beside them."""
    base, wheels = shadowing
    resolution = resolve(_requirements(**{"sd-engine": "0.25"}), _offline(wheels), base)
    assert resolution.lock is not None
    assert resolution.lock.packages == (("sd-engine", "0.25"),)  # first round
    env = build_env(resolution, tmp_path / "envs", sources=_offline(wheels), base=base)
    assert _sees(env.python, "sd-engine", "sd-ffi", "sd-grammar", "sd-tools") == {
        "sd-engine": "0.25", "sd-ffi": "0.9", "sd-grammar": "0.23", "sd-tools": "0.9"}
    manifest = json.loads((env.path / MANIFEST).read_text())
    assert manifest["packages"] == ["sd-engine==0.25", "sd-ffi==0.9", "sd-grammar==0.23",
                                    "sd-tools==0.9"]


def test_a_base_package_no_version_of_which_fits_is_named(shadowing: tuple[BaseEnv, Path],
                                                          tmp_path: Path) -> None:
    base, wheels = shadowing
    only_new = tmp_path / "wheels"
    for wheel in wheels.iterdir():
        if not wheel.name.startswith(("sd_grammar-0.23", "sd_tools-0.9")):
            (only_new / wheel.name).parent.mkdir(exist_ok=True)
            (only_new / wheel.name).write_bytes(wheel.read_bytes())
    resolution = resolve(_requirements(**{"sd-engine": "0.25"}), _offline(only_new), base)
    with pytest.raises(EnvError) as caught:
        build_env(resolution, tmp_path / "envs", sources=_offline(only_new), base=base)
    message = str(caught.value)
    assert "sd-grammar, sd-tools must be installed again, and cannot be" in message
    assert [p.name for p in (tmp_path / "envs").iterdir()] == []


def test_a_wheelhouse_for_a_layered_build_holds_what_the_base_lacks(
        shadowing: tuple[BaseEnv, Path], tmp_path: Path) -> None:
    """`env download --base-freeze`: on a connected machine, from the GPU machine's pip freeze,
    the wheels a layered build of sd-engine 0.25 needs; that wheelhouse alone then builds it."""
    from click.testing import CliRunner

    base, wheels = shadowing
    index = (str(wheels.parent / "image-wheels"), str(wheels))  # every release, as PyPI has
    freeze = tmp_path / "image-freeze.txt"
    freeze.write_text("# pip freeze on the GPU machine\n-e /opt/work/tool\nsd-engine==0.26\n"
                      "sd-ffi==0.10\nsd-grammar==0.27\nsd-tools==1.0\nsd-cuda==13.0+local\n")
    decision = stack_decision(tmp_path / "d.yaml", "id: old, stack: {packages: {sd-engine: '0.25'}}")
    house = tmp_path / "house"
    result = CliRunner().invoke(main, [
        "env", "download", str(decision), "--dest", str(house), "--base-freeze", str(freeze),
        "--python-version", PYTHON, "--find-links", index[0], "--find-links", index[1],
        "--no-index", "--offline"])
    assert result.exit_code == 0, result.output
    assert sorted(w.name for w in house.iterdir()) == [
        "sd_engine-0.25-py3-none-any.whl", "sd_ffi-0.9-py3-none-any.whl",
        "sd_grammar-0.23-py3-none-any.whl", "sd_tools-0.9-py3-none-any.whl"]
    assert "old: lock " in result.stdout
    assert f"4 of its 4 packages are not in {freeze} at those versions; 4 wheels" in result.stdout
    assert ("warning: not in the package index, so left out of the lock's question: sd-cuda "
            "(of the base)") in result.stdout
    resolution = resolve(_requirements(**{"sd-engine": "0.25"}), _offline(house), base)
    env = build_env(resolution, tmp_path / "envs", sources=_offline(house), base=base)
    assert _sees(env.python, "sd-engine", "sd-ffi", "sd-grammar", "sd-tools") == {
        "sd-engine": "0.25", "sd-ffi": "0.9", "sd-grammar": "0.23", "sd-tools": "0.9"}


def test_a_freeze_line_that_pins_nothing_is_named(tmp_path: Path) -> None:
    from stackdecide.envs.download import read_freeze

    freeze = tmp_path / "freeze.txt"
    freeze.write_text("sd-ffi==0.10\nsd-grammar>=0.2\n")
    with pytest.raises(EnvError, match=r"freeze.txt:2: 'sd-grammar>=0.2' pins no single version"):
        read_freeze(freeze)
    freeze.write_text("sd-ffi==0.10\n!!!\n")
    with pytest.raises(EnvError, match=r"freeze.txt:2: '!!!' is not a requirement line"):
        read_freeze(freeze)
    freeze.write_text("torch @ https://download.pytorch.org/whl/cu130/torch-2.11.0%2Bcu130-cp312-"
                      "cp312-manylinux_2_28_x86_64.whl\ntool @ file:///opt/src/tool\n"
                      "-e git+https://example.org/x.git#egg=x\nsd-ffi==0.10\n")
    assert read_freeze(freeze) == {"torch": "2.11.0+cu130", "sd-ffi": "0.10"}


def test_cli_build_over_a_base(machine: tuple[BaseEnv, Path], tmp_path: Path) -> None:
    base, wheels = machine
    decision = stack_decision(tmp_path / "d.yaml",
                              "id: new, stack: {packages: {sd-engine: '0.26', sd-torch: '2.11.0'}}",
                              "id: old, stack: {packages: {sd-engine: '0.25', sd-torch: '2.11.0'}}")
    result = CliRunner().invoke(main, ["env", "build", str(decision), "--base-env", base.python,
                                       "--env-dir", str(tmp_path / "envs"), "--find-links",
                                       str(wheels), "--offline", "--no-index"])
    assert result.exit_code == 0, result.output
    assert "new: resolved" in result.stderr and "old: environment" in result.stderr
    resolved = CliRunner().invoke(main, ["env", "resolve", str(decision), "--base-env",
                                         base.python, "--find-links", str(wheels), "--offline",
                                         "--no-index"])
    assert resolved.exit_code == 0, resolved.output
    assert "over" in resolved.stdout
    checked = CliRunner().invoke(main, ["check", str(decision), "--no-engine-keys", "--base-env",
                                        base.python, "--find-links", str(wheels), "--offline",
                                        "--no-index"])
    assert "old: installable as pinned (1 package over " in checked.stdout, checked.output


@pytest.mark.parametrize(("python", "says"), [
    ("/nonexistent/python", "cannot run '/nonexistent/python'"),
    ("/bin/false", "'/bin/false' did not describe its packages (is it a Python 3.8+ interpreter?)"),
    ("/bin/echo", "'/bin/echo' did not describe its packages (is it a Python 3.8+ interpreter?)"),
])
def test_a_base_that_is_no_python_is_named(python: str, says: str) -> None:
    with pytest.raises(EnvError) as caught:
        read_base_env(python)
    assert str(caught.value).startswith("--base-env: ") and says in str(caught.value)


def _another_python() -> str | None:
    """A working interpreter of another Python X.Y than this one, if the machine has one."""
    names = [f"python3.{minor}" for minor in range(9, 15) if minor != sys.version_info.minor]
    found = [shutil.which(name) for name in names]
    found += sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.*/bin/python3")))
    for python in filter(None, found):
        done = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() != str(tuple(sys.version_info[:2])):
            return python
    return None


def test_the_target_python_is_that_of_the_interpreter_the_environments_come_from(
        tmp_path: Path) -> None:
    """A candidate that pins no Python is resolved for --python-version, else for the Python of
    --base-env or --base-python (a lock for another one could not be built on it), else for this
    interpreter's."""
    other = tmp_path / "python-other"  # answers the version question as a Python 3.99 would
    other.write_text("#!/bin/sh\necho 3.99\n")
    other.chmod(0o755)
    assert target_python(EnvOptions()) is None
    assert target_python(EnvOptions(base_python=str(other))) == "3.99"
    assert target_python(EnvOptions(base_python=str(other), python_version="3.10")) == "3.10"


def test_a_base_of_another_python_is_resolved_for_its_python(tmp_path: Path) -> None:
    python = _another_python()
    if python is None:
        pytest.skip("this machine has one Python X.Y only")
    uv = find_uv()
    subprocess.run([uv, "venv", str(tmp_path / "image"), "--python", python, "--quiet"],
                   check=True)
    base = read_base_env(str(tmp_path / "image/bin/python"))
    assert base.python_version != PYTHON
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "sd-alpha", "1.1")
    decision = stack_decision(tmp_path / "d.yaml", "id: only, stack: {packages: {sd-alpha: '1.1'}}")
    resolved = CliRunner().invoke(main, ["env", "resolve", str(decision), "--base-env", base.python,
                                         "--find-links", str(wheels), "--offline", "--no-index"])
    assert resolved.exit_code == 0, resolved.output
    assert f"Python {base.python_version}" in resolved.stdout, resolved.stdout
