"""The quality scenario against a running server: how far its next-token distributions are from a
reference candidate's, on stackdecide's own evaluation text (``certify.divergence`` for the maths).

**The evaluation text.** ``evaluation_prompts`` writes ``num_prompts`` short English prompts from
fixed templates and word lists, drawn by a seeded generator (the same prompts on every machine).
The reference candidate's server tokenizes them and continues each greedily for ``output_len``
tokens (``ignore_eos``: every continuation has that length); prompt and continuation together are
one sequence of the text. The text's digest is the SHA-256 of its token ids, recorded with every
record it gives (``text`` in the scenario).

**The reference.** The reference's top-``top_k`` next-token log-probabilities on every position of
the text (a teacher-forced pass: the sequences sent as token-id prompts with ``prompt_logprobs``)
are kept in one file beside the decision's evidence (``ReferenceText.save``), named by the
reference's engine configuration and the text's settings, and made once: by the first launch of the
reference that runs the scenario. Every candidate, the reference included, is then measured
against that same file: one teacher-forced pass and one greedy pass per launch.

**Determinism.** Each launch's teacher-forced log-probabilities are digested; the digests of a
configuration's launches on one text are kept beside the reference (``LaunchHistory``), and the
result says whether this launch gave bit-identical log-probabilities to the earlier ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from stackdecide._files import write_json_atomic
from stackdecide.audit.engine_config import auth_header
from stackdecide.bench.results import BenchConfigError, BenchError
from stackdecide.bench.stream import Timeouts, error_text
from stackdecide.certify.divergence import NextTokens, QualitySummary, compare, summarize
from stackdecide.model.schema import QUALITY_MAX_PROMPTS, QUALITY_MAX_TOP_K, BenchScenario

TEXT_VERSION = 1  # of the prompt writer: a change of templates or words is a new text
TEXT_SEED = 0
DEFAULT_PROMPTS = 200
DEFAULT_CONTINUATION = 32
DEFAULT_TOP_K = 20  # vLLM's default --max-logprobs: a larger k needs the engine to allow it
DEFAULT_CONCURRENCY = 4
REFERENCE_SUFFIX = ".npz"

_TEMPLATES = (
    "The {adjective} {animal} walked into the {place} and",
    "Question: What do people usually do at a {place}?\nAnswer:",
    "Write a short letter to {name} about {topic}.\n\nDear {name},\n",
    "In {year}, the town of {town} built a new {building} because",
    "Here is a simple recipe for {dish}. First,",
    "List three facts about the {animal}:\n1.",
    "{name} asked {friend} why the {thing} was {color}. The answer was",
    "The most important thing to know about {topic} is",
    'def {function}(values):\n    """Return the {statistic} of a list of numbers."""\n',
    "Once upon a time, a {adjective} {animal} lived near a {place}.",
    "Explain to a child how a {thing} works, in {count} sentences.",
    "My favourite {dish} uses {ingredient} and",
)
_WORDS: dict[str, tuple[str, ...]] = {
    "adjective": ("quiet", "curious", "tired", "bright", "old", "clever", "small", "brave"),
    "animal": ("fox", "owl", "cat", "horse", "rabbit", "dolphin", "bee", "elephant"),
    "place": ("library", "market", "harbour", "forest", "school", "museum", "garden", "station"),
    "name": ("Anna", "Omar", "Lena", "Kenji", "Maria", "Tom", "Priya", "Samuel"),
    "friend": ("her brother", "his teacher", "a neighbour", "the baker", "an old friend",
               "the captain"),
    "topic": ("the weather", "a new job", "a trip to the sea", "gardening", "a lost key",
              "the school concert", "learning to swim", "a birthday party"),
    "year": ("1850", "1905", "1962", "1988", "2003", "2017"),
    "town": ("Millbrook", "Eastport", "Kingsford", "Ashdale", "Riverton", "Stonebridge"),
    "building": ("bridge", "library", "hospital", "school", "market hall", "railway station"),
    "dish": ("pancakes", "tomato soup", "lemon cake", "fried rice", "vegetable curry",
             "banana bread", "a green salad", "bean stew"),
    "thing": ("kettle", "bicycle", "clock", "door", "lamp", "boat", "kite", "window"),
    "color": ("red", "blue", "green", "yellow", "broken", "wet", "open", "missing"),
    "function": ("summarize", "compute", "measure", "describe", "reduce", "score"),
    "statistic": ("mean", "median", "largest value", "smallest value", "sum", "range"),
    "count": ("two", "three", "four", "five"),
    "ingredient": ("butter", "garlic", "honey", "fresh basil", "brown rice", "chickpeas",
                   "lemon juice", "oats"),
}
_FIELD = re.compile(r"\{(\w+)\}")


class QualityError(BenchError):
    """The quality scenario could not run against this server."""


def evaluation_prompts(count: int, seed: int = TEXT_SEED) -> list[str]:
    """``count`` distinct prompts from the templates, the same for the same ``seed``."""
    if not 1 <= count <= QUALITY_MAX_PROMPTS:
        raise BenchConfigError(f"the quality scenario takes 1 to {QUALITY_MAX_PROMPTS} prompts, "
                               f"got {count}")
    rng = np.random.default_rng([TEXT_VERSION, seed])
    found: dict[str, None] = {}
    while len(found) < count:
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        chosen = {key: _WORDS[key][int(rng.integers(len(_WORDS[key])))]
                  for key in dict.fromkeys(_FIELD.findall(template))}
        found[template.format(**chosen)] = None
    return list(found)


@dataclass(frozen=True)
class QualitySettings:
    """What defines an evaluation text and its comparison, as the decision's scenario sets it."""

    reference: str  # the candidate whose distributions are the reference
    num_prompts: int = DEFAULT_PROMPTS
    output_len: int = DEFAULT_CONTINUATION  # tokens of each greedy continuation
    top_k: int = DEFAULT_TOP_K
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= QUALITY_MAX_TOP_K:
            raise BenchConfigError(f"top_k must be 1 to {QUALITY_MAX_TOP_K}, got {self.top_k}")
        if not 1 <= self.num_prompts <= QUALITY_MAX_PROMPTS:
            raise BenchConfigError(f"the quality scenario takes 1 to {QUALITY_MAX_PROMPTS} "
                                   f"prompts, got {self.num_prompts}")
        if self.output_len < 1 or self.concurrency < 1:
            raise BenchConfigError("output_len and concurrency must be at least 1")

    @classmethod
    def of(cls, scenario: BenchScenario) -> QualitySettings:
        """The settings a decision's quality scenario gives, defaults for what it leaves out."""
        assert scenario.reference is not None  # the schema requires it of a quality scenario
        return cls(scenario.reference, scenario.num_prompts or DEFAULT_PROMPTS,
                   scenario.output_len or DEFAULT_CONTINUATION, scenario.top_k or DEFAULT_TOP_K,
                   scenario.concurrency[0] if scenario.concurrency else DEFAULT_CONCURRENCY)

    def key(self) -> dict[str, Any]:
        """The settings a reference file is made for (concurrency changes no result)."""
        return {"text_version": TEXT_VERSION, "seed": TEXT_SEED, "num_prompts": self.num_prompts,
                "output_len": self.output_len, "top_k": self.top_k}


