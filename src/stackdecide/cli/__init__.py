"""Command line: parses arguments, calls the library, renders. No decision logic lives here."""

from stackdecide.cli import (
    bench,  # noqa: F401
    demo,  # noqa: F401
    env,  # noqa: F401
    evidence,  # noqa: F401
    launch,  # noqa: F401
    model,  # noqa: F401
    predict,  # noqa: F401
    probe,  # noqa: F401
    ps,  # noqa: F401
    report,  # noqa: F401
    score,  # noqa: F401  (registers its commands on main)
    sensitivity,  # noqa: F401
    space,  # noqa: F401
)
from stackdecide.cli._app import main

__all__ = ["main"]
