"""benchmarks/race_sim.py: the race itself (``search.search``, its scoring and predictions) over a
committed Hopper space, its launches drawn around a truth made of the H100 race's measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from race_sim import one_race
from stackdecide.evidence.records import EvidenceSet
from stackdecide.search import Calibrations, calibrations_from

ROOT = Path(__file__).parents[2]
RACE = ROOT / "docs" / "results" / "h100-space" / "fifth-race"


def truth_and_calibration() -> tuple[tuple[stackdecide.Decision, EvidenceSet], Calibrations]:
    (truth,) = calibrations_from([f"{RACE / 'hopper-space.yaml'}={RACE / 'space.db'}"])
    also = calibrations_from([f"{ROOT / 'criteria' / 'hopper.yaml'}="
                              f"{ROOT / 'docs' / 'results' / 'hopper-h200' / 'evidence.db'}"])
    return truth, also


def on_the_h100(name: str, tmp_path: Path) -> stackdecide.Decision:
    """A criteria/ decision pointed at the H100 the truth was measured on (as
    scripts/validate-hopper.sh prepare writes it)."""
    text = (ROOT / "criteria" / name).read_text()
    for key, value in (("gpu", "NVIDIA H100 80GB HBM3"), ("vram_gb", "80"),
                       ("memory_bandwidth_gb_s", "3350")):
        text = "\n".join(f"    {key}: {value}" if line.startswith(f"    {key}: ") else line
                         for line in text.splitlines())
    path = tmp_path / name
    path.write_text(text + "\n")
    return stackdecide.load(path)


@pytest.mark.slow
def test_the_knobs_space_is_answered_without_launching_what_holds_back_the_streams(
        tmp_path: Path) -> None:
    """criteria/hopper-knobs.yaml on the H100: 24 configurations, four weight x KV-cache families
    whose max_num_seqs of 64 and up are twins, and 8 with max_num_seqs 16 or 32 predicted far
    below. The race launches one configuration of each family and the leader's second, never a
    16 or 32, and its choice is truly within 5 points of the best."""
    truth, also = truth_and_calibration()
    race = one_race(on_the_h100("hopper-knobs.yaml", tmp_path), truth, also, seed=0,
                    residual=0.04, tolerance=5.0, max_launches=14, race_seed=7, samples=4000)
    assert race["verdict"] == "certified" and race["within"]
    order = race["order"]
    assert race["launches"] <= 6 and len(set(order)) == race["launches"] - 1
    assert {name.rsplit("-", 1)[0] for name in order} == \
        {"bf16-kv-auto", "bf16-kv-fp8", "fp8-kv-auto", "fp8-kv-fp8"}
    assert not any(name.endswith(("-seqs16", "-seqs32")) for name in order)


@pytest.mark.slow
def test_the_backend_space_launches_each_of_its_eight_families(tmp_path: Path) -> None:
    """The fifth race's space on the same truth: its 24 single-GPU configurations are eight weight
    x backend x KV-cache families, all within 7.5 points of each other on the H100, so the race
    launches one of each before the leader's second launch: at least nine (the live race took
    nine)."""
    truth, also = truth_and_calibration()
    race = one_race(stackdecide.load(RACE / "hopper-space.yaml"), truth, also, seed=0,
                    residual=0.04, tolerance=5.0, max_launches=14, race_seed=7, samples=4000)
    assert race["verdict"] == "certified" and race["within"]
    assert race["launches"] >= 9 and race["configurations"] == 8
    families = {name.rsplit("-", 1)[0] for name in race["order"]}
    assert len(families) == 8
