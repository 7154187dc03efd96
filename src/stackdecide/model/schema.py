"""The decision file, schema ``stackdecide/v1``, as pydantic models.

Shape checks live here (types, unknown keys, ranges of single values). Checks that relate parts of
the file to each other (every candidate scores every criterion, weights add up) live in
``model/loader.py`` so that each error can name the exact field that is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from stackdecide._text import hidden_characters
from stackdecide.model.metrics import MAX_COUNT, MAX_MEASURED, SLO_METRICS

SCHEMA_ID = "stackdecide/v1"
# The largest magnitude of a number in a decision file: scores are normalised by
# (score - low) / (high - low), weights by their sum, value functions by differences of raw values.
# Near float's limit (1.8e308) those overflow to inf and then NaN, which would rank as a winner.
# The bound is the one measured values have, since value functions compare the two.
MAX_MAGNITUDE = MAX_MEASURED


def _no_hidden_characters(value: Any) -> Any:
    # An id is matched, stored and printed as written: one that holds a control, bidi or
    # zero-width character would look like another id (or rewrite the terminal line showing it).
    hidden = hidden_characters(value.strip()) if isinstance(value, str) else []
    if hidden:
        raise ValueError(f"an id cannot hold {', '.join(hidden)} (control, bidi or zero-width "
                         "characters); write it in plain letters, digits and . _ -")
    return value


Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80),
                       BeforeValidator(_no_hidden_characters)]
ModelId = Annotated[str, BeforeValidator(_no_hidden_characters)]  # a hub id or a model's name

# A name a POSIX shell can set: what a candidate's ``env`` keys must be (checked in the loader).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reject_bool(value: Any) -> Any:
    # YAML reads yes/no/true/false as booleans, which pydantic would take as 1 and 0.
    if isinstance(value, bool):
        raise ValueError(f"{value} is not a number")
    return value


def _within_magnitude(value: float) -> float:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"beyond ±{MAX_MAGNITUDE:g}, the largest number stackdecide scores with "
                         "(float arithmetic overflows on larger ones); use a smaller unit or scale")
    return value


def _big_int_as_inf(value: Any) -> Any:
    # An integer beyond float's range would make pydantic raise OverflowError (a traceback):
    # refuse it here, at its place in the file.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        digits = int(value.bit_length() * 0.30103) + 1
        raise ValueError(f"a number of about {digits} digits is beyond ±{MAX_MAGNITUDE:g}, the "
                         "largest number stackdecide scores with")
    return value


FiniteFloat = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_reject_bool),
                        BeforeValidator(_big_int_as_inf), AfterValidator(_within_magnitude)]
Positive = Annotated[float, Field(gt=0, le=MAX_MAGNITUDE, allow_inf_nan=False),
                     BeforeValidator(_big_int_as_inf)]
NonNegative = Annotated[float, Field(ge=0, le=MAX_MAGNITUDE, allow_inf_nan=False),
                        BeforeValidator(_big_int_as_inf)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Range(_Strict):
    """A closed interval ``[low, high]``, written in YAML as a two-item list."""

    low: FiniteFloat
    high: FiniteFloat

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError("expected [low, high]")
            return {"low": value[0], "high": value[1]}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g}"


class Hardware(_Strict):
    gpu: str
    vram_gb: Positive | None = None
    count: Count = 1
    compute_capability: str | None = None
    memory_bandwidth_gb_s: Positive | None = None
    price_per_gpu_hour: Positive | None = None  # any currency; gives cost_per_mtok_out


class ModelSpec(_Strict):
    id: ModelId
    shape: str | None = None  # a built-in shape name for scaffolding and rooflines, e.g. qwen3-4b
    weights: str | None = None  # checkpoint format (facts.dtypes), e.g. bf16, fp8-block, awq-g128
    config: str | None = None  # a config.json or model folder, relative to the decision file


class CandidateModel(_Strict):
    """A candidate's own model, over the decision's ``model``: naming a model (id, shape or
    config) replaces the decision's; giving only ``weights`` keeps its model in another format."""

    id: ModelId | None = None
    shape: str | None = None
    weights: str | None = None
    config: str | None = None


class Targets(_Strict):
    decode_tok_s: Range | None = None
    prefill_tok_s: Range | None = None
    vram_gb: Range | None = None
    context_tokens: Count | None = None


