"""Launching a candidate: plan (render and preflight), start, wait until ready, always stop.

>>> from stackdecide.launch import LaunchOptions, launch_server
>>> with launch_server(decision, "cpu-bf16", LaunchOptions(port=None)) as server:
...     server.url
"""

from stackdecide.launch.plan import LaunchOptions, LaunchPlan, LaunchRefused, plan_launch
from stackdecide.launch.server import LaunchFailed, ServerHandle, launch_server, start_server

__all__ = ["LaunchFailed", "LaunchOptions", "LaunchPlan", "LaunchRefused", "ServerHandle",
           "launch_server", "plan_launch", "start_server"]
