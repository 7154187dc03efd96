"""A candidate's engine config -> the argv and environment of the vLLM that will run it.

Which keys exist, how booleans are spelled and which values a choice accepts all come from that
vLLM's own parser (``vllm_args.load_arg_spec``). The flag history of ``vllm.flags`` only says,
for a key the parser lacks, since when vLLM removed it or from when it has it; the valid-key set
never comes from it. Without that vLLM's parser (none installed, or another version than the
candidate pins), ``render_for_version`` renders for the pinned release from the flag history.

A value is one word of the command, or a list of words for an option that takes several; none may
be a word vLLM would read as an option (``audit.engine_config.value_problem``), so the command holds
the options the engine keys name and no others. Secrets (``audit.engine_config.is_secret_name``) go
to vLLM in the environment variable it reads them from, never in the command, and every view of a
command (``shown_env``, ``shell``, ``serve_command``) shows them as ``***``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from stackdecide._text import did_you_mean
from stackdecide.audit.engine_config import (
    REDACTED,
    SECRET_VARIABLES,
    is_secret_name,
    secret_problems,
    value_problem,
)
from stackdecide.model.problems import Problem, errors
from stackdecide.model.stack import option_name
from stackdecide.vllm.args import ArgAction, VllmArgSpec
from stackdecide.vllm.flags import (
    ATTENTION_ENV,
    KEYS,
    REMOVED_KEYS,
    adapt,
    removed_problem,
    table_spec,
    too_new_problem,
    unknown_problems,
)

# Keys the launcher owns: it binds the server itself.
LAUNCHER_KEYS = ("host", "port")
# Where the name the server is served as comes from, first found first.
SERVED_NAME_KEYS = ("served_model_name", "model")


@dataclass(frozen=True)
class RenderedCommand:
    """The exact command and environment that start a candidate's server."""

    argv: tuple[str, ...]
    # set on top of the inherited environment; holds the secrets, so repr leaves it out
    env: dict[str, str] = field(repr=False)
    problems: tuple[Problem, ...]
    vllm_version: str
    served_model_name: str | None
    rendered: dict[str, str] = field(default_factory=dict)  # engine key -> what it became
    secret_env: frozenset[str] = frozenset()  # variables of ``env`` whose values are secret

    @property
    def ok(self) -> bool:
        return not errors(self.problems)

    @property
    def shown_env(self) -> dict[str, str]:
        """``env`` as outputs show it: secrets as ``***``."""
        return {name: REDACTED if name in self.secret_env else value
                for name, value in self.env.items()}

    def shell(self) -> str:
        """One line to paste into a shell (display only: the launcher never uses a shell),
        secrets as ``***``."""
        assignments = [f"{name}={shlex.quote(value)}"
                       for name, value in sorted(self.shown_env.items())]
        return " ".join([*assignments, shlex.join(self.argv)])


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _check_type(key: str, value: Any, action: ArgAction) -> Problem | None:
    if action.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return Problem("invalid-value", f"{value!r} is not an integer", f"engine.{key}")
    if action.type == "float" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return Problem("invalid-value", f"{value!r} is not a number", f"engine.{key}")
    return None


def _check_choice(key: str, value: Any, action: ArgAction) -> Problem | None:
    if action.choices is None:
        return None
    text = _scalar(value)
    if text in action.choices:
        return None
    return Problem("invalid-choice",
                   f"'{text}' is not accepted by this vLLM{did_you_mean(text, action.choices)}"
                   f" (choices: {', '.join(action.choices)})", f"engine.{key}")


def _value_words(key: str, items: list[tuple[int | None, Any]], action: ArgAction,
                 secret: bool) -> tuple[list[str], Problem | None]:
    """The words of a value (``items``: the value, or each item of a list with its index), each
    refused where vLLM would read it as an option, then checked against the option's choices;
    the first problem found."""
    words = []
    for index, item in items:
        if index is not None and isinstance(item, list):
            return [], Problem("invalid-value", f"item {index} is a list; {action.long_option} "
                               "takes a list of values", f"engine.{key}[{index}]")
        word = _scalar(item)
        problem = value_problem(key, index, word, secret)
        if problem is not None and problem.severity == "error":
            return [], problem
        problem = _check_choice(key, item, action)
        if problem:
            return [], problem
        words.append(word)
    return words, None


