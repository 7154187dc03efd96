"""`score` and `report` with --predict and --tolerance: predicted cells marked, the verdict within
the tolerance, and today's output without them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main

ROOT = Path(__file__).parents[2]
SPACE = str(ROOT / "criteria" / "cpu-space.yaml")
HOPPER = str(ROOT / "criteria" / "hopper.yaml")


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`score` remembers the decision it scored in the working directory's state."""
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_space_is_ranked_on_predictions_with_a_verdict_within_the_tolerance() -> None:
    code, out, _ = run("score", SPACE, "--tolerance", "3", "--samples", "500")
    assert code == 0
    leader = next(line for line in out.splitlines() if line.startswith("leader: "))
    assert ", not certified within 3 points: " in leader
    assert "predicted cells (~ above; 80 of 80, no launch measured them):" in out
    assert "verdict: not certified within 3 points: " in out
    assert "all cells judged" not in out
    code, out, _ = run("score", SPACE, "--tolerance", "3", "--samples", "500", "--format", "json")
    data = json.loads(out)
    assert data["certainty"]["verdict"]["kind"] == "undecided"
    assert data["certainty"]["within"]["tolerance_points"] == 3
    sources = {cell["source"] for c in data["candidates"] for cell in c["cells"].values()}
    assert sources == {"predicted"}  # launch_ok too: the chance of a start


def test_no_predict_gives_the_judged_ranking() -> None:
    code, out, _ = run("score", SPACE, "--no-predict")
    assert code == 0
    assert "winner: bf16-prefix-cache-batch32-seqs4 (75.00), tied with" in out
    assert "all cells judged (no measurements used)" in out
    assert "~" not in out and "predicted cells" not in out and "verdict" not in out


def test_a_space_is_predicted_by_default_and_a_list_is_not() -> None:
    _, predicted, _ = run("score", SPACE, "--samples", "500")
    assert "predicted cells (~ above;" in predicted
    # tolerance 0 asks for the best itself, which no launch has shown yet
    assert next(line for line in predicted.splitlines()
                if line.startswith("leader: ")).count(", not certified: ") == 1
    _, listed, _ = run("score", HOPPER)
    _, no_predict, _ = run("score", HOPPER, "--no-predict")
    assert listed == no_predict
    assert "all cells judged (no measurements used)" in listed and "~" not in listed


def test_a_tolerance_in_percent_of_a_criterion_and_a_wrong_one() -> None:
    code, out, _ = run("score", SPACE, "--tolerance", "3%decode_speed", "--samples", "500",
                       "--format", "json")
    assert code == 0
    assert json.loads(out)["certainty"]["within"]["tolerance_points"] == pytest.approx(0.9)
    code, _, err = run("score", SPACE, "--tolerance", "fast")
    assert code == 2 and err.startswith("error: --tolerance 'fast': give points of total")


def test_report_takes_the_same_options(tmp_path: Path) -> None:
    code, out, _ = run("report", SPACE, "--format", "markdown", "--tolerance", "3",
                       "--no-engine-command", "--samples", "200")
    assert code == 0
    assert "**Leader, not certified:" in out and "### Predicted cells" in out
    assert "`~` a predicted one" in out and "P(within 3)" in out
    code, out, _ = run("report", SPACE, "--format", "markdown", "--no-predict",
                       "--no-engine-command", "--samples", "200")
    assert code == 0 and "predicted" not in out
    page = tmp_path / "space.html"
    code, out, _ = run("report", SPACE, "--html", str(page), "--tolerance", "3",
                       "--no-engine-command", "--samples", "200")
    assert code == 0 and "; leader: " in out and "not certified within 3 points" in out
    assert '<span class="p" title="predicted ' in page.read_text()


def test_the_leader_within_a_tolerance_is_one_that_can_be_chosen_here() -> None:
    """criteria/hopper-space.yaml's tensor-parallel-2 configurations are for two GPUs, which the
    decision does not have: they rank by prediction, marked ^, and the leader named is the
    certificate's, on the decision's own GPU."""
    code, out, _ = run("score", str(ROOT / "criteria" / "hopper-space.yaml"), "--tolerance", "5",
                       "--samples", "500")
    assert code == 0
    marked = [line.split() for line in out.splitlines() if "-tp2-" in line and line[:1].isdigit()]
    assert len(marked) == 24 and all(row[2] == "^" for row in marked)
    assert "^ 30 configurations for hardware other than the decision's (2 GPUs, not the " \
        "decision's 1): ranked by prediction only, never the winner here" in out
    leader = next(line for line in out.splitlines() if line.startswith("leader: "))
    named = leader.removeprefix("leader: ").split()[0]
    assert "-tp1-" in named and f"{named} is within 5 points of the best with P = " in leader
    code, out, _ = run("report", str(ROOT / "criteria" / "hopper-space.yaml"), "--format",
                       "markdown", "--tolerance", "5", "--no-engine-command", "--samples", "200")
    assert code == 0 and "\n^ 30 configurations for hardware other than the decision's" in out


