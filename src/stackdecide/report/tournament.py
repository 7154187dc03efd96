"""A tournament's rounds as text: where each candidate ran, beside whom, for how long, and the
wall time against the slowest single candidate. Pure: returns text and plain data."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from stackdecide.orchestrate import RunResult
from stackdecide.schedule.base import Round


def render_round(title: str, round_: Round, tablefmt: str = "simple") -> str:
    rows = []
    for outcome in round_.outcomes:
        measurement = outcome.measurement
        if measurement is None:
            result = f"run failed: {outcome.failure}"
        elif measurement.launched:
            result = f"ok, {len(measurement.records)} records" + (
                f"; benchmark stopped: {measurement.error[:60]}" if measurement.error else "")
        else:
            result = f"did not start: {measurement.outcome.failure}"
        rows.append([outcome.candidate_id, ",".join(map(str, outcome.gpus)) or "cpu",
                     outcome.where, ", ".join(outcome.neighbours) or "none",
                     f"{outcome.started_s:.1f}", f"{outcome.seconds:.1f}", result])
    table = tabulate(rows, ["candidate", "GPUs", "host", "ran beside", "start s", "took s",
                            "result"], tablefmt=tablefmt, disable_numparse=True)
    ratio = round_.ratio_to_slowest
    limit = "as many as fit" if round_.limit is None else f"at most {round_.limit}"
    summary = (f"wall time {round_.wall_s:.1f} s ({limit} at once); slowest candidate "
               f"{round_.slowest_s:.1f} s" + (f"; wall / slowest = {ratio:.2f}" if ratio else ""))
    return f"{title}:\n{table}\n{summary}\n"


def render_tournament(result: RunResult) -> str:
    measured, *confirmed = result.rounds
    parts = [render_round("measured", measured)]
    if confirmed:
        parts.append(render_round("re-measured alone (nothing beside them)", confirmed[0]))
    parts += [f"skipped {candidate}: {why}\n" for candidate, why in result.skipped]
    return "\n".join(parts)


def round_data(round_: Round) -> dict[str, Any]:
    return {"wall_s": round(round_.wall_s, 3), "slowest_s": round(round_.slowest_s, 3),
            "ratio_to_slowest": round(round_.ratio_to_slowest, 4)
            if round_.ratio_to_slowest else None, "limit": round_.limit,
            "tasks": [{"candidate": o.candidate_id, "gpus": list(o.gpus), "host": o.where,
                       "beside": list(o.neighbours), "started_s": round(o.started_s, 3),
                       "seconds": round(o.seconds, 3), "failure": o.failure,
                       "launched": o.measurement.launched if o.measurement else None,
                       "run_dir": o.measurement.outcome.run_dir if o.measurement else None}
                      for o in round_.outcomes]}


def tournament_data(result: RunResult) -> dict[str, Any]:
    """The tournament as JSON-ready data (written beside the run folders)."""
    measured, *confirmed = result.rounds
    return {"schema": "stackdecide/tournament/v1", "measured": round_data(measured),
            "confirmed": round_data(confirmed[0]) if confirmed else None,
            "skipped": [{"candidate": c, "why": w} for c, w in result.skipped],
            "winner": result.after.winner, "stopped_because": result.stop.reason}
