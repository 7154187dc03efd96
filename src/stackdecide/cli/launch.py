"""`stackdecide launch`: render, preflight and start a candidate's vLLM server."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

import stackdecide
from stackdecide.cli._app import (
    any_hardware_option,
    calibrate_option,
    echo_step,
    handle_errors,
    main,
)
from stackdecide.cli.env import base_env_option, env_dir_option, env_options, source_options
from stackdecide.envs.decision import EnvOptions, build_candidates
from stackdecide.evidence.store import default_evidence_path
from stackdecide.launch import preflight
from stackdecide.launch.plan import (
    DEFAULT_TIMEOUT_S,
    LaunchOptions,
    LaunchRefused,
    Progress,
    pick_winner,
    plan_launch,
    resolve_decision_file,
)
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.launch.server import LaunchFailed, serve_until_interrupted, start_server
from stackdecide.loop import record_launch
from stackdecide.model.certainty import DEFAULT_CONFIDENCE
from stackdecide.model.problems import errors
from stackdecide.race import RaceLimits
from stackdecide.report.launch import progress_line, render_plan
from stackdecide.search import Calibrations, SearchLimits, calibrations_from, tolerance_points


def _host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse an address that cannot be one (exit 2); warnings about exposure come with the plan."""
    refused = [p.message for p in preflight.check_host(value) if p.severity == "error"]
    if refused:
        raise click.BadParameter("; ".join(refused))
    return value


def echo_progress(event: Progress) -> None:
    click.echo(progress_line(event), err=True)


def _record(store_path: str, outcome: LaunchOutcome) -> None:
    ids = record_launch(store_path, outcome)
    click.echo(f"evidence: launch_ok={int(outcome.ok)} recorded in {store_path} "
               f"(records {', '.join(map(str, ids))})", err=True)


@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--winner", is_flag=True,
              help="Launch the best-ranked feasible candidate (weighted sum).")
@click.option("--candidate", "candidate_id", metavar="ID", help="Launch this candidate.")
@click.option("--dry-run", is_flag=True,
              help="Print the exact command and environment after preflight; start nothing.")
@click.option("--keep", is_flag=True,
              help="Leave the server running once ready and print how to stop it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, callback=_host,
              help="Address to bind; anything but loopback exposes the server.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_S,
              show_default=True, help="Seconds to wait for readiness (first GPU starts compile "
                                      "kernels for minutes).")
@click.option("--dummy-weights", is_flag=True,
              help="Scaffold decision.model.shape into the run folder and serve random weights "
                   "(--load-format dummy); the served name stays the model id. A real model "
                   "(stackdecide/smollm2-135m) keeps its own weights.")
@click.option("--python", "python", metavar="PATH",
              help="Interpreter that runs vLLM (default: $STACKDECIDE_VLLM_PYTHON or this one).")
@click.option("--use-current-env", is_flag=True,
              help="Run candidates whose stack pins differ from this interpreter's packages "
                   "anyway (measuring the installed stack) instead of refusing them.")
@click.option("--allow-code-loading", is_flag=True,
              help="Start candidates whose engine keys or env make the server load code the "
                   "decision file points at (trust_remote_code, middleware, LD_PRELOAD, ...: "
                   "docs/launch.md); refused otherwise, unless decision.allow_code_loading.")
@click.option("--build-envs", is_flag=True,
              help="Run each candidate that pins its stack in its own environment, resolved and "
                   "built (or reused) first: see `stackdecide env build`.")
@env_dir_option
@source_options
@base_env_option
@click.option("--bench", is_flag=True,
              help="Once ready, run the decision's benchmark scenarios, store the measurements "
                   "as evidence, stop the server and show the ranking before and after.")
@click.option("--until-certain", is_flag=True,
              help="With --bench --winner: race the candidates (fresh launches, interleaved) until "
                   "the winner is certified at --confidence, a tie is proven, or the budget is "
                   "spent. Resumes from the evidence store.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=DEFAULT_CONFIDENCE,
              show_default=True, help="With --until-certain: P(best) that certifies a winner.")
