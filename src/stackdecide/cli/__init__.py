"""Command line: parses arguments, calls the library, renders. No decision logic lives here."""

from stackdecide.cli._app import main
from stackdecide.cli import score  # noqa: F401  (registers its commands on main)

__all__ = ["main"]
