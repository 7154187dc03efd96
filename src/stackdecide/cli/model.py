"""`stackdecide model scaffold`: a model directory without weights, for --load-format dummy."""

from __future__ import annotations

import click

from stackdecide.cli._app import handle_errors, main
from stackdecide.facts.memory import gib, kv_bytes_per_token, weight_bytes
from stackdecide.facts.shapes import SHAPES
from stackdecide.launch.scaffold import scaffold_model


@main.group("model")
def model_group() -> None:
    """Model shapes known to stackdecide."""


@model_group.command("scaffold")
@click.argument("shape", type=click.Choice(sorted(SHAPES)))
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--fp8", is_flag=True,
              help="Add block-wise FP8 quantization_config (as Qwen3-4B-Instruct-2507-FP8).")
@handle_errors
def scaffold(shape: str, directory: str, fp8: bool) -> None:
    """Write config.json, generation_config.json and a tokenizer with the model's vocabulary size
    for SHAPE into DIRECTORY. Serve it with `--load-format dummy` (random weights)."""
    result = scaffold_model(shape, directory, fp8=fp8)
    weights = "fp8-block" if result.fp8 else "bf16"
    click.echo(f"wrote {', '.join(result.files)} to {result.path}")
    click.echo(f"{shape}: {result.shape.params / 1e9:.3f} B params, weights ~"
               f"{gib(weight_bytes(result.shape, weights))} ({weights}), KV cache "
               f"{kv_bytes_per_token(result.shape):,.0f} bytes/token (bf16)")
    click.echo(f"serve: python -m vllm.entrypoints.openai.api_server --model {result.path} "
               "--load-format dummy")