def test_the_h100_race_verdict_reads_again_with_its_calibration() -> None:
    """docs/results/h100-space/fourth-race: the race was calibrated by criteria/hopper.yaml's H200
    launches; `score --calibrate-with` given the same reads its verdict again. Eight launches do
    not certify the leader within 5 points: P = 0.79. Read with each never-launched configuration
    judged to score the middle of "Starts as configured" (7.5 of 15 points, as if known, against
    15 for each launched one), they did, with P = 0.955: that gap, not the speeds, carried it. Now
    such a configuration starts with the chance the space's launches show (8 of 8: 0.9). The
    leader's warm repeats count (its cold start-up is measured once)."""
    race = ROOT / "docs" / "results" / "h100-space" / "fourth-race"
    args = ("score", str(race / "hopper-space.yaml"), "--evidence", str(race / "space.db"),
            "--tolerance", "5", "--samples", "4000", "--format", "json")
    code, out, _ = run(*args, "--calibrate-with",
                       f"{HOPPER}={ROOT / 'docs' / 'results' / 'hopper-h200' / 'evidence.db'}")
    assert code == 0
    data = json.loads(out)["certainty"]
    assert data["verdict"]["kind"] == "undecided"
    assert data["verdict"]["winner"] == "bf16-tp1-flash_attn-kv-fp8-seqs128"
    assert ("bf16-tp1-flash_attn-kv-fp8-seqs128 is within 5 points of the best with P = 0.79, "
            "below 0.95") in data["verdict"]["text"]
    assert data["launches"]["bf16-tp1-flash_attn-kv-fp8-seqs128"] == 3


def test_configurations_for_other_hardware_do_not_set_the_scale_of_those_chosen_here(
        tmp_path: Path) -> None:
    """relative_to_best scores against the best configuration that can be chosen here: adding
    what-if configurations for two GPUs to the space leaves the one-GPU totals as they were, so
    they cannot make "within delta" easier to certify."""
    space = (ROOT / "criteria" / "hopper-space.yaml").read_text()
    assert "engine.tensor_parallel_size: [1, 2]" in space
    one_gpu = tmp_path / "one-gpu.yaml"
    what_if = """    hardware.count:  # tensor parallel size 2 runs on two GPUs: not this decision's one
      values: [2]
      when: {engine.tensor_parallel_size: 2}
"""
    assert what_if in space
    one_gpu.write_text(space.replace("engine.tensor_parallel_size: [1, 2]",
                                     "engine.tensor_parallel_size: [1]").replace(what_if, ""))
    totals = {}
    for name, path in (("both", str(ROOT / "criteria" / "hopper-space.yaml")),
                       ("one", str(one_gpu))):
        code, out, _ = run("score", path, "--format", "json", "--samples", "200")
        assert code == 0
        # a one-value axis is no part of the ids
        totals[name] = {c["id"].replace("-tp1-", "-"): c["total"]
                        for c in json.loads(out)["candidates"] if "-tp2-" not in c["id"]}
    assert totals["both"] == pytest.approx(totals["one"]) and len(totals["one"]) == 30


def test_a_configuration_for_other_hardware_is_never_the_winner() -> None:
    """On the H100 race's store the two-GPU configurations top the totals (clamped at the
    one-GPU best, they tie it on every rate); the winner, in JSON and in the report, is one that
    can run here, and the report's runner-up too."""
    race = ROOT / "docs" / "results" / "h100-space" / "fourth-race"
    args = ("--evidence", str(race / "space.db"), "--tolerance", "5", "--samples", "500",
            "--calibrate-with",
            f"{HOPPER}={ROOT / 'docs' / 'results' / 'hopper-h200' / 'evidence.db'}")
    code, out, _ = run("score", str(race / "hopper-space.yaml"), *args, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["candidates"][0]["id"].startswith("bf16-tp2-")
    assert data["winner"] == "bf16-tp1-flash_attn-kv-fp8-seqs128"
    code, out, _ = run("report", str(race / "hopper-space.yaml"), *args, "--format", "markdown",
                       "--no-engine-command")
    assert code == 0
    assert "**Leader, not certified: bf16-tp1-flash_attn-kv-fp8-seqs128** " in out
    assert "points ahead of `bf16-tp1-flash_attn-kv-auto-seqs256`" in out