@dataclass(frozen=True)
class ReferenceText:
    """The evaluation text (prompt token ids and the reference's greedy continuations) and the
    reference's top-k distributions on it, with where they came from (``meta``)."""

    prompt_ids: tuple[tuple[int, ...], ...]
    continuations: tuple[tuple[int, ...], ...]
    distributions: NextTokens
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sequences(self) -> list[list[int]]:
        return [[*p, *c] for p, c in zip(self.prompt_ids, self.continuations, strict=True)]

    @property
    def digest(self) -> str:
        """SHA-256 of the text's token ids: what every record of this text names."""
        return text_digest(self.prompt_ids, self.continuations)

    def save(self, path: Path) -> None:
        """Write to ``path`` (numpy's compressed archive) under a temporary name, then rename:
        a reader never sees half a file."""
        lengths = np.array([len(p) for p in self.prompt_ids], dtype=np.int64)
        arrays = {
            "prompt_lengths": lengths,
            "sequences": np.array([t for s in self.sequences for t in s], dtype=np.int64),
            "top_ids": self.distributions.top_ids.astype(np.int64),
            "top_logprobs": self.distributions.top_logprobs.astype(np.float64),
            "token_logprobs": self.distributions.token_logprobs.astype(np.float64),
            "prompt_index": self.distributions.prompt_index.astype(np.int64),
            "meta": np.array(json.dumps({**self.meta, "text_sha256": self.digest},
                                        sort_keys=True)),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".writing-{path.stem}-", suffix=REFERENCE_SUFFIX,
                                        dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez_compressed(out, **arrays)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> ReferenceText:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                lengths = data["prompt_lengths"].tolist()
                flat = data["sequences"].tolist()
                continuation = int(meta["settings"]["output_len"])
                distributions = NextTokens(data["top_ids"], data["top_logprobs"],
                                           data["token_logprobs"], data["prompt_index"])
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise QualityError(f"{path}: cannot read the quality reference ({exc}); delete it "
                               "and launch the reference again") from None
        prompts, continuations, start = [], [], 0
        for length in lengths:
            prompts.append(tuple(flat[start:start + length]))
            continuations.append(tuple(flat[start + length:start + length + continuation]))
            start += length + continuation
        text = cls(tuple(prompts), tuple(continuations), distributions, meta)
        if meta.get("text_sha256") != text.digest:
            raise QualityError(f"{path}: the quality reference does not match its own digest; "
                               "delete it and launch the reference again")
        return text


def text_digest(prompt_ids: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> str:
    canonical = json.dumps([[list(p), list(c)] for p, c in zip(prompt_ids, continuations,
                                                             strict=True)],
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def reference_path(folder: Path, settings: QualitySettings, reference_config_sha256: str | None
                   ) -> Path:
    """Where the reference file of ``settings`` lives: named by the reference candidate, its
    engine configuration and the text's settings, so a changed reference is a new file."""
    key = json.dumps({"config": reference_config_sha256, **settings.key()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return folder / f"{settings.reference}-{digest}{REFERENCE_SUFFIX}"


def logprobs_digest(tokens: NextTokens) -> str:
    """SHA-256 of a pass's top-k ids and log-probabilities, bit for bit."""
    hasher = hashlib.sha256()
    for array in (tokens.top_ids.astype(np.int64), tokens.top_logprobs.astype(np.float64),
                  tokens.token_logprobs.astype(np.float64)):
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


@dataclass(frozen=True)
class Determinism:
    """This launch's log-probabilities against the earlier launches of its configuration on
    the same text: ``identical`` is None when there was none."""

    identical: bool | None
    earlier: tuple[str, ...]  # launches compared with
    differing: tuple[str, ...] = ()

    def sentence(self, candidate: str) -> str:
        if self.identical is None:
            return (f"{candidate}: first launch on this text; whether it is deterministic shows "
                    "at its next launch")
        if self.identical:
            return (f"{candidate} is deterministic: its log-probabilities are bit-identical to "
                    f"{len(self.earlier)} earlier launch(es)")
        return (f"{candidate} is not deterministic: its log-probabilities differ from launch(es) "
                f"{', '.join(self.differing)}")


class LaunchHistory:
    """The log-probability digests of one configuration's launches on one text, in a JSON file
    beside the reference."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, launch: str, digest: str) -> Determinism:
        """Compare ``digest`` with the earlier launches', then add this launch's."""
        try:
            earlier: dict[str, str] = json.loads(self.path.read_text())["launches"]
        except FileNotFoundError:
            earlier = {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise QualityError(f"{self.path}: cannot read the launch history ({exc}); delete "
                               "it") from None
        others = {name: value for name, value in earlier.items() if name != launch}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"launches": {**earlier, launch: digest}}, indent=1)
        if not others:
            return Determinism(None, ())
        differing = tuple(sorted(name for name, value in others.items() if value != digest))
        return Determinism(not differing, tuple(sorted(others)), differing)


def history_path(folder: Path, text: ReferenceText, candidate: str,
                 config_sha256: str | None) -> Path:
    config = (config_sha256 or "unknown")[:12]
    return folder / f"launches-{text.digest[:16]}" / f"{candidate}-{config}.json"


@dataclass(frozen=True)
class QualityResult:
    """One launch's comparison with the reference."""

    candidate: str
    settings: QualitySettings
    text_sha256: str
    summary: QualitySummary
    determinism: Determinism
    made_reference: bool  # this launch made the reference file first

    def scenario(self) -> dict[str, Any]:
        """What the records of this result measured: the scenario, its settings and the text."""
        s = self.settings
        return {"scenario": "quality", "reference": s.reference, "num_prompts": s.num_prompts,
                "output_len": s.output_len, "top_k": s.top_k, "text": self.text_sha256[:16]}

    def rows(self) -> list[tuple[str, float, float, float]]:
        """``(metric, value, low, high)`` of every statistic, in the catalogue's names."""
        summary = self.summary
        return [(name, stat.value, stat.low, stat.high) for name, stat in (
            ("kl_div_mean", summary.kl_mean), ("kl_div_p99", summary.kl_p99),
            ("top1_agree_pct", summary.top1_agree_pct), ("ppl_ratio", summary.ppl_ratio),
            ("greedy_agree_pct", summary.greedy_agree_pct))]

    def note(self) -> str:
        """What every record of this result says of how it was measured."""
        summary = self.summary
        return (f"against {self.settings.reference} on {summary.prompts} prompts "
                f"({summary.positions} positions) of text {self.text_sha256[:16]}; KL on the "
                f"reference's top {self.settings.top_k} with the rest lumped (a lower bound; mean "
                f"lumped reference mass {summary.lumped_mass_mean:.3g}); interval: 95% bootstrap "
                f"over prompts; {self.determinism.sentence(self.candidate)}")


# -- talking to the server ---------------------------------------------------------------------
class _Client:
    """Completions against one server, at most ``concurrency`` in flight."""

    def __init__(self, url: str, model: str, concurrency: int, api_key: str | None,
                 timeouts: Timeouts) -> None:
        self.url, self.model = url.rstrip("/"), model
        self.limit = asyncio.Semaphore(concurrency)
        self.headers = auth_header(api_key)
        self.timeouts = timeouts

    async def post(self, session: aiohttp.ClientSession, path: str, payload: dict[str, Any]
                   ) -> dict[str, Any]:
        async with self.limit:
            try:
                async with session.post(f"{self.url}{path}", json=payload,
                                        headers=self.headers) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise QualityError(f"the server answered {path} with HTTP "
                                           f"{response.status}: {error_text(body)}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise QualityError(f"the quality scenario lost the server at {self.url}: "
                                   f"{exc or type(exc).__name__}") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise QualityError(f"the server's answer to {path} is not JSON") from None
        if not isinstance(data, dict):
            raise QualityError(f"the server's answer to {path} is not a JSON object")
        return data

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=self.timeouts.request_s, sock_connect=self.timeouts.connect_s,
            sock_read=self.timeouts.stall_s))

    async def tokenize(self, session: aiohttp.ClientSession, text: str) -> tuple[int, ...]:
        data = await self.post(session, "/tokenize", {"model": self.model, "prompt": text})
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise QualityError("the server's /tokenize gave no tokens")
        return tuple(int(t) for t in tokens)

    async def greedy(self, session: aiohttp.ClientSession, prompt: Sequence[int],
                     output_len: int) -> tuple[int, ...]:
        """The greedy continuation of a token-id prompt, ``output_len`` tokens long. The token
        ids come back as ``token_id:N`` in the logprobs (vLLM's ``return_tokens_as_token_ids``)."""
        data = await self.post(session, "/v1/completions", {
            "model": self.model, "prompt": list(prompt), "max_tokens": output_len,
            "temperature": 0.0, "ignore_eos": True, "logprobs": 0,
            "return_tokens_as_token_ids": True})
        try:
            tokens = data["choices"][0]["logprobs"]["tokens"]
            ids = tuple(int(str(token).removeprefix("token_id:")) for token in tokens)
        except (KeyError, IndexError, TypeError, ValueError):
            raise QualityError("the server's completion carries no token ids (it needs vLLM's "
                               "return_tokens_as_token_ids)") from None
        if len(ids) != output_len:
            raise QualityError(f"a greedy continuation has {len(ids)} tokens, not {output_len}")
        return ids

    async def teacher_forced(self, session: aiohttp.ClientSession, sequence: Sequence[int],
                             top_k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k ids and log-probabilities, and the log-probability of the sequence's own token,
        at every position after the first."""
        data = await self.post(session, "/v1/completions", {
            "model": self.model, "prompt": list(sequence), "max_tokens": 1, "temperature": 0.0,
            "prompt_logprobs": top_k})
        try:
            entries = data["choices"][0]["prompt_logprobs"]
        except (KeyError, IndexError, TypeError):
            entries = None
        if not isinstance(entries, list) or len(entries) != len(sequence):
            raise QualityError("the server's completion carries no prompt_logprobs for every "
                               "prompt token")
        return parse_prompt_logprobs(entries, sequence, top_k)


def parse_prompt_logprobs(entries: Sequence[Any], sequence: Sequence[int], top_k: int
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vLLM's ``prompt_logprobs`` (per position ``{token id: {logprob, rank, ...}}``: the top k
    and the prompt's own token, the first position ``null``) as arrays: top-k ids and
    log-probabilities, most likely first, and the own token's log-probability."""
    positions = len(sequence) - 1
    ids = np.empty((positions, top_k), dtype=np.int64)
    logprobs = np.empty((positions, top_k))
    own = np.empty(positions)
    for t in range(1, len(sequence)):
        entry = entries[t]
        if not isinstance(entry, dict):
            raise QualityError(f"prompt_logprobs has no entry at position {t}")
        try:
            ranked = sorted(((float(v["logprob"]), int(k)) for k, v in entry.items()),
                            key=lambda item: (-item[0], item[1]))
            own[t - 1] = float(entry[str(sequence[t])]["logprob"])
        except (KeyError, TypeError, ValueError):
            raise QualityError(f"prompt_logprobs at position {t} lacks the text's own token or a "
                               "log-probability") from None
        if len(ranked) < top_k:
            raise QualityError(f"prompt_logprobs at position {t} has {len(ranked)} tokens, fewer "
                               f"than top_k {top_k}")
        ids[t - 1] = [token for _, token in ranked[:top_k]]
        logprobs[t - 1] = [value for value, _ in ranked[:top_k]]
    return ids, logprobs, own


async def _teacher_forced_pass(client: _Client, session: aiohttp.ClientSession,
                               sequences: Sequence[Sequence[int]], top_k: int) -> NextTokens:
    parts = await asyncio.gather(*(client.teacher_forced(session, s, top_k) for s in sequences))
    return NextTokens(
        top_ids=np.concatenate([p[0] for p in parts]),
        top_logprobs=np.concatenate([p[1] for p in parts]),
        token_logprobs=np.concatenate([p[2] for p in parts]),
        prompt_index=np.concatenate([np.full(len(p[2]), i, dtype=np.int64)
                                     for i, p in enumerate(parts)]))


async def _make_reference(client: _Client, session: aiohttp.ClientSession,
                          settings: QualitySettings, meta: dict[str, Any]) -> ReferenceText:
    prompts = evaluation_prompts(settings.num_prompts)
    prompt_ids = await asyncio.gather(*(client.tokenize(session, p) for p in prompts))
    continuations = await asyncio.gather(*(client.greedy(session, p, settings.output_len)
                                           for p in prompt_ids))
    sequences = [[*p, *c] for p, c in zip(prompt_ids, continuations, strict=True)]
    distributions = await _teacher_forced_pass(client, session, sequences, settings.top_k)
    return ReferenceText(tuple(prompt_ids), tuple(continuations), distributions,
                         {**meta, "settings": settings.key(), "prompts": prompts})


async def _measure(client: _Client, settings: QualitySettings, path: Path, make: bool,
                   meta: dict[str, Any]) -> tuple[ReferenceText, NextTokens,
                                                  list[tuple[int, ...]], bool]:
    async with client.session() as session:
        made = False
        if path.is_file():
            text = ReferenceText.load(path)
        elif make:
            text = await _make_reference(client, session, settings, meta)
            text.save(path)
            made = True
        else:
            raise QualityError(f"no quality reference yet for these settings: launch the "
                               f"reference candidate '{settings.reference}' with this scenario "
                               f"first (it writes {path})")
        forced = await _teacher_forced_pass(client, session, text.sequences, settings.top_k)
        greedy = await asyncio.gather(*(client.greedy(session, p, settings.output_len)
                                        for p in text.prompt_ids))
    return text, forced, list(greedy), made


def run_quality(url: str, model: str, settings: QualitySettings, *, candidate: str, launch: str,
                folder: Path, reference_config_sha256: str | None,
                config_sha256: str | None, api_key: str | None = None,
                timeouts: Timeouts | None = None) -> QualityResult:
    """Measure ``candidate``'s server against the reference of ``settings``, kept in ``folder``.

    The reference's own server makes the reference file when there is none (module doc); any
    other candidate needs it to exist. ``launch`` names this launch in the determinism history.
    """
    client = _Client(url, model, settings.concurrency, api_key, timeouts or Timeouts())
    path = reference_path(folder, settings, reference_config_sha256)
    meta = {"reference": settings.reference, "config_sha256": reference_config_sha256,
            "launch": launch, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    text, forced, greedy, made = asyncio.run(_measure(
        client, settings, path, candidate == settings.reference, meta))
    comparison = compare(text.distributions, forced, text.continuations, greedy)
    determinism = LaunchHistory(history_path(folder, text, candidate, config_sha256)).record(
        launch, logprobs_digest(forced))
    return QualityResult(candidate, settings, text.digest, summarize(comparison), determinism,
                         made)
