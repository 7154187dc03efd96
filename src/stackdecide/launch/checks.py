"""What ``stackdecide check`` adds to the audit: each candidate's engine keys against vLLM itself,
and each candidate's capacity (``audit.capacity``) on the decision's hardware.

The audit (``audit.engine_config``) already runs every static check that needs only the decision
file. This adds what needs vLLM's own argument definitions: unknown keys (with a "did you mean"),
removed keys, values of the wrong type or outside the choices, unknown attention backends. When no
vLLM is installed here, only the table of removed keys can be checked, and a note says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackdecide.audit.capacity import Capacity, decision_capacity
from stackdecide.audit.engine_config import problem_location
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.scoring import score
from stackdecide.vllm.args import VllmArgSpec, find_engine_spec
from stackdecide.vllm.render import REMOVED_KEYS, removed_problem, render


@dataclass(frozen=True)
class KeyChecks:
    findings: tuple[Finding, ...]
    note: str  # which vLLM the keys were checked against, or why only the removed-keys table
    capacity: tuple[Capacity, ...] = ()  # per candidate with an engine config


def engine_key_problems(engine: Mapping[str, Any], env: Mapping[str, str],
                        spec: VllmArgSpec | None) -> list[Problem]:
    """Problems with the engine keys themselves, as the given vLLM (or the removed-keys table) sees them."""
    if spec is not None:
        return [p for p in render(engine, spec, env=env).problems if p.severity != "info"]
    keys = {str(key).replace("-", "_") for key in engine}
    return [removed_problem(key, None) for key in sorted(keys) if key in REMOVED_KEYS]


def check_engine_keys(decision: DecisionMatrix, spec: VllmArgSpec | None,
                      why_no_spec: str = "") -> KeyChecks:
    """Every candidate's engine keys, as findings located in the decision file."""
    findings = []
    for index, candidate in enumerate(decision.candidates):
        if not candidate.engine:  # a decision may rank stacks without saying how to launch them
            continue
        findings += [problem.finding(candidate.id, problem_location(decision, index, problem))
                     for problem in engine_key_problems(candidate.engine, candidate.env, spec)]
    if spec is not None:
        note = f"engine keys checked against vLLM {spec.vllm_version} ({spec.python})"
    else:
        note = ("engine keys checked against the table of removed keys only: no vLLM to ask here"
                + (f" ({why_no_spec})" if why_no_spec else "") + "; pass --python PATH to check "
                "them against a vLLM installed elsewhere")
    return KeyChecks(tuple(findings), note)


def check_decision(decision: DecisionMatrix, python: str | None = None,
                   engine_keys: bool = True) -> KeyChecks:
    """Everything ``stackdecide check`` reports: the audit (totals, AHP, targets, and whether each
    candidate's configuration can start) and, with ``engine_keys``, the keys against vLLM."""
    findings = list(score(decision).findings)
    capacity = decision_capacity(decision)
    if not engine_keys:
        return KeyChecks(tuple(findings), "engine keys not checked (--no-engine-keys)", capacity)
    spec, why = find_engine_spec(python)
    keys = check_engine_keys(decision, spec, why)
    return KeyChecks(tuple(findings) + keys.findings, keys.note, capacity)
