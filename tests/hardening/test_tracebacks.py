"""Finding 4: hostile numbers and options end in exit 2 with a located message, never a traceback,
and no ranking rests on NaN.

Each input below ended in a Python traceback (or, for the scales near float's limit, in a NaN total
declared the winner and printed as ``NaN``, which is not JSON) before this suite was written.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide.errors import StackdecideError
from stackdecide.launch import preflight
from stackdecide.scoring import score

from .conftest import cli, decision_text, refused, vllm_result


def _decision(tmp_path: Path, normalize: bool = False, **numbers: str) -> Path:
    text = decision_text(**numbers)
    if normalize:
        text = text.replace("  title: Hardening\n", "  title: Hardening\n  normalize_weights: true\n")
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("numbers", "where", "expected"), [
    ({"w1": "1e308", "w2": "1e308"}, ":6:25", "criteria[0].weight: weight 1e+308 is outside"),
    ({"w1": "1e308", "w2": "1e-308"}, ":6:25", "criteria[0].weight: weight 1e+308 is outside"),
    ({"w1": "0.5", "w2": "1e-300"}, ":7:29", "criteria[1].weight: weight 1e-300 is outside"),
    ({"w1": "9" * 400, "w2": "1"}, ":6:25", "criteria[0].weight: 999"),
    ({"scale": "[-1e308, 1e308]"}, ":6:", "criteria[0].scale.low: '-1e308': beyond ±1e+12"),
    ({"scale": "[0, 1.7e308]", "s1": "1.7e308"}, ":6:", "criteria[0].scale.high"),
    ({"scale": f"[0, {'9' * 5000}]"}, ":6:", "cannot be read as a number"),
    ({"s1": "9" * 400}, ":10:", "candidates[0].scores.speed: 999"),
])
def test_numbers_float_cannot_normalise_are_refused_where_they_are_written(
        tmp_path: Path, numbers: dict[str, str], where: str, expected: str) -> None:
    path = _decision(tmp_path, normalize=True, **numbers)
    message = refused(["score", str(path)], f"{path}{where}", expected)
    assert "Traceback" not in message


@pytest.mark.parametrize("method", ["wsm", "wpm", "topsis"])
def test_the_largest_numbers_allowed_still_rank_on_finite_totals(tmp_path: Path,
                                                                 method: str) -> None:
    path = _decision(tmp_path, normalize=True, w1="1e12", w2="1e-12", scale="[-1e12, 1e12]",
                     s1="1e12", s2="-1e12")
    result = cli(["score", str(path), "--method", method, "--format", "json"])
    assert result.exit_code == 0, result.stderr

    def no_constants(name: str) -> float:
        raise AssertionError(f"{name} in JSON output")

    data = json.loads(result.stdout, parse_constant=no_constants)
    assert data["winner"] in ("a", "b")
    assert all(math.isfinite(c["total"]) for c in data["candidates"])


def test_a_nan_total_is_refused_rather_than_declared_the_winner(tmp_path: Path) -> None:
    """The loader makes NaN unreachable; should any path miss, scoring refuses to rank."""
    decision = stackdecide.load(_decision(tmp_path))
    broken = replace(decision, matrix=np.array([[math.nan, 9.0], [9.0, 5.0]]))
    with pytest.raises(StackdecideError, match="totals of a are not finite numbers"):
        score(broken)


def _write_json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ('{"candidate": "a", "metric": "decode_tok_s", "value": ' + "9" * 400 + "}",
     "in.json:1 value: 999999999999... (a 400-digit number)"),
    ('{"candidate": "a", "metric": "decode_tok_s", "value": ' + "1" * 5000 + "}",
     "in.json:1 value: 111111111111... (a 5000-digit number)"),
    ("[" * 200_000 + "]" * 200_000, "in.json: JSON nested too deeply"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "in.json: JSON nested too deeply"),
])
def test_hostile_json_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = _write_json(tmp_path, text)
    refused(["evidence", "import", str(path), "--evidence", str(tmp_path / "e.db")], expected)


@pytest.mark.parametrize("key", ["completed", "mean_itl_ms", "output_throughput", "num_prompts"])
def test_a_400_digit_number_in_a_vllm_result_is_refused_naming_its_key(tmp_path: Path,
                                                                       key: str) -> None:
    text = json.dumps(vllm_result(**{key: 7})).replace(f'"{key}": 7', f'"{key}": {"9" * 400}')
    path = _write_json(tmp_path, text)
    refused(["evidence", "import", str(path), "--candidate", "a", "--evidence",
             str(tmp_path / "e.db")], f"in.json:1 {key}: 999999999999... (a 400-digit number)")


@pytest.mark.parametrize(("options", "expected"), [
    (["--gpu", "g", "--vram-gb", "-1"], "hardware.vram_gb: -1.0"),
    (["--gpu", "g", "--vram-gb", "nan"], "hardware.vram_gb: nan"),
    (["--gpu", "g", "--vram-gb", "1e400"], "hardware.vram_gb: inf"),
    (["--gpu", "g", "--vram-gb", "1e13"], "hardware.vram_gb"),
    (["--gpu", ""], "hardware.gpu"),
    (["--repeats", "99999999999999999999999"], "repeats"),
    (["--spread", "1e400"], "spread"),
])
def test_out_of_range_options_of_evidence_add_are_refused(tmp_path: Path, options: list[str],
                                                          expected: str) -> None:
    refused(["evidence", "add", "--evidence", str(tmp_path / "e.db"), "--candidate", "a",
             "--metric", "decode_tok_s", "--value", "5", *options], expected)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
    ("http://[zz]:80", "is not a valid URL"),
    ("http://" + "a" * 300, "host name that is not valid"),
    ("http://host:99999", "Port out of range"),
    ("http://host:-1", "is not a valid URL"),
    ("http://a b:8000", "spaces or control characters"),
    ("http://127.0.0.1:0", "port 0"),
    ("http://@:80", "names no host"),
])
def test_a_malformed_bench_url_is_refused_before_any_connection(url: str, expected: str) -> None:
    refused(["bench", "--url", url, "--no-progress"], "--url", expected)


@pytest.mark.parametrize(("options", "expected"), [
    (["--metrics-interval", "nan"], "metrics interval"),
    (["--stall-timeout", "inf"], "stall timeout"),
    (["--seed", "-1"], "--seed must be at least 0"),
    (["--num-prompts", "99999999999999999999"], "--num-prompts must be at most"),
    (["--concurrency", "1,999999999"], "--concurrency must be at most"),
])
def test_bench_options_beyond_what_a_run_can_hold_are_refused(options: list[str],
                                                              expected: str) -> None:
    refused(["bench", "--url", "http://127.0.0.1:9", "--no-progress", *options], expected)


@pytest.mark.parametrize("host", ["bad host", "999.1.1.1", "::1::", "a" * 70 + ".invalid",
                                  "a" * 300, "x\x00y", "10.255.255.254"])
def test_an_odd_host_is_a_launch_problem_not_a_traceback(host: str) -> None:
    """``launch`` preflights the bind address through ``port_state`` and ``check_port``."""
    problems = preflight.check_port(preflight.port_state(host, 8000))
    assert [p.code for p in problems if p.severity == "error"] == ["bad-host"], problems
    assert problems[0].field == "--host"


def test_unwritable_outputs_are_errors(tmp_path: Path) -> None:
    store = tmp_path / "e.db"
    assert cli(["evidence", "add", "--evidence", str(store), "--candidate", "a", "--metric",
                "decode_tok_s", "--value", "5"]).exit_code == 0
    refused(["evidence", "export", "--evidence", str(store), "-o", str(tmp_path / "no" / "x.json")],
            "cannot write", "No such file or directory")


def test_a_folder_that_cannot_hold_state_does_not_fail_the_ranking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("stackdecide.cli.score.record_last_decision", read_only)
    result = cli(["score", str(_decision(tmp_path))])
    assert result.exit_code == 0 and "winner" in result.stdout
    assert "cannot remember" in result.stderr
