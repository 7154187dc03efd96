"""Evidence: measurements with provenance, stored in SQLite, mapped into criterion scores.

>>> import stackdecide
>>> from stackdecide.evidence import EvidenceRecord, EvidenceStore, HardwareInfo
>>> from stackdecide.evidence import default_evidence_path, load_evidence
>>> path = default_evidence_path("criteria/rtx4090.yaml")
>>> with EvidenceStore(path) as store:
...     ids = store.add([EvidenceRecord(
...         candidate="vllm-cuda-torch271", metric="decode_tok_s", value=131.0,
...         hardware=HardwareInfo(gpu="NVIDIA GeForce RTX 4090 Laptop GPU"),
...         software={"vllm": "0.10.1.1", "torch": "2.7.1", "cuda": "12.8"})])
>>> ranking = stackdecide.load("criteria/rtx4090.yaml").score(evidence=load_evidence(path))
"""

from stackdecide.evidence.apply import AppliedEvidence, apply_evidence, gpu_matches
from stackdecide.evidence.importers import ImportResult, RunContext, read_evidence_file
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.evidence.store import EvidenceStore, default_evidence_path, load_evidence
from stackdecide.model.metrics import METRICS, Metric

__all__ = [
    "METRICS",
    "AppliedEvidence",
    "EvidenceRecord",
    "EvidenceSet",
    "EvidenceStore",
    "HardwareInfo",
    "ImportResult",
    "Metric",
    "RunContext",
    "apply_evidence",
    "default_evidence_path",
    "gpu_matches",
    "load_evidence",
    "read_evidence_file",
]
