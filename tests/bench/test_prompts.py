"""Text prompts of an exact token length, in the served model's own tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stackdecide.bench.prompts import TextPrompts, TokenIdPrompts
from stackdecide.launch.scaffold import scaffold_model


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("tiny")
    scaffold_model("tiny", path)
    return transformers.AutoTokenizer.from_pretrained(str(path))


def test_text_prompts_have_the_requested_length(tokenizer) -> None:
    maker = TextPrompts(tokenizer)
    prompts = maker.make(np.random.default_rng(3), [1, 32, 257, 512])
    assert all(isinstance(p, str) for p in prompts)
    lengths = [len(tokenizer.encode(p, add_special_tokens=True)) for p in prompts]
    assert lengths == [maker.length(p) for p in prompts] == [1, 32, 257, 512]
    special = set(tokenizer.all_special_ids)
    assert not any(i in special for p in prompts[1:]
                   for i in tokenizer.encode(p, add_special_tokens=False))
    # seeded: the same generator state gives the same texts
    assert TextPrompts(tokenizer).make(np.random.default_rng(3), [1, 32, 257, 512]) == prompts


def test_token_id_prompts_keep_the_earlier_stream() -> None:
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert TokenIdPrompts(100).make(rng_a, [5, 5, 5]) == rng_b.integers(0, 100, (3, 5)).tolist()
    varied = TokenIdPrompts(100).make(np.random.default_rng(7), [2, 4])
    assert [len(p) for p in varied] == [2, 4]


def test_text_mode_against_a_server(tokenizer, tmp_path: Path) -> None:
    from test_bench import FAST, Behaviour, FakeServer

    from stackdecide.bench.runner import BenchConfig, run_bench

    server = FakeServer(Behaviour())
    server.start()
    try:
        path = tmp_path / "tok"
        tokenizer.save_pretrained(str(path))
        result = run_bench(BenchConfig(url=server.url, input_len=20, output_len=4, num_prompts=3,
                                       timeouts=FAST, metrics_interval_s=0.0,
                                       prompt_mode="text", tokenizer=str(path)))
    finally:
        server.stop()
    assert all(isinstance(p, str) for p in server.prompts)
    assert result.config.to_dict()["prompt_mode"] == "text"
