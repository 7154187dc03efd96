"""The quality scenario's client against a toy language model served like vLLM's OpenAI server
(``/tokenize``, ``prompt_logprobs``, ``return_tokens_as_token_ids``): the evaluation text, the
reference file, the comparison worked out by brute force, determinism, and the scenario in a
decision file."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from click.testing import CliRunner

import stackdecide
from stackdecide.bench.quality import (
    QualityError,
    QualitySettings,
    ReferenceText,
    evaluation_prompts,
    parse_prompt_logprobs,
    reference_path,
    run_quality,
)
from stackdecide.bench.results import BenchConfigError
from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import bench_configs, measurement_records
from stackdecide.model.schema import BenchScenario

VOCAB = 48


class ToyModel:
    """Next-token log-probabilities that depend on the previous token only; ``noise`` moves the
    logits once (a stack that differs but repeats itself), ``jitter`` on every request (one that
    does not repeat itself)."""

    def __init__(self, noise: float = 0.0, jitter: float = 0.0) -> None:
        rng = np.random.default_rng(42)
        self.logits = rng.normal(0.0, 2.5, (VOCAB, VOCAB))
        self.logits += np.random.default_rng(7).normal(0.0, noise, self.logits.shape)
        self.jitter = jitter
        self.rng = np.random.default_rng(99)

    def logprobs(self, previous: int) -> np.ndarray:
        row = self.logits[previous] + (self.rng.normal(0.0, self.jitter, VOCAB)
                                       if self.jitter else 0.0)
        return row - np.logaddexp.reduce(row)


class ToyServer:
    """An aiohttp server in a background thread answering as vLLM does."""

    def __init__(self, model: ToyModel, max_logprobs: int = 20) -> None:
        self.model, self.max_logprobs = model, max_logprobs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> ToyServer:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/tokenize", self.tokenize)
        app.router.add_post("/v1/completions", self.completions)
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def tokenize(self, request: web.Request) -> web.Response:
        text = (await request.json())["prompt"]
        return web.json_response({"tokens": [ord(c) % VOCAB for c in text]})

    async def completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt: list[int] = body["prompt"]
        k = body.get("prompt_logprobs")
        if k is not None:
            if k > self.max_logprobs:
                return web.json_response({"error": {
                    "message": f"Requested prompt logprobs of {k}, which is greater than max "
                               f"allowed: {self.max_logprobs}"}}, status=400)
            entries: list[Any] = [None]
            for t in range(1, len(prompt)):
                logprobs = self.model.logprobs(prompt[t - 1])
                top = np.argsort(-logprobs, kind="stable")[:k]
                entry = {str(prompt[t]): {"logprob": float(logprobs[prompt[t]]), "rank": 0}}
                entry |= {str(i): {"logprob": float(logprobs[i]), "rank": r + 1}
                          for r, i in enumerate(top)}
                entries.append(entry)
            return web.json_response({"choices": [{"text": "", "prompt_logprobs": entries}]})
        tokens, previous = [], prompt[-1]
        for _ in range(body["max_tokens"]):
            previous = int(np.argmax(self.model.logprobs(previous)))
            tokens.append(previous)
        return web.json_response({"choices": [{"text": "", "logprobs": {
            "tokens": [f"token_id:{t}" for t in tokens]}}]})


SETTINGS = QualitySettings("ref", num_prompts=6, output_len=5, top_k=4, concurrency=3)


def measure(server: ToyServer, folder: Path, candidate: str, launch: str,
            settings: QualitySettings = SETTINGS) -> Any:
    return run_quality(server.url, "toy", settings, candidate=candidate, launch=launch,
                       folder=folder, reference_config_sha256="a" * 64,
                       config_sha256=("a" if candidate == "ref" else "b") * 64)


def test_the_evaluation_text_is_the_same_everywhere_and_refuses_impossible_counts() -> None:
    first = evaluation_prompts(50)
    assert first == evaluation_prompts(50) and len(set(first)) == 50
    assert evaluation_prompts(60)[:50] == first  # a longer text adds prompts after these
    assert evaluation_prompts(5, seed=1) != evaluation_prompts(5)
    with pytest.raises(BenchConfigError, match="1 to 1000 prompts"):
        evaluation_prompts(1001)


def test_the_reference_against_itself_is_zero_and_repeats_itself(tmp_path: Path) -> None:
    with ToyServer(ToyModel()) as server:
        first = measure(server, tmp_path, "ref", "run-1")
        again = measure(server, tmp_path, "ref", "run-2")
    assert first.made_reference and not again.made_reference
    for result in (first, again):
        summary = result.summary
        assert summary.kl_mean.value == summary.kl_mean.high == 0.0
        assert summary.kl_p99.value == 0.0 and summary.ppl_ratio.value == 1.0
        assert summary.top1_agree_pct.value == summary.greedy_agree_pct.value == 100.0
    assert first.determinism.identical is None
    assert again.determinism.identical and again.determinism.earlier == ("run-1",)
    assert "deterministic" in again.note() and first.text_sha256 == again.text_sha256
    assert first.scenario() == {"scenario": "quality", "reference": "ref", "num_prompts": 6,
                                "output_len": 5, "top_k": 4, "text": first.text_sha256[:16]}


def test_a_candidate_is_compared_position_by_position(tmp_path: Path) -> None:
    """The client's numbers equal a brute-force comparison of the two models' full
    distributions on the reference file's own text."""
    reference_model, candidate_model = ToyModel(), ToyModel(noise=0.4)
    with ToyServer(reference_model) as server:
        measure(server, tmp_path, "ref", "run-1")
    with ToyServer(candidate_model) as server:
        result = measure(server, tmp_path, "cand", "run-2")
    text = ReferenceText.load(reference_path(tmp_path, SETTINGS, "a" * 64))
    kls, same, nll = [], [], []
    for sequence in text.sequences:
        for t in range(1, len(sequence)):
            p, q = reference_model.logprobs(sequence[t - 1]), candidate_model.logprobs(
                sequence[t - 1])
            top_p, top_q = np.argsort(-p)[:4], np.argsort(-q)[:4]
            shared = [i for i in top_p if i in top_q]
            p_rest = 1 - sum(math.exp(p[i]) for i in shared)
            q_rest = 1 - sum(math.exp(q[i]) for i in shared)
            kls.append(sum(math.exp(p[i]) * (p[i] - q[i]) for i in shared)
                       + p_rest * math.log(p_rest / q_rest))
            same.append(top_p[0] == top_q[0])
            nll.append(p[sequence[t]] - q[sequence[t]])
    summary = result.summary
    assert summary.positions == len(kls) == sum(len(s) - 1 for s in text.sequences)
    assert summary.kl_mean.value == pytest.approx(np.mean(kls), rel=1e-9)
    assert summary.kl_mean.value > 0 and summary.kl_mean.low <= summary.kl_mean.value
    assert summary.top1_agree_pct.value == pytest.approx(100 * np.mean(same))
    assert summary.ppl_ratio.value == pytest.approx(math.exp(np.mean(nll)), rel=1e-9)
    assert not result.made_reference and result.determinism.identical is None


