"""How a round reads: placement, neighbours, wall time against the slowest candidate; and the
options that choose a scheduler."""

from __future__ import annotations

import pytest

from stackdecide.errors import StackdecideError
from stackdecide.report.tournament import render_round, round_data
from stackdecide.schedule.backends import parse_parallel
from stackdecide.schedule.base import Round, TaskOutcome, with_neighbours
from stackdecide.schedule.progress import ParallelProgress, status_line
from stackdecide.schedule.ray_backend import cluster_address
from stackdecide.schedule.tournament import placement_scenario


def two_at_once() -> Round:
    outcomes = with_neighbours([
        TaskOutcome("bf16", (0,), "h200", 0.0, 300.0, failure="lost by Ray (NodeDiedError): x"),
        TaskOutcome("fp8", (1,), "h200", 0.5, 200.5, failure="interrupted")])
    return Round(tuple(outcomes), wall_s=330.0, limit=2)


def test_a_round_says_where_each_ran_and_the_wall_time_ratio() -> None:
    round_ = two_at_once()
    assert round_.slowest_s == 300.0 and round_.ratio_to_slowest == pytest.approx(1.1)
    text = render_round("measured", round_)
    assert text.splitlines()[-1] == ("wall time 330.0 s (at most 2 at once); slowest candidate "
                                     "300.0 s; wall / slowest = 1.10")
    assert "bf16         0       h200    fp8" in text
    assert "run failed: lost by Ray (NodeDiedError): x" in text
    data = round_data(round_)
    assert data["tasks"][1] == {"candidate": "fp8", "gpus": [1], "host": "h200",
                                "beside": ["bf16"], "started_s": 0.5, "seconds": 200.0,
                                "failure": "interrupted", "launched": None, "run_dir": None}
    assert placement_scenario(round_.outcomes[0]) == {"gpus": "0", "beside": "fp8"}
    alone = TaskOutcome("cpu-bf16", (), "h", 0.0, 1.0)
    assert placement_scenario(alone) == {"gpus": "cpu", "beside": "none"}


def test_parallel_and_cluster_options() -> None:
    assert parse_parallel("auto") is None and parse_parallel(None) is None
    assert parse_parallel("2") == 2
    with pytest.raises(StackdecideError, match="--parallel '0'"):
        parse_parallel("0")
    assert cluster_address("ray://head:10001") == "ray://head:10001"
    assert cluster_address("ray:auto") == "auto"
    with pytest.raises(StackdecideError, match="give ray or ray://HOST:PORT"):
        cluster_address("slurm")


def test_progress_is_one_line_per_event_off_a_terminal() -> None:
    import io

    from stackdecide.schedule.base import Event

    stream = io.StringIO()
    progress = ParallelProgress(stream, live=False)
    progress(Event("bf16", "worker started", 0.0, (0,), "h"))
    progress(Event("bf16", "ready: completion", 120.0, (0,), "h"))
    first, second = stream.getvalue().splitlines()
    assert first == status_line("bf16", "GPU 0", "worker started", 0.0)
    assert second.startswith("bf16") and second.endswith("ready: completion")


def test_parallel_needs_bench_and_a_count() -> None:
    from click.testing import CliRunner

    from engine_support import CPU_DECISION
    from stackdecide.cli import main

    runner = CliRunner()
    alone = runner.invoke(main, ["launch", str(CPU_DECISION), "--parallel", "2"])
    assert alone.exit_code == 2 and "--parallel and --cluster go with --bench" in alone.output
    looping = runner.invoke(main, ["launch", str(CPU_DECISION), "--bench", "--parallel", "2",
                                   "--until-stable"])
    assert looping.exit_code == 2
    bad = runner.invoke(main, ["launch", str(CPU_DECISION), "--bench", "--parallel", "many"])
    assert bad.exit_code == 2 and "give a number of candidates (1, 2, ...) or auto" in bad.output


def test_contenders_measured_alone_are_ranked_on_those_records_only() -> None:
    from stackdecide.evidence.records import EvidenceRecord
    from stackdecide.schedule.tournament import alone_where_measured

    def record(candidate: str, beside: str) -> EvidenceRecord:
        return EvidenceRecord(candidate=candidate, metric="decode_tok_s", value=1.0,
                              scenario={"beside": beside, "gpus": "0"})

    records = [record("a", "b"), record("a", "none"), record("b", "a"), record("c", "none")]
    kept = alone_where_measured(records, {"a"})
    assert [(r.candidate, r.scenario["beside"]) for r in kept] == [
        ("a", "none"), ("b", "a"), ("c", "none")]
