"""The command line: output, exit codes, and errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main

MALFORMED = Path(__file__).parents[1] / "data" / "malformed"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_score_prints_the_ranking_and_the_audit(rtx4090_table_path: Path) -> None:
    code, out, _ = run("score", str(rtx4090_table_path))
    assert code == 0
    lines = out.splitlines()
    first = next(line for line in lines if line.startswith("1 "))
    assert "vllm[flashinfer] + PyTorch 2.7.1" in first and "89.75" in first
    assert "MISMATCH -0.50" in first
    assert "reported total 83.5 does not follow" in out
    assert "winner: vllm[flashinfer] + PyTorch 2.7.1 (89.75)" in out


def test_score_of_the_seed_report_says_no_candidate_can_start(rtx4090_path: Path) -> None:
    """Its recommended configuration cannot start: no winner, the published totals still
    audited, and the audit column leads with what stops each candidate."""
    code, out, _ = run("score", str(rtx4090_path))
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(rows) == 3 and "vllm[flashinfer] + PyTorch 2.7.1" in rows[0]
    # among them engine-loads-code: the file sets trust_remote_code
    assert all("launch:fp8-e5m2-with-fp8-checkpoint (+3)" in row for row in rows)
    assert "winner: none: no candidate is feasible (3 cannot start as written)" in out
    assert "reported total 83.5 does not follow" in out
    assert ("infeasible: vllm-cuda-torch271: cannot start as written (launch:fp8-e5m2-with-fp8-"
            "checkpoint, launch:fp8-kv-unsupported-backend, launch:kv-cache-too-small)") in out


def test_the_audit_column_says_mismatch_only_for_a_reported_total() -> None:
    """A decode target above one layout's roofline carries reported and computed values too; it
    is named by its code, not read as a total that does not add up."""
    code, out, _ = run("score", str(Path(__file__).parents[2] / "criteria" / "hopper-multi.yaml"))
    assert code == 0
    rows = [line for line in out.splitlines() if line[:1] in "123"]
    assert rows and all("MISMATCH" not in row for row in rows)
    assert sum("target-above-roofline" in row for row in rows) == 2  # tp1, dp2: one GPU each


def test_score_json_is_versioned_and_complete(rtx4090_path: Path) -> None:
    code, out, _ = run("score", str(rtx4090_path), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["version"] == 1
    assert data["winner"] is None  # none of the report's configurations can start
    first = data["candidates"][0]
    assert first["id"] == "vllm-flashinfer-torch271"
    assert first["rank"] is None and first["total"] == pytest.approx(89.75)
    assert first["feasible"] is False
    assert [reason.rsplit(" [", 1)[1] for reason in first["infeasible_reasons"]] == [
        "launch:fp8-e5m2-with-fp8-checkpoint]", "launch:kv-cache-too-small]"]
    assert first["terms"] == pytest.approx({"fp8_performance": 33.25, "rtx4090_optimization": 22.5,
                                            "installation_stability": 16.0,
                                            "performance_targets": 18.0})
    assert first["cells"]["fp8_performance"]["source"] == "judged"
    assert {f["code"] for f in data["findings"]} == {"reported-total-mismatch",
                                                     "target-above-roofline",
                                                     "launch:engine-loads-code",
                                                     "launch:fp8-e5m2-with-fp8-checkpoint",
                                                     "launch:fp8-kv-unsupported-backend",
                                                     "launch:kv-cache-too-small"}


def test_score_csv_and_markdown(rtx4090_table_path: Path, rtx4090_path: Path) -> None:
    _, out, _ = run("score", str(rtx4090_table_path), "--format", "csv")
    header, first = out.splitlines()[:2]
    assert header.startswith("rank,id,name,total,fp8_performance")
    assert header.endswith(",reported_total,audit,feasible,infeasible_reasons")
    assert first.startswith("1,vllm-flashinfer-torch271,") and first.endswith(",true,")
    _, out, _ = run("score", str(rtx4090_path), "--format", "csv")
    assert out.splitlines()[1].startswith(",vllm-flashinfer-torch271,")  # no rank: infeasible
    _, out, _ = run("score", str(rtx4090_path), "--format", "markdown")
    assert "| rank" in out and "|---" in out.replace("-|-", "|-")


@pytest.mark.parametrize("method", ["wpm", "topsis"])
def test_other_methods_keep_the_winner(rtx4090_table_path: Path, method: str) -> None:
    code, out, _ = run("score", str(rtx4090_table_path), "--method", method, "--format", "json")
    assert code == 0
    assert json.loads(out)["winner"] == "vllm-flashinfer-torch271"


def test_check_exits_1_on_findings_and_0_without(rtx4090_path: Path, tmp_path: Path,
                                                 small_text: str) -> None:
    code, out, _ = run("check", str(rtx4090_path), "--no-stacks")
    assert code == 1
    assert "reported total 89.25 does not follow" in out
    clean = tmp_path / "clean.yaml"
    clean.write_text(small_text)
    code, out, _ = run("check", str(clean))
    assert code == 0 and "no findings" in out


@pytest.mark.parametrize("name", ["unknown-key", "binary", "empty", "alias-bomb", "yaml-syntax"])
def test_bad_input_is_one_line_on_stderr_with_exit_2(name: str) -> None:
    path = MALFORMED / f"{name}.yaml"
    for command in ("score", "check"):
        code, out, err = run(command, str(path))
        assert code == 2
        assert out == ""
        assert err.startswith(f"error: {path}")
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_file_exit_2() -> None:
    code, _, err = run("score", "nope.yaml")
    assert code == 2 and err == "error: nope.yaml: no such file\n"


def test_console_script_runs_without_traceback() -> None:
    # Through a real process, as a user runs it.
    result = subprocess.run([sys.executable, "-m", "stackdecide", "score", "missing.yaml"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_fault_of_stackdecide_is_one_line_with_exit_3_and_its_traceback_on_request(
        rtx4090_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("no such state")

    monkeypatch.setattr("stackdecide.load", broken)
    monkeypatch.delenv("STACKDECIDE_DEBUG")
    code, out, err = run("score", str(rtx4090_path))
    assert (code, out) == (3, "")
    assert err == ("error: internal error, RuntimeError: no such state. This is a fault in "
                   "stackdecide, not in what it was given: STACKDECIDE_DEBUG=1 shows where it "
                   "happened; please report it with that output\n")
    monkeypatch.setenv("STACKDECIDE_DEBUG", "1")
    result = CliRunner().invoke(main, ["score", str(rtx4090_path)])
    assert isinstance(result.exception, RuntimeError)


def test_a_file_the_system_refuses_is_one_line_with_exit_1(
        rtx4090_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", "/srv/out.json")

    monkeypatch.setattr("stackdecide.load", refused)
    code, out, err = run("score", str(rtx4090_path))
    assert (code, out) == (1, "")
    assert err == "error: [Errno 13] Permission denied: '/srv/out.json'\n"


@pytest.mark.parametrize("command", [[], ["score"], ["check"]])
def test_help_everywhere(command: list[str]) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0 and "Usage:" in out


def test_score_records_the_decision_for_launch(rtx4090_path: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from stackdecide.state import last_decision

    monkeypatch.chdir(tmp_path)
    run("score", str(rtx4090_path))
    assert last_decision() == rtx4090_path.resolve()


def test_one_finding_about_several_candidates_is_one_line() -> None:
    code, out, _ = run("check", str(Path(__file__).parents[2] / "criteria" / "hopper-multi.yaml"),
                       "--no-stacks", "--no-engine-keys")
    assert code == 1  # the audit found a warning
    warnings = [line for line in out.splitlines() if "single-stream decode ceiling" in line]
    assert len(warnings) == 1 and warnings[0].endswith("(candidates tp1, dp2)")
