"""A launch plan and start-up progress as text. Pure: returns text, never prints."""

from __future__ import annotations

from stackdecide.launch.plan import LaunchPlan, Progress


def progress_line(event: Progress) -> str:
    detail = f": {event.line[:120]}" if event.line and event.phase == "started" else ""
    return f"[{event.elapsed_s:7.1f} s] {event.phase}{detail}"


def render_plan(plan: LaunchPlan) -> str:
    lines = []
    if plan.command is not None:
        lines.append("command:")
        lines.append("  " + " ".join(plan.command.argv))
        lines.append("environment (added to the inherited one):")
        lines += [f"  {name}={value}" for name, value in sorted(plan.command.env.items())] or \
            ["  (none)"]
        lines.append("as one shell line:")
        lines.append("  " + plan.command.shell())
    lines += [f"note: {note}" for note in plan.notes]
    lines += [str(problem) for problem in plan.problems]
    return "\n".join(lines) + "\n"
