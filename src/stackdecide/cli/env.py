"""``stackdecide env resolve|build|list|prune|download``: an environment per candidate."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

import stackdecide
from stackdecide._text import shown
from stackdecide.cli._app import decision_argument, echo_step, handle_errors, main
from stackdecide.envs.decision import EnvOptions, build_candidates, resolve_candidates
from stackdecide.envs.download import download_wheels, read_freeze
from stackdecide.envs.requirements import DEFAULT_PLATFORM
from stackdecide.envs.store import list_envs, prune
from stackdecide.envs.uv import Sources
from stackdecide.report import envs as report

F = TypeVar("F", bound=Callable[..., Any])


def source_options(func: F) -> F:
    """Where packages come from (pip's PIP_FIND_LINKS / PIP_INDEX_URL are added when set)."""
    for decorator in reversed([
        click.option("--find-links", "find_links", multiple=True, metavar="DIR",
                     help="A wheelhouse (folder of wheels) or page of links; repeatable."),
        click.option("--index-url", metavar="URL", help="Package index instead of the default."),
        click.option("--extra-index-url", "extra_index_urls", multiple=True, metavar="URL",
                     help="Another package index; repeatable."),
        click.option("--offline", is_flag=True,
                     help="Use only uv's cache and --find-links folders (air-gapped machines)."),
        click.option("--no-index", is_flag=True, help="Ignore every index; only --find-links."),
    ]):
        func = decorator(func)
    return func


def env_dir_option(func: F) -> F:
    return click.option("--env-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Folder of the environments [default: $STACKDECIDE_ENV_DIR or "
                             "~/.cache/stackdecide/envs].")(func)


def base_env_option(func: F) -> F:
    return click.option("--base-env", metavar="PYTHON",
                        help="Layer the environments on the installed one of this interpreter "
                             "(e.g. a GPU machine's CUDA torch): install only what it does not "
                             "provide at the versions needed.")(func)


def target_options(func: F) -> F:
    func = click.option("--platform", default=DEFAULT_PLATFORM, show_default=True,
                        help="Target platform, as uv's --python-platform names it.")(func)
    return click.option("--python-version", metavar="X.Y",
                        help="Target Python when a candidate pins none [default: that of "
                             "--base-env or --base-python, else this interpreter's].")(func)


def candidates_option(func: F) -> F:
    return click.option("--candidate", "candidate_ids", multiple=True, metavar="ID",
                        help="Only this candidate; repeatable [default: all].")(func)


def env_options(kwargs: dict[str, Any]) -> EnvOptions:
    sources = Sources.from_environment(kwargs.pop("find_links", ()), kwargs.pop("index_url", None),
                                       kwargs.pop("extra_index_urls", ()),
                                       kwargs.pop("offline", False), kwargs.pop("no_index", False))
    return EnvOptions(env_dir=kwargs.pop("env_dir", None), sources=sources,
                      python_version=kwargs.pop("python_version", None),
                      platform=kwargs.pop("platform", DEFAULT_PLATFORM),
                      base_python=kwargs.pop("base_python", None),
                      base_env=kwargs.pop("base_env", None))


@main.group()
def env() -> None:
    """An environment per candidate, from its stack: pins (resolved and installed with uv)."""


@env.command("resolve")
@decision_argument()
@candidates_option
@target_options
@source_options
@base_env_option
@click.option("--show-lock", is_flag=True, help="Also list every locked package.")
@handle_errors
def resolve_command(file: str, candidate_ids: tuple[str, ...], show_lock: bool,
                    **kwargs: Any) -> None:
    """Say for each candidate whether its stack installs as pinned, and why not.

    Exit status: 0 when every pinned stack resolves (or could not be checked: said as a
    warning), 1 when one cannot be installed as pinned, 2 for bad input.
    """
    decision = stackdecide.load(file)
    resolutions = resolve_candidates(decision, candidate_ids, env_options(kwargs))
    click.echo(report.render_resolutions(resolutions, show_lock), nl=False)
    if any(r.status in ("conflict", "bad-pin") for r in resolutions):
        sys.exit(1)


@env.command("build")
@decision_argument()
@candidates_option
@env_dir_option
@click.option("--base-python", metavar="PATH",
              help="Interpreter the environments are made from [default: this one].")
@target_options
@source_options
@base_env_option
@handle_errors
def build_command(file: str, candidate_ids: tuple[str, ...], **kwargs: Any) -> None:
    """Build (or reuse) one environment per distinct lock of the candidates' stacks."""
    decision = stackdecide.load(file)
    built = build_candidates(decision, candidate_ids, env_options(kwargs),
                             notify=echo_step)
    click.echo(report.render_built(built), nl=False)


@env.command("list")
@env_dir_option
@handle_errors
def list_command(env_dir: Path | None) -> None:
    """The environments built so far, and unfinished builds."""
    folder = EnvOptions(env_dir=env_dir).folder
    click.echo(f"{folder}:")
    click.echo(report.render_entries(list_envs(folder)), nl=False)


@env.command("prune")
@env_dir_option
@click.argument("locks", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every environment.")
@handle_errors
def prune_command(env_dir: Path | None, locks: tuple[str, ...], everything: bool) -> None:
    """Remove unfinished builds, and the environments of LOCKS (hashes or their first digits).

    Only folders stackdecide made are removed (they hold a .stackdecide-env marker); anything
    else asked for is named as kept, with why.
    """
    folder = EnvOptions(env_dir=env_dir).folder
    pruned = prune(folder, everything=everything, locks=locks)
    for path in pruned.removed:
        click.echo(f"removed {shown(str(path))}")
    for path, why in pruned.kept:
        click.echo(f"kept {shown(str(path))}: {shown(why)}")
    if not pruned.removed and not pruned.kept:
        click.echo("nothing to remove")


@env.command("download")
@decision_argument()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Wheelhouse folder to fill.")
@click.option("--base-freeze", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE",
              help="`pip freeze` of the environment the candidates' will be layered on "
                   "(--base-env on that machine): only the wheels it lacks are fetched.")
@candidates_option
@target_options
@source_options
@handle_errors
def download_command(file: str, dest: Path, base_freeze: Path | None,
                     candidate_ids: tuple[str, ...], **kwargs: Any) -> None:
    """Fill a wheelhouse with every wheel the candidates' locks need on --platform, for
    `env build --find-links DIR --offline` on a machine without network."""
    decision = stackdecide.load(file)
    options = env_options(kwargs)
    base = read_freeze(base_freeze) if base_freeze else None
    for resolution in resolve_candidates(decision, candidate_ids, options, freeze=base):
        if resolution.status == "no-pins":
            continue
        fetched, wheels = download_wheels(resolution, dest, options.sources, base=base)
        assert resolution.lock is not None  # download_wheels refuses a candidate without one
        click.echo(report.render_download(resolution.candidate_id, resolution.lock, fetched,
                                          base_freeze, len(wheels), dest,
                                          resolution.warnings))
