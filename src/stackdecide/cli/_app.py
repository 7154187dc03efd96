"""The click group and the error handling every command shares."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from stackdecide._text import shown
from stackdecide._version import __version__
from stackdecide.errors import StackdecideError

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "markdown", "json", "csv")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="stackdecide")
def main() -> None:
    """Score, audit, launch and measure LLM serving stacks from a YAML decision file."""


def echo_step(message: str) -> None:
    """One step of a longer command, on stderr: ``* launching cpu-bf16``."""
    click.echo(f"* {message}", err=True)


DEBUG_ENV = "STACKDECIDE_DEBUG"  # set: a fault of stackdecide's own keeps its traceback


def handle_errors(func: F) -> F:
    """Print errors as one line (no traceback) and exit with their code.

    Exit codes: 0 ok, 1 findings, a failed run or a file the system refused, 2 bad input,
    3 a fault in stackdecide itself (``STACKDECIDE_DEBUG=1`` shows its traceback), 130
    interrupted.
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StackdecideError as exc:  # shown: a message may quote a key or value of a file
            click.echo(f"error: {shown(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own usage errors and exits, which click prints
        except OSError as exc:  # the machine's answer: a path not readable or writable, a full disk
            click.echo(f"error: {shown(str(exc))}", err=True)
            sys.exit(1)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"error: internal error, {type(exc).__name__}: {shown(str(exc))}. This is "
                       f"a fault in stackdecide, not in what it was given: {DEBUG_ENV}=1 shows "
                       "where it happened; please report it with that output", err=True)
            sys.exit(3)

    return wrapper  # type: ignore[return-value]


def format_option(default: str = "table") -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=default,
                         show_default=True, help="Output format.")


def method_option() -> Callable[[F], F]:
    from stackdecide.mcda.methods import METHODS

    return click.option("--method", type=click.Choice(METHODS), default="wsm", show_default=True,
                        help="wsm: weighted sum; wpm: weighted product; topsis: closeness to the "
                             "scale's ends.")


def any_hardware_option(help_text: str = "Also use evidence measured on hardware other than the "
                                         "decision's (marked).") -> Callable[[F], F]:
    return click.option("--any-hardware", is_flag=True, help=help_text)


def calibrate_option(when: str = "") -> Callable[[F], F]:
    """``--calibrate-with``, one text for every command that predicts; ``when`` says what it goes
    with, where it needs another option."""
    return click.option(
        "--calibrate-with", "calibrate_with", multiple=True, metavar="DECISION=EVIDENCE",
        help=f"{when}Also calibrate the predictions by the launches of another decision (the same "
             "model under other candidate ids), e.g. "
             "criteria/hopper.yaml=docs/results/hopper-h200/evidence.db; give the race's own to "
             "read its certificate again. Repeatable.")


def decision_argument() -> Callable[[F], F]:
    # Existence is checked by the loader so the message names the file the same way as others.
    return click.argument("file", type=click.Path(dir_okay=True, path_type=str))
