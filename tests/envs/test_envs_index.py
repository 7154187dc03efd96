"""Verdicts from the real package index (small packages), and what `check` makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main
from stackdecide.envs.requirements import stack_requirements
from stackdecide.envs.resolve import resolve
from stackdecide.envs.uv import Sources
from stackdecide.model.schema import Stack

UNREACHABLE = Sources(index_url="http://127.0.0.1:9/simple")  # nothing listens on port 9


def _resolve(sources: Sources | None = None, **packages: str):
    requirements = stack_requirements("cand", Stack(packages=packages), cpu=True,
                                      python_version="3.12")
    return resolve(requirements, sources or Sources.from_environment())


@pytest.mark.network
def test_a_pinned_release_resolves_to_a_lock() -> None:
    resolution = _resolve(six="1.16.0")
    assert resolution.status == "ok", resolution.reason
    assert resolution.lock is not None and resolution.lock.packages == (("six", "1.16.0"),)


@pytest.mark.network
def test_an_unknown_package_is_the_resolvers_sentence() -> None:
    resolution = _resolve(**{"stackdecide-no-such-package-x7": "1.0"})
    assert resolution.status == "conflict"
    assert resolution.reason == ("Because stackdecide-no-such-package-x7 was not found in the "
                                 "package registry and you require "
                                 "stackdecide-no-such-package-x7==1.0, we can conclude that your "
                                 "requirements are unsatisfiable.")


@pytest.mark.network
def test_pins_that_contradict_each_other() -> None:
    resolution = _resolve(**{"python-dateutil": "2.9.0.post0", "six": "1.4.0"})
    assert resolution.status == "conflict"
    assert "python-dateutil==2.9.0.post0 depends on six>=1.5" in resolution.reason


def test_an_index_that_does_not_answer_is_could_not_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")  # refused is refused: no need to wait for retries
    resolution = _resolve(UNREACHABLE, six="1.16.0")
    assert resolution.status == "unchecked"
    assert resolution.summary().startswith("could not check: 127.0.0.1:9 did not answer")


def _decision(tmp_path: Path, pin: str) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(
        "schema: stackdecide/v1\ndecision: {title: t}\ncriteria: [{id: c, weight: 1}]\n"
        "candidates:\n"
        "  - id: good\n    stack: {python: '3.12', packages: {six: '1.16.0'}}\n"
        "    scores: {c: 5}\n"
        f"  - id: bad\n    stack: {{python: '3.12', torch: '{pin}'}}\n    scores: {{c: 6}}\n")
    return path


@pytest.mark.network
def test_check_says_per_candidate_whether_its_stack_installs(tmp_path: Path) -> None:
    path = _decision(tmp_path, "2.6.2")
    result = CliRunner().invoke(main, ["check", str(path), "--no-engine-keys"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert (f"error: {path}:9:36 candidates[1].stack.torch: stack cannot be installed as pinned: "
            "Because there is no version of torch==2.6.2 and you require torch==2.6.2, we can "
            "conclude that your requirements are unsatisfiable.") in lines
    assert lines[lines.index("stacks (each candidate's pins resolved with uv):") + 1].startswith(
        "good: installable as pinned (1 package, lock ")


def test_check_without_the_index_warns_could_not_check(tmp_path: Path) -> None:
    path = _decision(tmp_path, "2.6.2")
    result = CliRunner(env={"PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "",
                               "UV_HTTP_RETRIES": "0"}).invoke(
        main, ["check", str(path), "--no-engine-keys", "--index-url",
               "http://127.0.0.1:9/simple"])
    assert result.exit_code == 1
    warnings = [line for line in result.stdout.splitlines()
                if line.startswith("warning:") and "could not check" in line]
    assert [line.split(": could not check: ")[0] for line in warnings] == [
        f"warning: {path}:6:12 candidates[0].stack", f"warning: {path}:9:12 candidates[1].stack"]


@pytest.mark.network
def test_score_marks_the_stack_that_cannot_be_installed(tmp_path: Path) -> None:
    path = _decision(tmp_path, "2.6.2")
    result = CliRunner().invoke(main, ["score", str(path), "--stacks"])
    assert result.exit_code == 0
    marks = result.stdout.split("stacks (each candidate's pins resolved with uv):\n")[1]
    assert [line.split(":")[0] for line in marks.splitlines()] == ["  [ok] good",
                                                                   "  [UNRESOLVABLE] bad"]
