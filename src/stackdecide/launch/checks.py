"""What ``stackdecide check`` adds to the audit: each candidate's engine keys against vLLM itself,
and each candidate's capacity (``audit.capacity``) on the decision's hardware.

The audit (``audit.engine_config``) already runs every static check that needs only the decision
file. This adds what needs vLLM's own argument definitions: unknown keys (with a "did you mean"),
removed keys, values of the wrong type or outside the choices, unknown attention backends. When no
vLLM is installed here, only the table of removed keys can be checked, and a note says so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from stackdecide.audit.capacity import Capacity, decision_capacity
from stackdecide.audit.engine_config import SHARED_CODES, problem_location
from stackdecide.audit.space import pruned_as_info
from stackdecide.envs.decision import EnvOptions, resolve_candidates
from stackdecide.envs.resolve import Resolution
from stackdecide.envs.uv import UvMissing
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.model.stack import option_name
from stackdecide.scoring import score
from stackdecide.vllm.args import VllmArgSpec, find_engine_spec
from stackdecide.vllm.render import REMOVED_KEYS, removed_problem, render


@dataclass(frozen=True)
class KeyChecks:
    findings: tuple[Finding, ...]
    note: str  # which vLLM the keys were checked against, or why only the removed-keys table
    capacity: tuple[Capacity, ...] = ()  # per candidate with an engine config
    stacks: tuple[Resolution, ...] = ()  # per candidate: installable as pinned, or why not


def engine_key_problems(engine: Mapping[str, Any], env: Mapping[str, str],
                        spec: VllmArgSpec | None, secrets: Collection[str] = ()) -> list[Problem]:
    """Problems with the engine keys themselves, as the given vLLM (or the removed-keys table)
    sees them: what rendering finds, less what the audit's static checks already say
    (``SHARED_CODES``)."""
    if spec is not None:
        return [p for p in render(engine, spec, env=env, secrets=secrets).problems
                if p.severity != "info" and p.code not in SHARED_CODES]
    keys = {option_name(key) for key in engine}
    return [removed_problem(key, None) for key in sorted(keys) if key in REMOVED_KEYS]


def check_engine_keys(decision: DecisionMatrix, spec: VllmArgSpec | None,
                      why_no_spec: str = "") -> KeyChecks:
    """Every candidate's engine keys, as findings located in the decision file."""
    findings = []
    for index, candidate in enumerate(decision.candidates):
        if not candidate.engine:  # a decision may rank stacks without saying how to launch them
            continue
        findings += [problem.finding(candidate.id, problem_location(decision, index, problem))
                     for problem in engine_key_problems(candidate.engine, candidate.env, spec,
                                                        decision.model.decision.secrets)]
    if spec is not None:
        note = f"engine keys checked against vLLM {spec.vllm_version} ({spec.python})"
    else:
        note = ("engine keys checked against the table of removed keys only: no vLLM to ask here"
                + (f" ({why_no_spec})" if why_no_spec else "") + "; pass --python PATH to check "
                "them against a vLLM installed elsewhere")
    return KeyChecks(tuple(findings), note)


def stack_findings(decision: DecisionMatrix, resolutions: tuple[Resolution, ...]
                   ) -> list[Finding]:
    """An error for each candidate whose stack cannot be installed as pinned (located at the pin
    the resolver names), a warning for each that could not be checked."""
    findings = []
    index_of = {candidate_id: i for i, candidate_id in enumerate(decision.candidate_ids)}
    for resolution in resolutions:
        index = index_of[resolution.candidate_id]
        field = resolution.requirements.field_in(resolution.reason or "") or "stack"
        where = decision.locate(("candidates", index, *field.split(".")))
        if resolution.status in ("conflict", "bad-pin"):
            findings.append(Finding("stack-unresolvable", "error", resolution.candidate_id,
                                    f"stack {resolution.summary()}", where))
        elif resolution.status == "unchecked" or resolution.variant_unchecked:
            why = resolution.summary() if resolution.status == "unchecked" \
                else resolution.variant_unchecked
            findings.append(Finding("stack-unchecked", "warning", resolution.candidate_id,
                                    why, decision.locate(("candidates", index,
                                                                      "stack"))))
    return findings


def check_stacks(decision: DecisionMatrix, options: EnvOptions | None = None
                 ) -> tuple[list[Finding], tuple[Resolution, ...]]:
    """Each pinned stack resolved against the index (``envs.resolve``), as findings."""
    try:
        resolutions = tuple(resolve_candidates(decision, None, options))
    except UvMissing as exc:
        return [Finding("stack-unchecked", "warning", "decision",
                        f"could not check the stacks: {exc.message}")], ()
    return stack_findings(decision, resolutions), resolutions


def check_decision(decision: DecisionMatrix, python: str | None = None,
                   engine_keys: bool = True, stacks: EnvOptions | None = None) -> KeyChecks:
    """Everything ``stackdecide check`` reports: the audit (totals, AHP, targets, and whether each
    candidate's configuration can start), with ``engine_keys`` the keys against vLLM, and with
    ``stacks`` whether each candidate's stack pins can be installed (this asks the index)."""
    findings = list(pruned_as_info(score(decision)))
    capacity = decision_capacity(decision)
    resolutions: tuple[Resolution, ...] = ()
    if stacks is not None:
        found, resolutions = check_stacks(decision, stacks)
        findings += found
    if not engine_keys:
        return KeyChecks(tuple(findings), "engine keys not checked (--no-engine-keys)", capacity,
                         resolutions)
    spec, why = find_engine_spec(python)
    keys = check_engine_keys(decision, spec, why)
    return KeyChecks(tuple(findings) + keys.findings, keys.note, capacity, resolutions)
