"""`stackdecide space`: a decision's space, expanded and pruned by the static checks."""

from __future__ import annotations

import click

import stackdecide
from stackdecide.audit.space import prune_space
from stackdecide.cli._app import decision_argument, handle_errors, main
from stackdecide.report.space import render


@main.command()
@decision_argument()
@click.option("--format", "fmt", type=click.Choice(("table", "markdown", "json")), default="table",
              show_default=True, help="Output format.")
@handle_errors
def space(file: str, fmt: str) -> None:
    """Expand the space of decision FILE and prune it with the static checks.

    Shows how many configurations the space holds, each one removed and why (excluded by a rule,
    cannot start, does not fit its hardware), and the remaining ones with the value of each axis;
    those on hardware other than the decision's are marked (they are ranked by prediction).
    Exit status: 0 when expanded, 2 for a file that is not a valid decision or has no space.
    """
    click.echo(render(prune_space(stackdecide.load(file)), fmt), nl=False)