def test_a_candidate_before_its_reference_is_told_to_launch_the_reference(tmp_path: Path) -> None:
    with ToyServer(ToyModel()) as server, \
            pytest.raises(QualityError, match="launch the reference candidate 'ref'"):
        measure(server, tmp_path, "cand", "run-1")
    assert not list(tmp_path.glob("*.npz"))


def test_a_stack_that_does_not_repeat_itself_is_said_to_be_so(tmp_path: Path) -> None:
    with ToyServer(ToyModel()) as server:
        measure(server, tmp_path, "ref", "run-1")
    with ToyServer(ToyModel(jitter=0.05)) as server:
        measure(server, tmp_path, "cand", "run-2")
        second = measure(server, tmp_path, "cand", "run-3")
    assert second.determinism.identical is False
    assert second.determinism.differing == ("run-2",)
    assert "cand is not deterministic" in second.note()


def test_a_top_k_beyond_the_servers_max_logprobs_fails_with_its_reason(tmp_path: Path) -> None:
    with ToyServer(ToyModel(), max_logprobs=3) as server, \
            pytest.raises(QualityError, match="greater than max allowed: 3"):
        measure(server, tmp_path, "ref", "run-1")


def test_a_damaged_reference_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with ToyServer(ToyModel()) as server:
        measure(server, tmp_path, "ref", "run-1")
        path = reference_path(tmp_path, SETTINGS, "a" * 64)
        path.write_bytes(path.read_bytes()[:200])
        with pytest.raises(QualityError, match=r"cannot read the quality reference.*delete it"):
            measure(server, tmp_path, "ref", "run-2")


def test_another_reference_configuration_or_text_is_another_file(tmp_path: Path) -> None:
    base = reference_path(tmp_path, SETTINGS, "a" * 64)
    assert base != reference_path(tmp_path, SETTINGS, "b" * 64)
    other = QualitySettings("ref", num_prompts=7, output_len=5, top_k=4)
    assert base != reference_path(tmp_path, other, "a" * 64)
    faster = QualitySettings("ref", num_prompts=6, output_len=5, top_k=4, concurrency=8)
    assert base == reference_path(tmp_path, faster, "a" * 64)  # concurrency changes no result


def test_prompt_logprobs_are_read_most_likely_first_with_the_texts_own_token() -> None:
    entries = [None, {"9": {"logprob": -5.0, "rank": 30}, "3": {"logprob": -0.1, "rank": 1},
                      "4": {"logprob": -2.5, "rank": 2}}]
    ids, logprobs, own = parse_prompt_logprobs(entries, [1, 9], 2)
    assert ids.tolist() == [[3, 4]] and logprobs.tolist() == [[-0.1, -2.5]]
    assert own.tolist() == [-5.0]
    with pytest.raises(QualityError, match="lacks the text's own token"):
        parse_prompt_logprobs(entries, [1, 7], 2)
    with pytest.raises(QualityError, match="fewer than top_k 4"):
        parse_prompt_logprobs(entries, [1, 9], 4)