def render_value(key: str, value: Any, action: ArgAction,
                 secret: bool = False) -> tuple[list[str], Problem | None]:
    """The argv words for one key, or a problem. ``None`` values render nothing; a list is a list
    of values for an option that takes several (``nargs``, or ``append``: the option before each),
    never of options. ``secret``: its value is never quoted in a problem."""
    where = f"engine.{key}"
    if value is None:
        return [], None
    if action.kind == "boolean_optional":
        if not isinstance(value, bool):
            return [], Problem("invalid-value", f"{value!r} is not true or false", where)
        negative = action.negative_option
        if value:
            return [action.long_option], None
        if negative is None:
            return [], Problem("invalid-value", "this vLLM has no way to turn it off", where)
        return [negative], None
    if action.nargs == "?" and isinstance(value, bool):
        # an optional-valued flag (vLLM's bool | str, e.g. --hf-token): the bare option is true
        return ([action.long_option] if value else []), None
    if action.kind in ("store_true", "store_false", "store_const", "count"):
        if not isinstance(value, bool):
            return [], Problem("invalid-value", f"{value!r} is not true or false (this vLLM's "
                               f"{action.long_option} takes no value)", where)
        sets = action.kind != "store_false"
        if value == sets:
            return [action.long_option], None
        if bool(action.default) == value:
            return [], None  # already the default
        return [], Problem("invalid-value", f"this vLLM's {action.long_option} can only turn it "
                           f"{'on' if sets else 'off'}", where)
    if action.kind == "append":
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        words, problem = _value_words(key, items, action, secret)
        return ([], problem) if problem else (
            [part for word in words for part in (action.long_option, word)], None)
    multiple = action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)
    if isinstance(value, list) and multiple:
        words, problem = _value_words(key, list(enumerate(value)), action, secret)
        return ([], problem) if problem else ([action.long_option, *words] if words else [], None)
    if isinstance(value, list) and action.type in ("int", "float", "str", None):
        return [], Problem("invalid-value", f"takes one value, got a list of {len(value)}", where)
    problem = _check_type(key, value, action)
    if problem:
        return [], problem
    words, problem = _value_words(key, [(None, value)], action, secret)
    return ([], problem) if problem else ([action.long_option, *words], None)


def render(engine: Mapping[str, Any], spec: VllmArgSpec, *, host: str = "127.0.0.1",
           port: int = 8000, env: Mapping[str, str] | None = None, python: str | None = None,
           secrets: Collection[str] = ()) -> RenderedCommand:
    """Render ``engine`` (a candidate's ``engine`` mapping) for the vLLM described by ``spec``.

    Keys may use ``_`` or ``-``. Every problem is collected rather than raised, so one look shows
    all of them; ``RenderedCommand.ok`` says whether the command may run. ``secrets``: the
    decision's names of secrets besides those named like one.
    """
    problems: list[Problem] = []
    environment = dict(env or {})
    secret_env = {name for name in environment if is_secret_name(name, secrets)}
    argv = [python or spec.python, "-m", spec.server_module]
    rendered: dict[str, str] = {}
    values = {option_name(key): value for key, value in engine.items()}
    if "model" not in values:
        problems.append(Problem("missing-model", "the engine config names no model", "engine.model"))
    for key in LAUNCHER_KEYS:
        if key in values:
            problems.append(Problem("launcher-owned", f"ignored: the launcher sets --{key} (use "
                                    f"launch --{key})", f"engine.{key}", "warning"))
            values.pop(key)
    if ATTENTION_ENV in environment and spec.action("attention_backend") is not None:
        moved = environment.pop(ATTENTION_ENV)
        if values.get("attention_backend", moved) != moved:
            problems.append(Problem(
                "attention-backend-conflict", f"env sets {moved}, engine.attention_backend sets "
                f"{values['attention_backend']}", f"env.{ATTENTION_ENV}"))
        else:
            values["attention_backend"] = moved
            problems.append(Problem(
                "attention-env-moved", f"vLLM {spec.vllm_version} selects the attention backend "
                f"with --attention-backend; rendered {ATTENTION_ENV}={moved} as the flag",
                f"env.{ATTENTION_ENV}", "warning"))
    words: list[str] = []
    for key, value in values.items():
        secret = is_secret_name(key, secrets)
        refused = secret_problems(key, value, environment, secrets)
        if refused:
            problems += refused
            continue
        if secret and key in SECRET_VARIABLES and value not in (None, []) and not isinstance(value, bool):
            variable = SECRET_VARIABLES[key]  # vLLM reads it there: the command never holds it
            environment[variable] = str(value[0] if isinstance(value, list) else value)
            secret_env.add(variable)
            rendered[key] = f"{variable}={REDACTED}"
            continue
        action = spec.action(key)
        if key == "attention_backend":
            if action is None or action.choices is None:
                problems.extend(_backend_name_problems(value, spec))
            if action is None:  # older vLLM: the backend is an environment variable
                if environment.get(ATTENTION_ENV, value) != value:
                    problems.append(Problem(
                        "attention-backend-conflict", f"env sets {environment[ATTENTION_ENV]}, "
                        f"engine.attention_backend sets {value}", f"engine.{key}"))
                    continue
                environment[ATTENTION_ENV] = str(value)
                rendered[key] = f"{ATTENTION_ENV}={value}"
                problems.append(Problem(
                    "attention-backend-env", f"vLLM {spec.vllm_version} has no "
                    f"--attention-backend (it came with {KEYS[key].added_in}); set through "
                    f"{ATTENTION_ENV}", f"engine.{key}", "info"))
                continue
        if action is None:
            if key in REMOVED_KEYS:
                problems.append(removed_problem(key, spec.vllm_version))
            else:
                problems.append(too_new_problem(key, spec.vllm_version) or Problem(
                    "unknown-key", f"vLLM {spec.vllm_version} has no argument '{key}'"
                    f"{did_you_mean(key, spec.keys)}", f"engine.{key}"))
            continue
        if action.deprecated:
            problems.append(Problem("deprecated-key", f"vLLM {spec.vllm_version} marks "
                                    f"{action.long_option} deprecated", f"engine.{key}", "warning"))
        part, problem = render_value(key, value, action, secret)
        if problem:
            problems.append(problem)
            continue
        words += part
        if part:
            rendered[key] = shlex.join(part)
    words += ["--host", host, "--port", str(port)]
    return RenderedCommand(tuple(argv + words), environment, tuple(problems), spec.vllm_version,
                           _served_name(values, secrets), rendered, frozenset(secret_env))


