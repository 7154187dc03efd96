"""Prediction before launching: each candidate's measured criteria, predicted with an interval.

Roofline ceilings from ``facts`` (``predict.ceilings``) times an efficiency per metric, calibrated
by the launches in the evidence, pooled over configurations that share axes
(``predict.observations``, ``predict.configuration``, the model in ``certify.efficiency`` with the
priors of ``predict.priors``), and by judged scores where given (``predict.predictions``).
docs/prediction.md states the model and its measured coverage.

>>> import stackdecide
>>> from stackdecide.evidence import EvidenceSet
>>> from stackdecide.predict import Load, calibration, predict
>>> decision = stackdecide.load("criteria/hopper.yaml")
>>> loads = {"decode": Load(1, 128, 256), "prefill": Load(1, 4096, 1),
...          "throughput": Load(1, 512, 256)}
>>> prediction = predict(decision, calibration(decision, EvidenceSet()), loads)
>>> cell = prediction.get("bf16-flash-attn", "decode_speed")
>>> cell.source, cell.low < cell.value < cell.high <= cell.ceiling.value
('predicted', True)
"""

from stackdecide.predict.ceilings import Ceiling, Load, ServingSetup, metric_ceiling
from stackdecide.predict.configuration import AXES, Configuration, configuration
from stackdecide.predict.observations import (
    PREDICTED_METRICS,
    Calibration,
    Observation,
    calibration,
    merge,
)
from stackdecide.predict.predictions import (
    DEFAULT_LEVEL,
    Predicted,
    Prediction,
    Unpredicted,
    criterion_load,
    fit_metric,
    judged_value,
    predict,
)

__all__ = [
    "AXES",
    "DEFAULT_LEVEL",
    "PREDICTED_METRICS",
    "Calibration",
    "Ceiling",
    "Configuration",
    "Load",
    "Observation",
    "Predicted",
    "Prediction",
    "ServingSetup",
    "Unpredicted",
    "calibration",
    "configuration",
    "criterion_load",
    "fit_metric",
    "judged_value",
    "merge",
    "metric_ceiling",
    "predict",
]
