"""A launch plan, capacity estimates and start-up progress as text. Pure: returns text.

Secrets never reach these views: a plan holds them redacted, and ``redacted_report`` redacts the
winner's configuration that the markdown and HTML reports show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import yaml
from tabulate import tabulate

from stackdecide.audit.capacity import Capacity
from stackdecide.audit.engine_config import (
    REDACTED,
    redact_text,
    redacted_engine,
    redacted_env,
    secret_values,
)
from stackdecide.facts.memory import GIB
from stackdecide.launch.memory_check import MemoryCheck
from stackdecide.launch.plan import LaunchPlan, Progress
from stackdecide.model.problems import Problem

if TYPE_CHECKING:
    from stackdecide.report.data import Report


def progress_line(event: Progress) -> str:
    detail = f": {event.line[:120]}" if event.line and event.phase == "started" else ""
    return f"[{event.elapsed_s:7.1f} s] {event.phase}{detail}"


def _gib(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / GIB:.2f} GiB" if value >= GIB / 10 else f"{value / 1024**2:.2f} MiB"


def capacity_lines(capacity: Capacity) -> list[str]:
    """What the KV cache holds, as vLLM would log it at start-up, with how it was estimated."""
    per_gpu = f"; {capacity.layout}, figures per GPU" if capacity.gpus > 1 else ""
    lines = [f"capacity ({capacity.model}; memory from {capacity.target}{per_gpu}):",
             f"  weights: {_gib(capacity.weights_bytes)}"]
    if capacity.kv_bytes_per_token is not None:
        lines.append(f"  KV cache per token: {capacity.kv_bytes_per_token:,.0f} bytes "
                     f"(kv_cache_dtype {capacity.kv_cache_dtype})")
    if capacity.skipped is not None:
        return [*lines, f"  KV tokens that fit: not estimated: {capacity.skipped}"]
    assert capacity.tokens is not None and capacity.concurrency is not None
    lines += [f"  KV cache: {_gib(capacity.kv_budget_bytes)} ({capacity.budget})",
              *([f"  vLLM settings: {capacity.engine_defaults}"] if capacity.engine_defaults else []),
              f"  KV tokens that fit: {capacity.tokens:,} (vLLM logs \"KV cache size: "
              f"{capacity.tokens:,} tokens\")",
              f"  sequences of {capacity.max_model_len:,} tokens ({capacity.max_model_len_source})"
              f" at once: {capacity.concurrency:.2f}x (vLLM: \"Maximum concurrency for "
              f"{capacity.max_model_len:,} tokens per request\")"]
    if capacity.max_num_seqs is not None:
        lines.append(f"  max_num_seqs {capacity.max_num_seqs}: "
                     + ("reachable with sequences of max_model_len"
                        if capacity.concurrency >= capacity.max_num_seqs else
                        "more than the full-length sequences that fit (see the checks below)"))
    return lines


def engine_defaults_lines(capacities: Sequence[Capacity]) -> list[str]:
    """The scheduler and memory settings each estimate took from vLLM's defaults, and from
    which release and rule: once when every candidate took the same."""
    assumed = {c.candidate: c.engine_defaults for c in capacities if c.engine_defaults}
    if len(assumed) == len(capacities) > 1 and len(set(assumed.values())) == 1:
        return [f"vLLM settings of every candidate: {next(iter(assumed.values()))}"]
    return [f"vLLM settings of {candidate}: {text}" for candidate, text in assumed.items()]


def capacity_table(capacities: Sequence[Capacity], tablefmt: str = "simple") -> str:
    """One row per candidate: weights, KV bytes per token, KV tokens and sequences that fit;
    then the settings the estimates took from vLLM's defaults (``engine_defaults_lines``)."""
    multi = any(c.gpus > 1 for c in capacities)
    rows = [[c.candidate, c.model, *([f"{c.layout} ({c.gpus} GPU{'s' if c.gpus > 1 else ''})"]
                                     if multi else []), _gib(c.weights_bytes),
             "-" if c.kv_bytes_per_token is None else f"{c.kv_bytes_per_token:,.0f}",
             _gib(c.kv_budget_bytes), "-" if c.tokens is None else f"{c.tokens:,}",
             "-" if c.max_model_len is None else f"{c.max_model_len:,}",
             "-" if c.concurrency is None else f"{c.concurrency:.2f}x",
             c.skipped or ""] for c in capacities]
    return tabulate(rows, ["candidate", "model", *(["layout"] if multi else []),
                           "weights" + (" per GPU" if multi else ""), "KV bytes/token", "KV cache",
                           "KV tokens", "max_model_len", "sequences at once", "not estimated"],
                    tablefmt=tablefmt, disable_numparse=True) + "\n" \
        + "".join(f"{line}\n" for line in engine_defaults_lines(capacities))


