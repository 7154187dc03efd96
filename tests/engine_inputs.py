"""Decision files with one candidate's engine keys and env as a test writes them, a vLLM to
render them for without one installed (a parser built like vLLM 0.32's: the argparse kinds of the
options used here, read by the same dump code that reads the installed vLLM), and a stand-in
server that starts in a second and wants an API key as vLLM does."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

import stackdecide
from stackdecide.audit import engine_config
from stackdecide.launch.plan import LaunchOptions, LaunchPlan, plan_launch
from stackdecide.model.problems import Problem
from stackdecide.vllm import _introspect
from stackdecide.vllm.args import VllmArgSpec
from stackdecide.vllm.probe import GpuReport, RuntimeVersions

NO_GPU = GpuReport((), unavailable="test: no GPU")
RUNTIME = RuntimeVersions(sys.executable, vllm="0.32.0")
MODEL = "stackdecide/tiny-qwen3"


def vllm_spec() -> VllmArgSpec:
    """The options of vLLM 0.32 these tests use, with their kinds (store, nargs "+", "?",
    append, BooleanOptionalAction) and types."""
    p = argparse.ArgumentParser()
    p.add_argument("model_tag", nargs="?")
    p.add_argument("--host")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=str)
    p.add_argument("--tokenizer", type=str)
    p.add_argument("--served-model-name", nargs="+", type=str)
    p.add_argument("--max-model-len", type=str)
    p.add_argument("--max-num-seqs", type=int)
    p.add_argument("--max-num-batched-tokens", type=int)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.92)
    p.add_argument("--load-format", type=str, default="auto")
    p.add_argument("--dtype", type=str, default="auto")
    p.add_argument("--api-key", nargs="+", type=str)
    p.add_argument("--hf-token", nargs="?", type=str, const=True)
    p.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--allowed-local-media-path", type=str, default="")
    p.add_argument("--middleware", action="append", type=str, default=[])
    p.add_argument("--tool-parser-plugin", type=str, default="")
    p.add_argument("--logits-processors", nargs="+", type=str)
    p.add_argument("--lora-modules", nargs="+", type=str)
    p.add_argument("--worker-cls", type=str, default="auto")
    p.add_argument("--worker-extension-cls", type=str, default="")
    p.add_argument("--config", type=str)
    p.add_argument("--compilation-config", "-cc", type=json.loads)
    p.add_argument("--kv-transfer-config", type=json.loads)
    dump = {"vllm_version": "0.32.0", "server_module": "vllm.entrypoints.openai.api_server",
            "actions": _introspect.dump_actions(p), "attention_backends": {},
            "quantization_methods": None}
    return VllmArgSpec.from_dump(json.loads(json.dumps(dump)), sys.executable)


SPEC = vllm_spec()


def write_decision(folder: Path, engine: dict[str, Any] | None = None,
                   env: dict[str, str] | None = None, *,
                   benchmark: dict[str, Any] | None = None, **decision: Any) -> Path:
    """A decision for the CPU engine with one candidate, ``a``, whose engine keys and env add
    ``engine`` and ``env``; ``decision`` adds keys to the ``decision`` block, ``benchmark`` is the
    file's ``benchmark`` block."""
    text = yaml.safe_dump({
        "schema": "stackdecide/v1",
        "decision": {"title": "hostile engine", "hardware": {"gpu": "cpu"},
                     "model": {"id": MODEL, "shape": "tiny", "weights": "bf16"}, **decision},
        "criteria": [{"id": "speed", "weight": 1}],
        "candidates": [{"id": "a", "engine": {"model": MODEL, **(engine or {})},
                        "env": {"VLLM_CPU_KVCACHE_SPACE": "1", **(env or {})},
                        "scores": {"speed": 5}}],
        **({"benchmark": benchmark} if benchmark else {}),
    }, sort_keys=False, allow_unicode=True)
    path = folder / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def static(path: Path) -> list[Problem]:
    """What ``check`` and ``score`` find in candidate ``a`` without vLLM."""
    return engine_config.decision_problems(stackdecide.load(path), "a")


def plan(path: Path, **options: Any) -> LaunchPlan:
    """What ``launch --candidate a`` would start, rendered for ``SPEC``; starts nothing."""
    settings = LaunchOptions(**{"port": None, "runs_dir": path.parent / "runs", **options})
    return plan_launch(stackdecide.load(path), "a", settings, spec=SPEC, gpu=NO_GPU,
                       runtime=RUNTIME)


def codes(problems: list[Problem] | tuple[Problem, ...], severity: str | None = None) -> list[str]:
    return [p.code for p in problems if severity is None or p.severity == severity]


# A server that answers as vLLM's OpenAI server does where these tests look: /health open, every
# /v1 request refused with 401 unless it carries the key of VLLM_API_KEY as a bearer token
# (vllm/entrypoints/serve/middleware), streamed completions. ``python -c FAKE_ENGINE PORT NAME``;
# with a third argument, ``fail``, it logs the secrets of its environment and exits 1 instead, as
# an engine that fails to start and says what it was given.
FAKE_ENGINE = r'''
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, served, key = int(sys.argv[1]), sys.argv[2], os.environ.get("VLLM_API_KEY")
if sys.argv[3:] == ["fail"]:
    print("ValueError: invalid api key %s for hub token %s"
          % (key, os.environ.get("HF_TOKEN")), flush=True)
    sys.exit(1)
print("fake engine: the API needs a key" if key else "fake engine: no key", flush=True)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def allowed(self):
        if self.path.startswith("/v1") and key and \
                self.headers.get("Authorization") != "Bearer " + key:
            self.answer(401, {"error": "Unauthorized"})
            return False
        return True

    def do_GET(self):
        if not self.allowed():
            return
        if self.path == "/health":
            self.answer(200, {})
        else:
            self.answer(200, {"object": "list", "data": [
                {"id": served, "object": "model", "max_model_len": 1024}]})

    def do_POST(self):
        if not self.allowed():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not body.get("stream"):
            self.answer(200, {"choices": [{"index": 0, "text": " t"}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        count = body["max_tokens"]
        events = [{"choices": [{"index": 0, "text": " t",
                                "finish_reason": "length" if i == count - 1 else None}]}
                  for i in range(count)]
        events.append({"choices": [], "usage": {"prompt_tokens": len(body["prompt"]),
                                                "completion_tokens": count}})
        for event in events:
            self.wfile.write(("data: " + json.dumps(event) + "\n\n").encode())
        self.wfile.write(b"data: [DONE]\n\n")


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


def faked(launch: LaunchPlan, fail: bool = False) -> LaunchPlan:
    """``launch`` with its command replaced by ``FAKE_ENGINE`` on the plan's port (``fail``: one
    that fails to start), its environment (and so its secrets) kept."""
    assert launch.command is not None
    argv = (sys.executable, "-c", FAKE_ENGINE, str(launch.port), launch.served_model_name or "",
            *(["fail"] if fail else []))
    return replace(launch, command=replace(launch.command, argv=argv))
