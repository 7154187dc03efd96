"""The prompts a benchmark sends: random token ids (the default) or random text.

Token ids (``prompt_mode: token-ids``) skip the server's tokenizer, so TTFT measures the engine.
Text (``prompt_mode: text``) is what ``vllm bench serve --dataset-name random`` sends: random ids
from the vocabulary without special tokens, decoded to text and re-encoded until the text has the
requested length (``gen_prompt_decode_to_target_len`` in ``vllm/benchmarks/datasets``), the
special tokens the server adds counted in; the server tokenizes it on the request path, so TTFT
includes tokenization as in vLLM's own client. Every result records which mode it used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, get_args

import numpy as np

from stackdecide.errors import EngineError
from stackdecide.model.schema import PromptMode

if TYPE_CHECKING:
    import aiohttp

    from stackdecide.bench.results import BenchConfig

PROMPT_MODES: tuple[PromptMode, ...] = get_args(PromptMode)
Prompt = list[int] | str
MAX_RETRIES = 10  # decode/encode rounds per prompt, as vLLM's random dataset


class PromptMaker(Protocol):
    def make(self, rng: np.random.Generator, lengths: Sequence[int]) -> list[Prompt]: ...

    def length(self, prompt: Prompt) -> int: ...


class TokenIdPrompts:
    """Token ids drawn uniformly from [0, limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def make(self, rng: np.random.Generator, lengths: Sequence[int]) -> list[Prompt]:
        if lengths and len(set(lengths)) == 1:  # one draw, the stream earlier versions used
            return rng.integers(0, self.limit, size=(len(lengths), lengths[0])).tolist()
        return [rng.integers(0, self.limit, size=n).tolist() for n in lengths]

    def length(self, prompt: Prompt) -> int:
        return len(prompt)


class TextPrompts:
    """Random text of a given length in the model's own tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        special = set(tokenizer.all_special_ids)
        self.allowed = np.array([i for i in range(tokenizer.vocab_size) if i not in special])
        self.special_added = len(tokenizer.encode("", add_special_tokens=True))
        self.lengths: dict[str, int] = {}

    def make(self, rng: np.random.Generator, lengths: Sequence[int]) -> list[Prompt]:
        prompts: list[Prompt] = []
        for total in lengths:
            target = max(1, total - self.special_added)
            ids = self.allowed[rng.integers(0, len(self.allowed), size=target)].tolist()
            text, ids = self._fit(rng, ids, target)
            self.lengths[text] = len(ids) + self.special_added
            prompts.append(text)
        return prompts

    def _fit(self, rng: np.random.Generator, ids: list[int], target: int) -> tuple[str, list[int]]:
        text = ""
        for _ in range(MAX_RETRIES + 1):
            text = self.tokenizer.decode(ids)
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == target:
                break
            if len(ids) < target:
                extra = self.allowed[rng.integers(0, len(self.allowed), size=target - len(ids))]
                ids = ids + extra.tolist()
            else:
                ids = ids[:target]
        return text, ids

    def length(self, prompt: Prompt) -> int:
        return self.lengths.get(prompt, 0) if isinstance(prompt, str) else len(prompt)


async def text_prompts(session: aiohttp.ClientSession, config: BenchConfig,
                       model: str) -> TextPrompts:
    """Load the tokenizer of ``config.tokenizer`` or of the served model's ``root`` folder."""
    source = config.tokenizer or await _model_root(session, config.url, model) or model
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise EngineError("--prompt-mode text needs the transformers package to make prompts "
                          "of a given length; install stackdecide[engine]") from None
    try:
        tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, source)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot load the tokenizer from {source!r} for text prompts: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                          "pass --tokenizer with the model's folder") from None
    return TextPrompts(tokenizer)


async def _model_root(session: aiohttp.ClientSession, url: str, model: str) -> str | None:
    """vLLM's ``/v1/models`` names the served model's folder as ``root``."""
    async with session.get(f"{url}/v1/models") as response:
        data = await response.json()
    for entry in data.get("data", []):
        if entry.get("id") == model and isinstance(entry.get("root"), str):
            return entry["root"]
    return None