@click.option("--tolerance", metavar="POINTS|PCT%CRITERION", default=None,
              help="With --until-certain: certify a candidate within this much of the best "
                   "(points of total, or e.g. 3%decode_speed: 3% of that criterion's metric), and "
                   "name every candidate equivalent within it. Default: 1 point for a decision "
                   "with a space, 0 (the best itself; a tie when the noise hides it) otherwise.")
@calibrate_option("With --until-certain on a space: ")
@click.option("--budget", "budget_min", type=click.FloatRange(min=0.1), default=None,
              help="With --until-certain: GPU-minutes this run may spend (a launch holding two "
                   "GPUs for three minutes spends six; on the CPU engine, minutes); no launch "
                   "starts that would overrun it.")
@click.option("--race-seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --until-certain: seed of the launch order and the prompts (recorded).")
@click.option("--until-stable", is_flag=True,
              help="With --bench (the older loop, one launch per candidate): then launch and "
                   "measure the new leader, and any candidate that could still overtake it, until "
                   "the leader rests on measurements.")
@click.option("--max-launches", type=click.IntRange(1, 50), default=None,
              help="With --until-certain or --until-stable: most servers to start "
                   "[default: 12 and 4].")
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
              help="Evidence database [default: .stackdecide/evidence.db beside FILE]. Every "
                   "launch records launch_ok (and startup_s) there.")
@any_hardware_option("With --bench: also rank with evidence from other hardware (marked).")
@click.option("--parallel", "parallel", metavar="N|auto", default=None,
              help="With --bench: measure the candidates (all with an engine config, or "
                   "--candidates) N at a time on disjoint GPU sets of this host (auto: as many "
                   "as fit), then re-measure the top contenders alone before naming a winner.")
@click.option("--cluster", metavar="ray|ray://HOST:PORT", default=None,
              help="With --bench: run each candidate as a Ray task with the GPUs it needs "
                   "(needs stackdecide[cluster]); evidence comes back to this store.")
@click.option("--candidates", "only", metavar="ID,ID", default=None,
              help="With --parallel or --cluster: measure only these candidates.")
@click.option("--confirm-top", type=click.IntRange(0, 10), default=2, show_default=True,
              help="With --parallel or --cluster: contenders re-measured alone (0: none).")
