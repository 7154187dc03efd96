"""What prediction believes before the evidence: each metric's level, how far each axis moves it,
and how reliable a judged score is.

**Levels** (``PRIOR_LEVEL``): the mean over configurations of ``log(value / ceiling)`` in the
committed Hopper evidence (docs/results: one H200, Qwen3-4B in BF16 and FP8, vLLM 0.25.1 and
0.26.0, 7 configurations, 24 launches, 132 launch values; ``benchmarks/prediction_coverage.py``
prints them and tests/predict checks these numbers against that evidence). A decode stream
reached 39% of its roofline, a 4,096-token prefill 40%, output throughput 36% (one stream to 256
streams), and a start-up took 202 s (the geometric mean). The SD of a level (``PRIOR_SD``) is the
uncertainty of that mean itself: configurations were 0.3 apart (start-up 0.43), which over 7 of
them is 0.11 (0.16), rounded up to 0.15 (0.2). How far another GPU or model sits from it is the
``gpu`` and ``model`` widths below. With no evidence at
all, every width adds up: the 80% interval of a Hopper decode spans 13% to 100% of the roofline.

**Widths** (``TERM_WIDTHS``, log units: 0.3 is about a third either way, at one SD): how far one
level of an axis may move a metric, set from what the Hopper measurements and the rooflines'
docs show, not fitted: FP8 weights moved decode from 47% to 27% of a roofline that FP8 itself
raised (0.3 for ``weights``); H100 and H200 ran BF16 decode at 55% and 46% of theirs (0.3 for
``gpu``); a model of another size leaves the GPU more or less idle between kernels (0.4 for
``model``); attention backends and the KV-cache dtype moved decode by up to 10% (0.15); a
parallel layout moves all of it (0.25); a vLLM release within a few of another, little (0.1);
the configuration as a whole, for what no axis names, 0.1. The load (concurrency and lengths)
moves a throughput's share of its roofline (0.25) and moves configurations differently (0.15 for
a configuration at a load), and whether a start compiled or read its caches moves start-up by up
to 2x (0.4). The evidence scales all widths by one multiplier (``certify.efficiency``); the
committed Hopper evidence puts it at 0.66-0.68 for the rates, 1.05 for start-up.

**Without a roofline** (the CPU engine, a GPU without tensor peaks, a model without a shape) a
rate is read against ``NO_ROOFLINE_REFERENCE`` (100 tok/s) instead of its ceiling, and the term
``roofline`` (level ``none``) carries how far such a configuration sits from what the priors
above say of a roofline's share: ``NO_ROOFLINE_WIDTH`` (2.5, a factor of 12 either way at one SD),
so before its first launch the value is known to no better than two orders of magnitude, and every
launch without a roofline sets it for all the others.

**A space's axes** (``axis:KEY`` levels, ``predict.configuration``) each move a metric by
``SPACE_AXIS_WIDTH`` (0.2 at one SD, a fifth either way): a knob of the engine (batch limits,
prefix caching, chunked prefill, the dtype) moves a rate by up to a few tens of %, more than an
attention backend moved Hopper decode; and it moves it again, by as much, at each load (``@
load``): ``max_num_seqs`` 1 serialises four streams and leaves one alone. The evidence scales
them with the other widths. A scheduler limit (``max_num_seqs``, ``max_num_batched_tokens``)
has a level only at the loads it binds at (``observations.with_load``).

**Launch noise** is ``certify.uncertainty``'s prior of a launch's relative SD, at its strength
(decode 3% over 3.6 degrees of freedom, prefill 6% and throughput 5% over 20, start-up 15% over
2): the restart-to-restart noise every certificate of a ranking assumes.

**Judged scores** (``JUDGED_SD``): a judged score read back into its metric
(``predictions.judged_value``) is taken to be off by ``JUDGED_SD`` (log units, one SD). In the
committed Hopper decisions judged values read that way were off by 0.14 for the rates (relative
to the other candidates, 18 degrees of freedom) and 0.49 for start-up (absolute, 9); the widths
are the upper 90% confidence bounds of those: 0.18 and 0.72. Absolute judgements of one criterion
share half their error (``JUDGED_SHARED``; 0.49 measured, between the three decisions against
within them): a judge who expects slow start-ups expects them of every candidate, so many
judged start-ups say little more about the common level than one does.
"""

from __future__ import annotations

from stackdecide.certify.efficiency import EfficiencyPrior, Term
from stackdecide.certify.uncertainty import prior_rel_sd_for, prior_strength_for

PRIOR_LEVEL = {"decode_tok_s": -0.95, "prefill_tok_s": -0.92, "output_tok_s": -1.02,
               "startup_s": 5.31}
PRIOR_SD = {"decode_tok_s": 0.15, "prefill_tok_s": 0.15, "output_tok_s": 0.15, "startup_s": 0.2}
TERM_WIDTHS = {"gpu": 0.3, "model": 0.4, "weights": 0.3, "kv_cache_dtype": 0.15,
               "attention_backend": 0.15, "layout": 0.25, "vllm": 0.1, "config": 0.1,
               "load": 0.25, "config_load": 0.15, "start": 0.4}
AXIS_TERMS = ("gpu", "model", "weights", "kv_cache_dtype", "attention_backend", "layout", "vllm",
              "config")
RATE_TERMS = (*AXIS_TERMS, "load", "config_load")
STARTUP_TERMS = (*AXIS_TERMS, "start")
NO_ROOFLINE_REFERENCE = 100.0  # tok/s: a rate's reference where it has no roofline
NO_ROOFLINE_WIDTH = 2.5
SPACE_AXIS_WIDTH = 0.2
JUDGED_SHARED = 0.5
JUDGED_SD = {"decode_tok_s": 0.18, "prefill_tok_s": 0.18, "output_tok_s": 0.18, "startup_s": 0.72}


def at_load(axis: str) -> str:
    """The name of a space axis's level at a load (``axis:engine.max_num_seqs @ load``)."""
    return f"{axis} @ load"


def prior_for(metric: str, space_axes: tuple[str, ...] = ()) -> EfficiencyPrior:
    """The prior of one predicted metric (module doc), with a term per level a space adds."""
    terms = [Term(name, TERM_WIDTHS[name])
             for name in (STARTUP_TERMS if metric == "startup_s" else RATE_TERMS)]
    terms += [Term(axis, SPACE_AXIS_WIDTH) for axis in space_axes]
    if metric != "startup_s":
        terms.append(Term("roofline", NO_ROOFLINE_WIDTH))
        terms += [Term(at_load(axis), SPACE_AXIS_WIDTH) for axis in space_axes]
    return EfficiencyPrior(PRIOR_LEVEL[metric], PRIOR_SD[metric], tuple(terms),
                           prior_rel_sd_for(metric), prior_strength_for(metric))
