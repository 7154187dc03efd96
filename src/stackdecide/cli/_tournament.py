"""Running and printing a parallel tournament, for `launch --bench --parallel` / `--cluster`."""

from __future__ import annotations

import click

from stackdecide._files import write_json_atomic
from stackdecide.cli._app import echo_step
from stackdecide.cli._loop import echo_after
from stackdecide.decision import Decision
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.runs import iso, utc_now
from stackdecide.orchestrate import RunResult
from stackdecide.report.tournament import render_tournament, tournament_data
from stackdecide.schedule.backends import make_scheduler
from stackdecide.schedule.progress import ParallelProgress
from stackdecide.schedule.tournament import run_tournament
from stackdecide.state import state_dir


def candidates_to_run(decision: Decision, only: str | None) -> list[str]:
    """``--candidates a,b`` (each checked), else every candidate with an engine config."""
    if only:
        ids = [word.strip() for word in only.split(",") if word.strip()]
        for candidate_id in ids:
            decision.candidate(candidate_id)  # unknown ids fail here, listing the candidates
        return ids
    return [c.id for c in decision.model.candidates if c.engine]


def run_tournament_cli(decision: Decision, store_path: str, options: LaunchOptions, *,
                       cluster: str | None, limit: int | None, only: str | None, seed: int,
                       confirm_top: int, any_hardware: bool) -> RunResult:
    """Measure the candidates several at a time, re-measure the top ones alone, print it all."""
    scheduler = make_scheduler(decision, options, cluster)
    with EvidenceStore(store_path) as store:
        result = run_tournament(decision, store, scheduler, candidates_to_run(decision, only),
                                limit=limit, seed=seed, confirm_top=confirm_top,
                                any_hardware=any_hardware,
                                notify=echo_step,
                                on_event=ParallelProgress())
    click.echo("")
    click.echo(render_tournament(result), nl=False)
    echo_after(result.measurements, result.before, result.after,
               f"after the tournament ({store_path})")
    path = state_dir() / "tournaments" / f"{utc_now():%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {**tournament_data(result), "scheduler": scheduler.name,
                             "finished_at": iso(utc_now())}, indent=2, default=str)
    click.echo(f"stopped: {result.stop.reason}")
    click.echo(f"tournament summary: {path}", err=True)
    return result