@handle_errors
def launch(file: str | None, winner: bool, candidate_id: str | None, dry_run: bool, keep: bool,
           port: int, host: str, timeout_s: float, dummy_weights: bool,
           python: str | None, bench: bool, until_certain: bool, confidence: float,
           tolerance: str | None, calibrate_with: tuple[str, ...], budget_min: float | None,
           race_seed: int, until_stable: bool,
           max_launches: int | None, evidence_path: str | None, any_hardware: bool,
           parallel: str | None, cluster: str | None, only: str | None,
           confirm_top: int, use_current_env: bool, allow_code_loading: bool, build_envs: bool,
           **env_kwargs: Any) -> None:
    """Start vLLM with a candidate's engine config from decision FILE.

    Without FILE, uses the decision last scored in this directory or the only file in criteria/.
    The server runs in its own process group and is stopped on exit, error or Ctrl-C (unless
    --keep). Logs and outcome go to .stackdecide/runs/<UTC time>-<candidate>/.
    Exit status: 0 ready (or dry run accepted), 1 refused or failed, 2 bad input.
    """
    if build_envs and (python or use_current_env):
        raise click.UsageError("--build-envs runs candidates in their own environments: drop "
                               "--python/--use-current-env")
    if (tolerance is not None or calibrate_with) and not until_certain:
        raise click.UsageError("--tolerance and --calibrate-with go with --until-certain")
    if parallel is not None or cluster is not None:
        if until_certain:
            _search(file, bench, dry_run or keep, LaunchOptions(
                host=host, timeout_s=timeout_s, dummy_weights=dummy_weights, python=python,
                port=None, use_current_env=use_current_env,
                allow_code_loading=allow_code_loading), evidence_path, cluster, parallel,
                tolerance, confidence, budget_min, max_launches, race_seed, any_hardware,
                calibrations_from(calibrate_with))
            return
        _tournament(file, bench, until_stable, dry_run or keep,
                    LaunchOptions(host=host, timeout_s=timeout_s, dummy_weights=dummy_weights,
                                  python=python, port=None,
                                  use_current_env=use_current_env,
                                  allow_code_loading=allow_code_loading),
                    evidence_path, cluster, parallel, only, race_seed, confirm_top, any_hardware,
                    env_options(env_kwargs) if build_envs else None)
        return
    if winner == (candidate_id is not None):
        raise click.UsageError("pass exactly one of --winner or --candidate ID")
    if (until_stable or until_certain) and not (bench and winner):
        raise click.UsageError("--until-certain and --until-stable need --bench and --winner")
    if until_stable and until_certain:
        raise click.UsageError("pass one of --until-certain or --until-stable")
    if bench and (dry_run or keep):
        raise click.UsageError("--bench starts, measures and stops servers: drop --dry-run/--keep")
    path, why = resolve_decision_file(file)
    click.echo(f"decision: {why}", err=True)
    decision = stackdecide.load(path)
    chosen, how = pick_winner(decision) if winner else (str(candidate_id), "")
    decision.candidate(chosen)  # unknown ids fail here, listing the candidates
    if not until_certain:  # a race chooses its own launches, and says why
        click.echo(f"candidate: {chosen}" + (f" ({how})" if how else ""), err=True)
    environments = build_candidates(decision, None if bench and winner else [chosen],
                                    env_options(env_kwargs), notify=echo_step) \
        if build_envs else {}
    options = LaunchOptions(host=host, port=port, timeout_s=timeout_s,
                            dummy_weights=dummy_weights, keep=keep, python=python,
                            on_progress=echo_progress, environments=environments,
                            use_current_env=use_current_env,
                            allow_code_loading=allow_code_loading)
    store_path = evidence_path or str(default_evidence_path(path))
    if bench and until_certain and (decision.model.space is not None or tolerance is not None):
        from stackdecide.cli._loop import run_search_cli

        result = run_search_cli(decision, store_path, replace(options, port=None), SearchLimits(
            tolerance_points(decision, tolerance), confidence, max_launches,
            budget_min), seed=race_seed, any_hardware=any_hardware,
            also=calibrations_from(calibrate_with))
        if result.measurements and not any(m.launched for m in result.measurements):
            sys.exit(1)
        return
    if bench and until_certain:
        from stackdecide.cli._loop import run_race

        race = run_race(decision, store_path, replace(options, port=None),
                        limits=RaceLimits(confidence, max_launches or 12,
                                          budget_min * 60 if budget_min else None),
                        seed=race_seed, any_hardware=any_hardware)
        if race.measurements and (not any(m.launched for m in race.measurements)
                                  or any(m.error for m in race.measurements)):
            sys.exit(1)  # nothing started, or a benchmark was cut short (kept, flagged partial)
        return
    if bench:
        from stackdecide.cli._loop import run_loop

        result = run_loop(decision, store_path, replace(options, port=None if until_stable
                                                         else port),
                          stable=until_stable, max_launches=max_launches or 4,
                          first=None if winner else chosen, any_hardware=any_hardware)
        if not any(m.launched for m in result.measurements) or any(
                m.error for m in result.measurements):
            sys.exit(1)
        return
    _start_one(decision, chosen, options, store_path, dry_run, keep)


