"""A decision's space, pruned by the static checks: what each configuration's fate is, and why.

Each configuration of the space (``model.space``) is, in this order of precedence:

* **excluded** by one of the space's ``exclude`` rules (never generated, so never a candidate);
* **cannot start**: a static check (``audit.engine_config.decision_problems``, severity error)
  says vLLM refuses it, e.g. an FP8 KV cache the attention backend cannot hold;
* **does not fit**: its weights or one request of ``max_model_len`` do not fit the GPU's memory,
  or its parallel layout needs more GPUs than its hardware has;
* **remains**, with the warnings the checks give, and marked when it is for hardware other than
  the decision's (``model.space.hardware_absence``): it is ranked by prediction, not launched here.

``stackdecide check`` reports a configuration that cannot start or does not fit as pruned, an
info (``pruned_as_info``): the space generated it, the file did not write it. ``score`` still ranks
it infeasible with its errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from stackdecide.audit.engine_config import decision_problems
from stackdecide.errors import StackdecideError
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.model.ranking import Ranking
from stackdecide.model.schema import Hardware
from stackdecide.model.space import (
    Axis,
    Configuration,
    configuration_hardware,
    expansion_of,
    hardware_absence,
)

Status = Literal["excluded", "cannot-start", "does-not-fit", "remains"]
STATUSES: tuple[Status, ...] = ("excluded", "cannot-start", "does-not-fit", "remains")
# Errors of the static checks that say the configuration does not fit its hardware; every other
# error says vLLM refuses it whatever the hardware.
DOES_NOT_FIT = frozenset({"kv-cache-too-small", "weights-do-not-fit", "not-enough-gpus"})


@dataclass(frozen=True)
class Verdict:
    """One configuration's fate: its status, and the rule or problems that decided it."""

    configuration: Configuration
    status: Status
    problems: tuple[Problem, ...] = ()  # errors that removed it; warnings and infos otherwise
    rule: int | None = None  # the exclude rule, for an excluded configuration
    hardware: Hardware | None = None
    absent: str | None = None  # why its hardware is not the decision's: ranked by prediction

    @property
    def id(self) -> str:
        return self.configuration.id


@dataclass(frozen=True)
class SpacePruning:
    """Every configuration of a decision's space with its verdict: the generated ones in the
    order of their candidates, then the excluded ones."""

    file: str | None
    axes: tuple[Axis, ...]
    verdicts: tuple[Verdict, ...]
    limit: int
    rules: tuple[dict[str, Any], ...]  # the space's exclude rules, as written

    @property
    def combinations(self) -> int:
        return len(self.verdicts)

    def count(self, status: Status) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def generated(self) -> int:
        """The configurations that became candidates (all but the excluded)."""
        return self.combinations - self.count("excluded")

    @property
    def remaining(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.status == "remains")

    @property
    def not_present(self) -> int:
        """Remaining configurations for hardware other than the decision's."""
        return sum(v.absent is not None for v in self.remaining)


def _status(problems: list[Problem]) -> Status:
    codes = {p.code for p in problems if p.severity == "error"}
    if not codes:
        return "remains"
    return "does-not-fit" if codes <= DOES_NOT_FIT else "cannot-start"


def prune_space(decision: DecisionMatrix) -> SpacePruning:
    """The verdict on every configuration of ``decision``'s space; a ``StackdecideError`` when it
    has none."""
    space = decision.model.space
    if space is None:
        raise StackdecideError(f"{decision.source_file or 'the decision'} has no space; add a "
                               "space: block (docs/space.md)")
    expansion = expansion_of(space)
    hardware = decision.model.decision.hardware
    verdicts = []
    for config in expansion.configurations:
        problems = decision_problems(decision, config.id)
        status = _status(problems)
        kept = [p for p in problems if (p.severity == "error") == (status != "remains")]
        verdicts.append(Verdict(config, status, tuple(kept), None,
                                configuration_hardware(config, hardware),
                                hardware_absence(config, hardware)))
    verdicts += [Verdict(config, "excluded", (), config.excluded_by,
                         configuration_hardware(config, hardware), hardware_absence(config, hardware))
                 for config in expansion.excluded]
    return SpacePruning(decision.source_file, expansion.axes, tuple(verdicts), space.limit,
                        tuple(space.exclude))


def pruned_as_info(ranking: Ranking) -> tuple[Finding, ...]:
    """The ranking's findings as ``check`` reports them: a generated configuration of the space
    whose launch checks find an error is pruned by the space (``prune_space``: cannot start, or
    does not fit), not a mistake in the file, so those errors are infos saying it was pruned; the
    counts line says how many. A hand-written candidate keeps its severities, and so does every
    configuration when the space has none left: then the space as written is the mistake."""
    space = ranking.decision.model.space
    if space is None:
        return ranking.findings
    generated = expansion_of(space).by_id
    pruned = {candidate_id for candidate_id in ranking.cannot_start if candidate_id in generated}
    if not pruned or len(pruned) == len(generated):
        return ranking.findings
    return tuple(replace(finding, severity="info", message=f"pruned from the space: {finding.message}")
                 if finding.subject in pruned and finding in ranking.cannot_start[finding.subject]
                 else finding
                 for finding in ranking.findings)
