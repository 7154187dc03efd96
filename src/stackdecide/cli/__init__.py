"""Command line: parses arguments, calls the library, renders. No decision logic lives here."""

from stackdecide.cli import score  # noqa: F401  (registers its commands on main)
from stackdecide.cli._app import main

__all__ = ["main"]