def render_plan(plan: LaunchPlan) -> str:
    lines = []
    if plan.command is not None:
        lines.append("command:")
        lines.append("  " + " ".join(plan.command.argv))
        lines.append("environment (added to the inherited one):")
        lines += [f"  {name}={value}" for name, value in sorted(plan.command.shown_env.items())] \
            or ["  (none)"]
        lines.append("as one shell line:")
        lines.append("  " + plan.command.shell())
    if plan.portable is not None:
        lines.append(f"on the host that serves it ({plan.portable_note}):")
        lines.append("  " + plan.portable)
    if plan.capacity is not None:
        lines += capacity_lines(plan.capacity)
    lines += [f"note: {note}" for note in plan.notes]
    lines += [str(problem) for problem in plan.problems]
    return "\n".join(lines) + "\n"


def _gib_or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} GiB"


def memory_check_lines(check: MemoryCheck) -> list[str]:
    """Per-GPU weights and KV cache as planned and as each vLLM worker logged them."""
    lines = [f"memory per GPU ({check.layout}), planned vs logged by vLLM:",
             f"  planned: weights {_gib_or_dash(check.planned_weights_gib)}, KV cache "
             f"{_gib_or_dash(check.planned_kv_gib)}"
             + (f", {check.planned_tokens:,} KV tokens" if check.planned_tokens else "")]
    if not check.logged:
        lines.append("  logged: no \"Model loading took\" / \"Available KV cache memory\" lines")
    # vLLM may log the KV budget from one worker of a tensor-parallel group only (0.26 does,
    # from rank 0): a "-" beside the others would read as a failure
    kv_logger = next((w.process for w in check.logged if w.kv_cache_gib is not None), None)
    for worker in check.logged:
        kv = _gib_or_dash(worker.kv_cache_gib)
        if worker.kv_cache_gib is None and kv_logger:
            kv = f"not logged by this worker ({kv_logger} logged it)"
        lines.append(f"  logged by {worker.process or 'the engine'}: weights "
                     f"{_gib_or_dash(worker.weights_gib)}, KV cache {kv}")
    if check.logged_tokens is not None:
        lines.append(f"  logged: {check.logged_tokens.device} KV cache size "
                     f"{check.logged_tokens.tokens:,} tokens")
    return lines


def redacted_report(report: Report) -> Report:
    """``report`` as the markdown and HTML views show it: the winner's engine keys, environment,
    command and the messages about them with every secret as ``***`` (those named like one, and
    the decision's ``secrets``)."""
    config = report.winner_config
    if config is None:
        return report
    marked = report.decision.model.decision.secrets
    candidate = report.decision.candidate(config.candidate)
    values = secret_values(candidate.engine, candidate.env, marked)

    def said(problem: Problem) -> Problem:
        return replace(problem, message=redact_text(problem.message, values))

    command = config.command
    if command is not None:
        command = replace(command, env=redacted_env(command.shown_env, marked),
                          secret_env=frozenset(),
                          argv=tuple(REDACTED if word in values else redact_text(word, values)
                                     for word in command.argv),
                          problems=tuple(said(problem) for problem in command.problems))
    engine = redacted_engine(config.engine, marked)
    return replace(report, winner_config=replace(
        config, env=redacted_env(config.env, marked), engine=engine,
        engine_yaml=yaml.safe_dump(engine, sort_keys=False, default_flow_style=False)
        if engine else "", command=command, checks=tuple(said(problem) for problem in config.checks)))