class DecisionMeta(_Strict):
    title: str
    source: str | None = None
    date: str | None = None
    hardware: Hardware | None = None
    model: ModelSpec | None = None
    targets: Targets = Targets()
    normalize_weights: bool = False
    # Engine keys and env vars that make the server load code the file points at
    # (audit.engine_config.CODE_LOADING_KEYS) are refused at launch unless this is true.
    allow_code_loading: bool = False
    # Engine keys and env vars whose values are secret besides those named like one (api_key,
    # HF_TOKEN, ...: audit.engine_config.is_secret_name): redacted in every output.
    secrets: list[str] = []

    @field_validator("date", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads 2025-08-20 as a date; keep it as the text the user wrote.
        return value.isoformat() if hasattr(value, "isoformat") else value


ValueFunction = Literal["linear", "points", "target", "relative_to_best", "pass_fail"]


class Measure(_Strict):
    """How a measured metric becomes a score on the criterion's scale."""

    metric: str
    value: ValueFunction = "relative_to_best"
    worst: FiniteFloat | None = None  # linear: raw value that scores the scale's worst end
    best: FiniteFloat | None = None  # linear: raw value that scores the scale's best end
    points: list[tuple[FiniteFloat, FiniteFloat]] | None = None  # piecewise: (raw, score) pairs
    target: Range | None = None  # target: full score inside the range
    falloff: Positive | None = None  # target: raw distance to 0
    penalize: Literal["both", "below", "above"] = "both"  # target: which side of the range loses score
    scenario: dict[str, Any] = {}  # evidence must match these scenario parameters

    @model_validator(mode="after")
    def _parameters_present(self) -> Measure:
        needs = {"linear": ("worst", "best"), "points": ("points",), "target": ("target",)}
        missing = [name for name in needs.get(self.value, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"value function '{self.value}' needs {', '.join(missing)}")
        if self.value == "linear" and self.worst == self.best:
            raise ValueError("linear value function needs worst != best")
        if self.value == "points":
            xs = [x for x, _ in self.points or []]
            if len(xs) < 2 or any(b <= a for a, b in pairwise(xs)):
                raise ValueError("points need at least two pairs with increasing raw values")
        return self


class Criterion(_Strict):
    id: Identifier
    name: str | None = None
    weight: float | str | None = None  # 0.35, 35, or "35%"; omitted when weighting is AHP
    direction: Literal["benefit", "cost"] = "benefit"
    scale: Range = Range(low=0, high=10)
    description: str | None = None
    measure: Measure | None = None
    uncertainty: NonNegative | None = None  # ± scale units

    @field_validator("weight", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("weight must be a number such as 0.35, 35 or '35%'")
        return _big_int_as_inf(value)

    @property
    def label(self) -> str:
        return self.name or self.id


class Stack(_Strict):
    """Pins of a candidate stack (PEP 440 specifiers or plain versions); which fields are
    packages, and what each names, is ``model.stack``."""

    vllm: str | None = None
    torch: str | None = None
    flashinfer: str | None = None
    transformers: str | None = None
    cuda: str | None = None
    python: str | None = None
    extras: list[str] = []
    packages: dict[str, str] = {}

    @field_validator("vllm", "torch", "flashinfer", "transformers", "cuda", "python", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def config_digest(engine: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """SHA-256 of an engine mapping and environment in canonical JSON (``Candidate.config_sha256``)."""
    canonical = json.dumps({"engine": dict(engine), "env": dict(env)}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Candidate(_Strict):
    id: Identifier
    name: str | None = None
    stack: Stack = Stack()
    model: CandidateModel | None = None  # this candidate's model, if not the decision's
    engine: dict[str, Any] = {}  # vLLM engine arguments, as the source wrote them
    env: dict[str, str] = {}
    scores: dict[str, FiniteFloat] = {}
    uncertainty: dict[str, NonNegative] = {}
    reported_total: FiniteFloat | None = None
    notes: str | None = None
    gpus: Count | None = None  # GPUs it serves on; default: its engine's (model.stack.engine_gpus)

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def config_sha256(self) -> str:
        """Identity of its serving configuration: the engine mapping and environment as written,
        in canonical JSON. Launches record it with their evidence; a change makes new evidence."""
        return config_digest(self.engine, self.env)


class Ahp(_Strict):
    """Saaty pairwise comparisons: ``matrix[i][j]`` is how much more important order[i] is than j."""

    order: list[Identifier]
    matrix: list[list[FiniteFloat | str]]


class Weighting(_Strict):
    method: Literal["direct", "ahp"] = "direct"
    ahp: Ahp | None = None

    @model_validator(mode="after")
    def _ahp_present(self) -> Weighting:
        if self.method == "ahp" and self.ahp is None:
            raise ValueError("method 'ahp' needs an 'ahp' block with order and matrix")
        return self


class SensitivitySpec(_Strict):
    """Optional limits on the weights that SMAA samples."""

    weight_bounds: dict[str, Range] = {}  # per criterion, as fractions 0..1
    importance_order: list[Identifier] = []  # most important first: sampled weights keep this order
    samples: Annotated[int, Field(ge=100, le=10_000_000)] = 10_000


# The quality scenario's evaluation text: at most this many prompts (its templates give a few
# thousand distinct ones), and at most this many next tokens per position (the server answers
# with about 60 bytes of JSON for each; vLLM allows 20 unless the engine's max_logprobs says more).
QUALITY_MAX_PROMPTS = 1000
QUALITY_MAX_TOP_K = 1000


class BenchScenario(_Strict):
    """One benchmark run of the feedback loop; unset values take the scenario's defaults."""

    scenario: Literal["decode", "prefill", "throughput", "capacity", "quality"]
    concurrency: list[Count] | None = None
    input_len: Count | None = None
    output_len: Count | None = None  # quality: tokens of each greedy continuation
    num_prompts: Count | None = None  # capacity: requests per probe; quality: prompts of the text
    # quality only (bench.quality): the candidate compared against, and the next tokens per position
    reference: Identifier | None = None
    top_k: Annotated[int, Field(ge=1, le=QUALITY_MAX_TOP_K)] | None = None
    # capacity only: what the search varies and how (bench.capacity.SearchSettings)
    search: Literal["concurrency", "request_rate"] | None = None
    start: Positive | None = None
    growth: Annotated[float, Field(gt=1, le=100)] | None = None
    precision: Annotated[float, Field(gt=0, le=1)] | None = None
    max_load: Positive | None = None
    max_probes: Annotated[int, Field(ge=2, le=100)] | None = None

    @model_validator(mode="after")
    def _capacity_keys(self) -> BenchScenario:
        keys = ("search", "start", "growth", "precision", "max_load", "max_probes")
        if self.scenario != "capacity":
            given = [k for k in keys if getattr(self, k) is not None]
            if given:
                raise ValueError(f"'{given[0]}' belongs to the capacity scenario only")
        elif self.concurrency is not None:
            raise ValueError("the capacity scenario searches the load itself; leave out "
                             "'concurrency' (use start and max_load)")
        else:
            start, top = self.start or 1.0, self.max_load or 1024.0
            if start > top:
                raise ValueError(f"start {start:g} is above max_load {top:g}")
            if (self.search or "concurrency") == "concurrency" and any(
                    v != int(v) or v < 1 for v in (start, top)):
                raise ValueError("a concurrency search needs whole-number start and max_load "
                                 ">= 1")
        return self

    @model_validator(mode="after")
    def _quality_keys(self) -> BenchScenario:
        if self.scenario != "quality":
            given = [k for k in ("reference", "top_k") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"'{given[0]}' belongs to the quality scenario only")
            return self
        if self.reference is None:
            raise ValueError("the quality scenario needs 'reference': the candidate whose "
                             "next-token distributions the others are compared with")
        if self.input_len is not None:
            raise ValueError("the quality scenario writes its own prompts; leave out 'input_len' "
                             "(output_len is the length of each greedy continuation)")
        if self.concurrency is not None and len(self.concurrency) != 1:
            raise ValueError("the quality scenario takes one concurrency: the requests it keeps "
                             "in flight")
        if self.num_prompts is not None and self.num_prompts > QUALITY_MAX_PROMPTS:
            raise ValueError(f"the quality scenario takes at most {QUALITY_MAX_PROMPTS} prompts")
        return self


class _SloRules(_Strict):
    """Latency limits in ms at a percentile (any subset) and the least fraction of good requests.

    A request is good when it meets, for each latency named, the limit of the highest percentile
    given for it; ``min_goodput`` is the least fraction of a probe's requests that must be good.
    """

    @model_validator(mode="after")
    def _needs_a_limit(self) -> _SloRules:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("an SLO needs at least one limit such as ttft_ms_p99: 500")
        return self

    def limits(self) -> dict[str, float]:
        """Latency limits by metric name, e.g. ``{"ttft_ms_p99": 500.0}``."""
        return {k: v for k, v in self.model_dump().items()
                if k != "min_goodput" and v is not None}


# One optional limit per latency percentile of the metric catalogue (``ttft_ms_p99: 500``, the
# order of ``SLO_METRICS``), then ``min_goodput``.
Slo = create_model(
    "Slo", __base__=_SloRules, __module__=__name__, __doc__=_SloRules.__doc__,
    **{name: (Positive | None, None) for name in SLO_METRICS},
    min_goodput=(Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None, None))


class Workload(_Strict):
    """Request lengths of the capacity scenario: fixed, uniform around a mean (as ``vllm bench
    serve --random-range-ratio``), or drawn from a file of (input_len, output_len) pairs."""

    input_len: Count = 512
    output_len: Count = 256
    input_range: Annotated[float, Field(ge=0, lt=1)] = 0.0  # uniform in L(1 -+ range)
    output_range: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lengths_file: str | None = None  # CSV or JSON lines, relative to the decision file


PromptMode = Literal["token-ids", "text"]


class BenchmarkSpec(_Strict):
    """What ``launch --bench`` measures on each launched candidate."""

    scenarios: Annotated[list[BenchScenario], Field(min_length=1)] = [
        BenchScenario(scenario="decode"), BenchScenario(scenario="throughput")]
    # Expected relative SD of one launch per metric (or per criterion, its metric in its
    # scenario) on this hardware (restart to restart), e.g. {output_tok_s: 0.25} on a shared CPU;
    # metrics not named use the GPU-measured defaults (docs/metrics.md, "Certainty").
    noise: dict[str, Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]] = {}
    slo: Slo | None = None  # what the capacity scenario must meet
    workload: Workload = Workload()  # request lengths of the capacity scenario
    # how the load scenarios send prompts: random token ids (any model, dummy weights too), or
    # text the server tokenizes (real weights: a real request's tokenizing and its real tokens)
    prompt_mode: PromptMode = "token-ids"


class AuditSpec(_Strict):
    tolerance: NonNegative = 0.05  # points of 100


# A space expands to at most this many configurations unless its ``limit`` says otherwise, and
# never to more than ``MAX_SPACE_LIMIT``: each becomes a candidate that every view, check and
# Monte Carlo draw carries.
DEFAULT_SPACE_LIMIT = 500
MAX_SPACE_LIMIT = 10_000


def _axis_form(value: Any) -> Any:
    # An axis is written as a list of values, or in full as a mapping with ``values``.
    if isinstance(value, list):
        return {"values": value}
    if isinstance(value, dict):
        return value
    raise ValueError("an axis is a list of values, or a mapping with values (a list, or "
                     "names -> values) and optionally name and when")


class SpaceAxis(_Strict):
    """One axis of a space: the values it takes, the short name its part of an id starts with,
    and the values of other axes it applies under (``model.space`` reads them)."""

    values: list[Any] | dict[str, Any]  # a list, or short names -> values
    name: str | None = None  # the id part's prefix: tp in tp2; "" for the value alone
    when: dict[str, Any] = {}  # axis -> value (or list of values) this axis applies under


class SpaceBase(_Strict):
    """What every configuration of a space starts from: a candidate without an id."""

    stack: Stack = Stack()
    model: CandidateModel | None = None
    engine: dict[str, Any] = {}
    env: dict[str, str] = {}
    scores: dict[str, FiniteFloat] = {}  # judged scores shared by every configuration, or none
    uncertainty: dict[str, NonNegative] = {}
    notes: str | None = None


class Space(_Strict):
    """Configurations as axes over a base: engine keys, env vars, stack pins and the hardware,
    with exclusions and conditions; ``model.space`` expands it to candidates."""

    base: SpaceBase = SpaceBase()
    axes: Annotated[dict[str, Annotated[SpaceAxis, BeforeValidator(_axis_form)]],
                    Field(min_length=1)]
    exclude: list[dict[str, Any]] = []  # combinations never generated: axis -> value(s)
    limit: Annotated[int, Field(ge=1, le=MAX_SPACE_LIMIT)] = DEFAULT_SPACE_LIMIT
    prefix: Identifier | None = None  # every configuration's id starts with it


class DecisionFile(_Strict):
    schema_: Literal["stackdecide/v1"] = Field(alias="schema")
    decision: DecisionMeta
    criteria: Annotated[list[Criterion], Field(min_length=1)]
    candidates: Annotated[list[Candidate], Field(min_length=1)]
    space: Space | None = None  # more candidates, generated (model.space)
    constraints: list[str] = []
    weighting: Weighting = Weighting()
    sensitivity: SensitivitySpec = SensitivitySpec()
    benchmark: BenchmarkSpec = BenchmarkSpec()
    audit: AuditSpec = AuditSpec()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_extension_keys(cls, value: Any) -> Any:
        # Top-level keys starting with "x-" are free-form, e.g. to hold YAML anchors.
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if not str(k).startswith("x-")}
        return value
