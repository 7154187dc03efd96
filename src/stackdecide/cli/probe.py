"""`stackdecide probe`: GPUs, driver, CUDA and the versions of the interpreter that runs vLLM."""

from __future__ import annotations

import json

import click
from tabulate import tabulate

from stackdecide.cli._app import handle_errors, main
from stackdecide.facts.memory import gib
from stackdecide.vllm.probe import ProbeResult, probe


def _gpu_rows(result: ProbeResult) -> list[list[str]]:
    rows = []
    for gpu in result.gpu.gpus:
        holders = ", ".join(f"{p.pid}" + (f" ({gib(p.used_bytes)})" if p.used_bytes else "")
                            for p in gpu.processes) or "-"
        rows.append([str(gpu.index), gpu.name, gpu.compute_capability or "?",
                     gib(gpu.total_bytes), f"{gib(gpu.free_bytes)} ({gpu.free_fraction:.0%})",
                     holders])
    return rows


def render_probe(result: ProbeResult) -> str:
    runtime = result.runtime
    lines = []
    if result.gpu.gpus:
        lines.append(tabulate(_gpu_rows(result), headers=["GPU", "name", "SM", "total", "free",
                                                          "compute PIDs"],
                              disable_numparse=True))  # keep "9.0", not 9
    else:
        lines.append(f"GPU: none ({result.gpu.unavailable or 'NVML reports no GPU'})")
    cpu = result.cpu
    memory = gib(cpu.memory_bytes) if cpu.memory_bytes else "?"
    facts = [
        ["driver", result.gpu.driver or "-"],
        ["CUDA (driver supports)", result.gpu.cuda_driver or "-"],
        ["CPU", f"{cpu.model or '?'}, {cpu.logical_cores or '?'} logical cores, {memory}"],
        ["python (runs vLLM)", f"{runtime.python} ({runtime.python_version or '?'})"],
        ["vllm", (runtime.vllm or "not installed")
         + (f" [{runtime.vllm_distribution}]" if runtime.vllm_distribution not in (None, "vllm")
            else "")],
        ["torch", (runtime.torch or "not installed")
         + (f", CUDA runtime {runtime.torch_cuda}" if runtime.torch_cuda
            else (", CPU build" if runtime.torch else ""))],
        ["flashinfer", runtime.flashinfer or "not installed"],
        ["transformers", runtime.transformers or "not installed"],
    ]
    if runtime.error:
        facts.append(["error", runtime.error])
    lines.append(tabulate(facts, tablefmt="plain", disable_numparse=True))
    lines += [f"note: {note}" for note in result.notes]
    return "\n\n".join(lines[:2]) + ("\n" + "\n".join(lines[2:]) if lines[2:] else "") + "\n"


@main.command("probe")
@click.option("--python", "python", metavar="PATH",
              help="Interpreter that runs vLLM (default: $STACKDECIDE_VLLM_PYTHON or this one).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@handle_errors
def probe_command(python: str | None, fmt: str) -> None:
    """Show GPUs (memory, compute capability, who holds them), driver, CUDA, and the torch, vLLM
    and FlashInfer versions of the interpreter that will run vLLM. Without a GPU (or without
    nvidia-ml-py) it reports a CPU-only machine; that is not an error."""
    result = probe(python)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(render_probe(result), nl=False)
