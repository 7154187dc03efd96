"""A decision's candidates and their environments: requirements, verdicts and built environments,
one candidate at a time, each failure naming the candidate and its pin."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from stackdecide.envs.base import BaseEnv, read_base_env
from stackdecide.envs.build import BuiltEnv, build_env, interpreter_version, usable_env_dir
from stackdecide.envs.download import resolve_over_freeze
from stackdecide.envs.requirements import DEFAULT_PLATFORM, StackRequirements, stack_requirements
from stackdecide.envs.resolve import Resolution, resolve
from stackdecide.envs.uv import EnvError, Sources
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.stack import is_cpu_target

Notify = Callable[[str], None]


@dataclass(frozen=True)
class EnvOptions:
    """How environments are resolved and built; the same for every candidate of one command."""

    env_dir: Path | None = None  # default: build.default_env_dir()
    sources: Sources = field(default_factory=Sources)
    python_version: str | None = None  # target Python when a candidate pins none (target_python)
    platform: str = DEFAULT_PLATFORM
    base_python: str | None = None  # interpreter that builds (default: this one)
    base_env: str | None = None  # interpreter of an installed environment to layer on (envs.base)

    @property
    def folder(self) -> Path:
        # absolute: workers (a Ray task, a process with another working folder) use it too
        return usable_env_dir(self.env_dir)


@functools.cache
def _read_base(python: str) -> BaseEnv:
    return read_base_env(python)


def base_of(options: EnvOptions) -> BaseEnv | None:
    """The installed environment the candidates' are layered on, read once per interpreter."""
    return _read_base(options.base_env) if options.base_env else None


def target_python(options: EnvOptions) -> str | None:
    """The Python a candidate that pins none is resolved for: ``--python-version``, else that of
    the environment layered on or of the interpreter the environments are made from (a lock for
    another Python could not be built with it), else None: this interpreter's."""
    if options.python_version:
        return options.python_version
    base = base_of(options)
    if base is not None:
        return base.python_version
    return interpreter_version(options.base_python) if options.base_python else None


def requirements_of(decision: DecisionMatrix, candidate_id: str,
                    options: EnvOptions | None = None) -> StackRequirements:
    options = options or EnvOptions()
    candidate = decision.candidate(candidate_id)
    return stack_requirements(candidate_id, candidate.stack,
                              cpu=is_cpu_target(decision.model.decision.hardware),
                              python_version=target_python(options), platform=options.platform)


def chosen_ids(decision: DecisionMatrix, candidate_ids: Sequence[str] | None) -> list[str]:
    if not candidate_ids:
        return [c.id for c in decision.candidates]
    for candidate_id in candidate_ids:
        decision.candidate(candidate_id)  # an unknown id fails here, listing the candidates
    return list(candidate_ids)


def resolve_candidates(decision: DecisionMatrix, candidate_ids: Sequence[str] | None = None,
                       options: EnvOptions | None = None,
                       freeze: Mapping[str, str] | None = None) -> list[Resolution]:
    """Each candidate's verdict: installable as pinned (with its lock) or why not; with
    ``freeze`` (an installed environment's ``pip freeze``), the lock that keeps its versions
    where it can (``envs.download.resolve_over_freeze``)."""
    options = options or EnvOptions()
    base = base_of(options)
    answers: dict[str, Resolution] = {}  # candidates with the same pins ask the index once
    resolutions = []
    for candidate_id in chosen_ids(decision, candidate_ids):
        requirements = requirements_of(decision, candidate_id, options)
        known = answers.get(requirements.key)
        if known is None:
            known = answers[requirements.key] = \
                resolve_over_freeze(requirements, options.sources, freeze) if freeze \
                else resolve(requirements, options.sources, base)
        resolutions.append(replace(known, candidate_id=candidate_id, requirements=requirements))
    return resolutions


def build_candidates(decision: DecisionMatrix, candidate_ids: Sequence[str] | None = None,
                     options: EnvOptions | None = None, notify: Notify | None = None
                     ) -> dict[str, BuiltEnv]:
    """The environment of every chosen candidate that pins its stack, built or reused.

    Candidates without pins get none (they run in the current environment). A candidate that
    cannot be resolved or built stops here with its reason: nothing is launched in a guess.
    """
    options = options or EnvOptions()
    say = notify or (lambda message: None)
    built: dict[str, BuiltEnv] = {}
    for resolution in resolve_candidates(decision, candidate_ids, options):
        if resolution.status == "no-pins":
            continue
        if not resolution.ok:
            raise EnvError(f"candidate '{resolution.candidate_id}': {resolution.summary()}")
        say(f"{resolution.candidate_id}: resolved in {resolution.seconds:.1f} s: "
            f"{resolution.summary()}")
        env = build_env(resolution, options.folder, base_python=options.base_python,
                        sources=options.sources, base=base_of(options))
        verb = f"built in {env.build_s:.1f} s" if env.built_now else "reused"
        say(f"{resolution.candidate_id}: environment {env.short} {verb} ({env.path})")
        built[resolution.candidate_id] = env
    return built