# -- the scenario in a decision file ------------------------------------------------------------
QUALITY = """\
schema: stackdecide/v1
decision: {title: Quality}
criteria:
  - id: quality
    weight: 1
    measure: {metric: kl_div_mean, value: linear, worst: 0.05, best: 0, scenario: {scenario: quality}}
candidates:
  - {id: fp32, scores: {quality: 10}}
  - {id: bf16, scores: {quality: 7}}
constraints: [kl_div_mean <= 0.01]
benchmark:
  scenarios:
    - {scenario: quality, reference: REFERENCE, num_prompts: 50}
"""


def test_a_decisions_quality_scenario_gives_its_settings() -> None:
    decision = stackdecide.parse(QUALITY.replace("REFERENCE", "fp32"))
    scenario = decision.model.benchmark.scenarios[0]
    assert QualitySettings.of(scenario) == QualitySettings("fp32", 50, 32, 20, 4)


def test_a_reference_that_is_no_candidate_is_refused_at_its_place(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(QUALITY.replace("REFERENCE", "fp23"))
    with pytest.raises(StackdecideError, match=r"q.yaml:13:38 benchmark.scenarios\[0\].reference: "
                                               r"no candidate 'fp23'; did you mean 'fp32'"):
        stackdecide.load(path)


@pytest.mark.parametrize(("scenario", "message"), [
    ({"scenario": "quality"}, "needs 'reference'"),
    ({"scenario": "quality", "reference": "a", "input_len": 8}, "leave out 'input_len'"),
    ({"scenario": "quality", "reference": "a", "concurrency": [1, 4]}, "one concurrency"),
    ({"scenario": "quality", "reference": "a", "num_prompts": 5000}, "at most 1000 prompts"),
    ({"scenario": "decode", "reference": "a"}, "'reference' belongs to the quality scenario"),
    ({"scenario": "decode", "top_k": 5}, "'top_k' belongs to the quality scenario"),
])
def test_quality_keys_are_checked(scenario: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchScenario(**scenario)


# -- its records, scored ------------------------------------------------------------------------
def test_a_quality_result_becomes_records_with_intervals_that_score_and_constrain(
        tmp_path: Path) -> None:
    decision = stackdecide.parse(QUALITY.replace("REFERENCE", "fp32"))
    settings = QualitySettings("fp32", num_prompts=6, output_len=5, top_k=4)
    results = {}
    for candidate, model in (("fp32", ToyModel()), ("bf16", ToyModel(noise=0.4))):
        with ToyServer(model) as server:
            results[candidate] = run_quality(
                server.url, "toy", settings, candidate=candidate, launch=f"run-{candidate}",
                folder=tmp_path, reference_config_sha256=None, config_sha256=None)
    records = []
    for candidate, result in results.items():
        outcome = LaunchOutcome(ok=True, candidate_id=candidate, decision_file=None,
                                engine_sha256=decision.candidate(candidate).config_sha256,
                                run_dir=f"runs/run-{candidate}")
        records += measurement_records(decision, outcome, quality=[result])
    kl = {r.candidate: r for r in records if r.metric == "kl_div_mean"}
    assert {r.metric for r in records} >= {"kl_div_mean", "kl_div_p99", "top1_agree_pct",
                                           "ppl_ratio", "greedy_agree_pct"}
    assert kl["fp32"].value == 0.0 and kl["fp32"].interval == (0.0, 0.0)
    low, high = kl["bf16"].interval or (0.0, 0.0)
    assert low <= kl["bf16"].value <= high and kl["bf16"].launch == "run-bf16"
    assert kl["bf16"].scenario["text"] == results["bf16"].text_sha256[:16]
    assert "a lower bound" in (kl["bf16"].note or "")
    with EvidenceStore(tmp_path / "e.db") as store:
        store.add(records)
        stored = store.load(metric="kl_div_mean")
    assert [r.interval for r in stored] == [kl["fp32"].interval, kl["bf16"].interval]
    listed = CliRunner().invoke(main, ["evidence", "list", "--evidence", str(tmp_path / "e.db"),
                                       "--metric", "kl_div_mean"])
    assert listed.exit_code == 0, listed.output
    assert f"{kl['bf16'].value:.6g} [{low:.3g}, {high:.3g}]" in listed.stdout
    ranking = decision.score(evidence=stored)
    quality = ranking.cells[decision.candidate_index("bf16")][0]
    assert quality.measured and quality.raw == pytest.approx(kl["bf16"].value)
    assert kl["bf16"].value > 0.01  # the toy's noise moves it well past the constraint
    assert ranking.infeasible == {"bf16": (f"kl_div_mean = {kl['bf16'].value:g} breaks "
                                           "'kl_div_mean <= 0.01'",)}


def test_the_quality_scenario_is_no_load_benchmark() -> None:
    scenarios = [BenchScenario(scenario="decode"),
                 BenchScenario(scenario="quality", reference="a")]
    configs = bench_configs("http://127.0.0.1:1", "m", scenarios, seed=3)
    assert [c.scenario for c in configs] == ["decode"]