def _served_name(values: Mapping[str, Any], secrets: Collection[str]) -> str | None:
    """The name the server is served as: served_model_name (its first name), else the model;
    None where that key is marked secret (refused: ``secret_problems``), so that no run file
    records it."""
    for key in SERVED_NAME_KEYS:
        value = values.get(key)
        name = value[0] if isinstance(value, list) and value else value
        if name:
            return None if is_secret_name(key, secrets) else str(name)
    return None


def render_for_version(engine: Mapping[str, Any], version: str, *, host: str = "127.0.0.1",
                       port: int = 8000, env: Mapping[str, str] | None = None,
                       secrets: Collection[str] = ()) -> RenderedCommand:
    """Render ``engine`` for vLLM ``version`` from the flag history (``vllm.flags``), with no vLLM
    to ask: keys moved or renamed since are written where that release reads them, keys it does
    not have are dropped, the attention backend becomes ``VLLM_ATTENTION_BACKEND`` before 0.13.0.
    Each change is a problem of the command saying so. Display only (``serve_command``): the
    launcher renders with the parser of the vLLM it starts."""
    adapted, changes = adapt({option_name(key): value for key, value in engine.items()}, version)
    command = render(adapted, table_spec(adapted, version), host=host, port=port, env=env,
                     secrets=secrets)
    return replace(command, problems=(*changes, *unknown_problems(adapted, version),
                                      *command.problems))


def serve_command(command: RenderedCommand) -> str:
    """The ``vllm serve MODEL ...`` form of a rendered command: what a person pastes on the host
    that runs it, where the ``vllm`` program is on PATH (display only, like ``shell``: secrets as
    ``***``)."""
    words = list(command.argv[3:])  # after "<python> -m <server module>"
    model: list[str] = []
    if "--model" in words:
        index = words.index("--model")
        model = words[index + 1:index + 2]
        del words[index:index + 2]
    assignments = [f"{name}={shlex.quote(value)}"
                   for name, value in sorted(command.shown_env.items())]
    return " ".join([*assignments, shlex.join(["vllm", "serve", *model, *words])])


def _backend_name_problems(value: Any, spec: VllmArgSpec) -> list[Problem]:
    names = list(spec.attention_backends)
    if not names or str(value) in names:
        return []
    return [Problem("unknown-attention-backend",
                    f"vLLM {spec.vllm_version} has no attention backend '{value}'"
                    f"{did_you_mean(str(value), names)}", "engine.attention_backend")]