def _start_one(decision: stackdecide.Decision, chosen: str, options: LaunchOptions,
               store_path: str, dry_run: bool, keep: bool) -> None:
    """Plan one candidate; print the plan (dry run), or start it and serve until Ctrl-C."""
    plan = plan_launch(decision, chosen, options)
    if dry_run:
        click.echo(render_plan(plan), nl=False)
        if not plan.ok:
            count = len(errors(plan.problems))
            click.echo(f"refused: {count} problem{'s' if count != 1 else ''} above; nothing "
                       "was started", err=True)
            sys.exit(1)
        return
    for line in render_plan(plan).splitlines():
        click.echo(line, err=True)
    try:
        server = start_server(plan, options)
    except (LaunchRefused, LaunchFailed) as exc:
        if exc.outcome is not None:
            _record(store_path, exc.outcome)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _record(store_path, server.outcome)
    click.echo(f"ready in {server.startup_s:.1f} s: {server.url} (model '{server.served_model_name}'"
               f"); run folder {server.run_dir}")
    if keep:
        server.detach()
        click.echo(f"left running: PID {server.pid}, process group {server.pgid}; stop it with\n"
                   f"  stackdecide stop {server.run_dir.name}   (or kill -TERM -- -{server.pgid})")
        return
    click.echo("serving; Ctrl-C stops it", err=True)
    end = serve_until_interrupted(server)
    report = end.stop
    click.echo(f"stopped process group {server.pgid} ({report.signal or 'already gone'}, "
               f"{report.waited_s:.1f} s)", err=True)
    if end.error is not None:
        click.echo(f"error: {end.error}", err=True)
        sys.exit(1)


def _search(file: str | None, bench: bool, starts_only: bool, options: LaunchOptions,
            evidence_path: str | None, cluster: str | None, parallel: str | None,
            tolerance: str | None, confidence: float, budget_min: float | None,
            max_launches: int | None, seed: int, any_hardware: bool, also: Calibrations) -> None:
    """`--until-certain` with `--parallel` / `--cluster`: the race over a space, several launches
    at once on the scheduler's GPUs (stackdecide.search)."""
    from stackdecide.cli._loop import run_search_cli
    from stackdecide.schedule.backends import make_scheduler, parse_parallel
    from stackdecide.schedule.tournament import OnScheduler

    if not bench or starts_only:
        raise click.UsageError("--until-certain with --parallel or --cluster goes with --bench and "
                               "--winner (not --dry-run or --keep)")
    path, why = resolve_decision_file(file)
    click.echo(f"decision: {why}", err=True)
    decision = stackdecide.load(path)
    scheduler = make_scheduler(decision, options, cluster)
    at_once = parse_parallel(parallel) or max(1, scheduler.gpu_count())
    limits = SearchLimits(tolerance_points(decision, tolerance), confidence, max_launches,
                          budget_min, at_once)
    result = run_search_cli(decision, evidence_path or str(default_evidence_path(path)), options,
                            limits, seed=seed, any_hardware=any_hardware,
                            runner=OnScheduler(scheduler, None), also=also)
    if result.measurements and not any(m.launched for m in result.measurements):
        sys.exit(1)


def _tournament(file: str | None, bench: bool, looping: bool, starts_only: bool,
                options: LaunchOptions, evidence_path: str | None, cluster: str | None,
                parallel: str | None, only: str | None, seed: int, confirm_top: int,
                any_hardware: bool, env_options_: EnvOptions | None) -> None:
    """`--parallel` / `--cluster`: measure several candidates at once (schedule.tournament)."""
    from stackdecide.cli._tournament import candidates_to_run, run_tournament_cli
    from stackdecide.schedule.backends import parse_parallel

    if not bench or looping or starts_only:
        raise click.UsageError("--parallel and --cluster go with --bench (not with "
                               "--until-certain, --until-stable, --dry-run or --keep)")
    limit = parse_parallel(parallel)
    path, why = resolve_decision_file(file)
    click.echo(f"decision: {why}", err=True)
    decision = stackdecide.load(path)
    store_path = evidence_path or str(default_evidence_path(path))
    if env_options_ is not None:  # built here, used by every worker (a shared folder on Ray)
        options = replace(options, environments=build_candidates(
            decision, candidates_to_run(decision, only), env_options_, notify=echo_step))
    result = run_tournament_cli(decision, store_path, options, cluster=cluster, limit=limit,
                                only=only, seed=seed, confirm_top=confirm_top,
                                any_hardware=any_hardware)
    measured = result.rounds[0].outcomes  # every candidate, several at a time
    if not any(m.launched for m in result.measurements) or any(o.failure for o in measured):
        sys.exit(1)
