"""Latency against throughput from stored capacity probes, with the SLO and the capacity point.

Every search (one candidate, one run, one SLO) becomes one curve per latency the SLO limits: each
probe's percentile (y) against its completed requests per second (x), passing probes filled,
failing ones hollow, the limit as a dashed line and the capacity as a vertical line at
``capacity_req_s``. Built from evidence records alone, so imported and measured searches look the
same.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stackdecide.evidence.records import EvidenceRecord
from stackdecide.report import charts
from stackdecide.report.html_kit import esc, figure, section, table

MAX_CURVES = 12  # searches drawn; the table lists all
_LIMIT = re.compile(r"^([a-z0-9]+_ms_p[0-9]+)<=([0-9.eE+-]+)$")


@dataclass
class Probe:
    index: int
    load: float = 0.0  # the probe's concurrency or request rate
    request_per_s: float | None = None
    latencies_ms: dict[str, float] = field(default_factory=dict)
    passed: bool | None = None


@dataclass
class CapacityCurve:
    candidate: str
    source: str
    slo: str
    limits: dict[str, float]
    probes: list[Probe]
    capacity_req_s: float | None = None
    capacity_concurrency: float | None = None
    cost_per_mtok_out: float | None = None
    note: str = ""


def slo_limits(text: str) -> dict[str, float]:
    """``ttft_ms_p99<=1000,tpot_ms_p99<=50`` -> {"ttft_ms_p99": 1000.0, ...} (goodput left out)."""
    limits = {}
    for part in text.split(","):
        match = _LIMIT.match(part.strip())
        if match:
            limits[match.group(1)] = float(match.group(2))
    return limits


def capacity_curves(records: Iterable[EvidenceRecord]) -> list[CapacityCurve]:
    """The searches in ``records``, in the order their first record appears."""
    curves: dict[tuple[str, str, str, str], CapacityCurve] = {}
    probes: dict[tuple[str, str, str, str], dict[int, Probe]] = defaultdict(dict)
    for r in records:
        sc = r.scenario
        if sc.get("scenario") != "capacity" or not isinstance(sc.get("slo"), str):
            continue
        key = (r.candidate, r.source or "", str(sc["slo"]), str(sc.get("seed", "")))
        curve = curves.setdefault(key, CapacityCurve(r.candidate, r.source or "", str(sc["slo"]),
                                                     slo_limits(str(sc["slo"])), []))
        if "probe" in sc:
            probe = probes[key].setdefault(int(sc["probe"]), Probe(int(sc["probe"])))
            probe.passed = bool(sc.get("passed"))
            load = sc.get("request_rate", sc.get("concurrency"))
            probe.load = float(load) if isinstance(load, int | float) else 0.0
            if r.metric == "request_per_s":
                probe.request_per_s = r.value
            elif r.metric in curve.limits:
                probe.latencies_ms[r.metric] = r.value
        elif r.metric in ("capacity_req_s", "capacity_concurrency", "cost_per_mtok_out"):
            setattr(curve, r.metric, r.value)
            if r.metric == "capacity_req_s":
                curve.note = r.note or ""
    for key, curve in curves.items():
        curve.probes = [probes[key][i] for i in sorted(probes[key])]
    return [c for c in curves.values() if c.probes]


def capacity_chart(curve: CapacityCurve, name: str) -> str:
    """One panel per limited latency: the probes, the SLO line and the capacity."""
    metrics = sorted(curve.limits)
    with charts._figure(name, 3.0) as fig:
        axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=False):
            # joined in the order of the load: past saturation throughput falls as latency rises
            points = [(p.request_per_s, p.latencies_ms[metric], p.passed)
                      for p in sorted(curve.probes, key=lambda p: p.load)
                      if p.request_per_s is not None and metric in p.latencies_ms]
            ax.plot([x for x, _, _ in points], [y for _, y, _ in points], color=charts.MUTED,
                    linewidth=1, zorder=2)
            for x, y, passed in points:
                ax.scatter([x], [y], s=28, zorder=3, color=charts.ACCENT if passed else "white",
                           edgecolors=charts.ACCENT if passed else "#b42318", linewidths=1.2)
            ax.axhline(curve.limits[metric], color="#b42318", linestyle="--", linewidth=1)
            ax.text(0.01, curve.limits[metric], f" SLO {curve.limits[metric]:g} ms",
                    transform=ax.get_yaxis_transform(), va="bottom", fontsize=8,
                    color="#b42318")
            if curve.capacity_req_s is not None:
                ax.axvline(curve.capacity_req_s, color=charts.INK, linewidth=1)
                ax.text(curve.capacity_req_s, 0.6, f"capacity {curve.capacity_req_s:.3g} req/s ",
                        transform=ax.get_xaxis_transform(), va="center", ha="right", fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0}, zorder=4)
            ax.set_xlabel("completed requests / s")
            ax.set_ylabel(f"{metric} (ms)")
            ax.grid(color=charts.GRID, linewidth=0.6)
        fig.suptitle(charts.plain(f"{curve.candidate} · {curve.slo}", 90), fontsize=10)
        return charts._svg(fig, name)


def capacity_section(records: Sequence[EvidenceRecord]) -> str | None:
    """The report's capacity section, or None when the evidence holds no capacity search."""
    curves = capacity_curves(records)
    if not curves:
        return None
    parts = []
    for i, curve in enumerate(curves[:MAX_CURVES]):
        parts.append(figure(f"capacity-{i}", capacity_chart(curve, f"capacity-{i}"),
                            f"{curve.candidate}: {len(curve.probes)} probes "
                            f"({curve.source or 'unknown source'}); {curve.note}"))
    rows = [[esc(c.candidate), esc(c.slo), "–" if c.capacity_req_s is None
             else f"{c.capacity_req_s:,.3f}",
             "–" if c.capacity_concurrency is None else f"{c.capacity_concurrency:g}",
             "–" if c.cost_per_mtok_out is None else f"{c.cost_per_mtok_out:,.4g}",
             str(len(c.probes)), esc(c.note or "–")] for c in curves]
    parts.append(table(["candidate", "SLO", "capacity req/s", "capacity concurrency",
                        "cost per Mtok out", "probes", "search"], rows, "num"))
    lead = ("The highest load whose measured percentiles met the SLO, from the stored probes: "
            "filled points passed, hollow ones failed (a limit, failed requests, preemptions or "
            "saturation); the search's precision is the bracket's width.")
    return section("capacity", "Capacity under the SLO", "".join(parts), lead)
