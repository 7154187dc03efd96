"""A warm start is shown next to the cold start that filled the compile cache it loaded from."""

from __future__ import annotations

from pathlib import Path

from stackdecide.launch.runs import LaunchOutcome, cold_start_of

CACHE = "/root/.cache/vllm/torch_compile_cache/torch_aot_compile/47d9"
CONFIG = "a" * 64


def _run(folder: Path, name: str, state: str, startup_s: float | None = 30.0, *,
         ok: bool = True, config: str = CONFIG, cache: str | None = CACHE,
         started_at: str = "2026-12-06T07:40:20Z") -> LaunchOutcome:
    outcome = LaunchOutcome(ok=ok, candidate_id="cpu-bf16", decision_file=None,
                            engine_sha256=config, run_dir=str(folder / name), startup_s=startup_s,
                            compile_cache=state, compile_cache_dir=cache, started_at=started_at)
    (folder / name).mkdir()
    outcome.write()
    return outcome


def test_a_warm_start_finds_the_latest_cold_start_of_its_configuration(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "1", "cold", 33.5, started_at="2026-12-06T07:40:20Z"),
            _run(tmp_path, "2", "cold", 35.0, started_at="2026-12-06T07:50:00Z"),
            _run(tmp_path, "3", "warm", 12.0)]
    folders = [Path(r.run_dir) for r in runs]
    assert cold_start_of(runs[2], folders) == {"startup_s": 35.0, "run_dir": str(folders[1])}
    assert cold_start_of(runs[1], folders) is None  # a cold start is not compared with itself


def test_only_the_same_configuration_and_compile_cache_count(tmp_path: Path) -> None:
    others = [_run(tmp_path, "other-config", "cold", config="b" * 64),
              _run(tmp_path, "other-cache", "cold", cache=CACHE + "-elsewhere"),
              _run(tmp_path, "failed", "cold", ok=False),
              _run(tmp_path, "warm-too", "warm", 11.0)]
    warm = _run(tmp_path, "warm", "warm", 12.0)
    folders = [Path(r.run_dir) for r in others] + [tmp_path / "missing"]
    assert cold_start_of(warm, folders) is None
    nameless = _run(tmp_path, "no-cache-named", "warm", 12.0, cache=None)
    assert cold_start_of(nameless, [Path(others[0].run_dir)]) is None


def test_a_launch_says_how_it_started(tmp_path: Path) -> None:
    warm = _run(tmp_path, "warm", "warm", 12.0)
    assert warm.start == "warm start"
    assert _run(tmp_path, "cold", "cold").start == "cold start"
    assert LaunchOutcome(ok=True, candidate_id="x", decision_file=None, engine_sha256=CONFIG,
                         run_dir="r").start == "unknown start"
    known = LaunchOutcome(**{**warm.__dict__, "cold_start": {"startup_s": 33.46, "run_dir": "r"}})
    assert known.start == "warm start; cold start here 33.5 s"
    assert known.to_dict()["cold_start"] == {"startup_s": 33.46, "run_dir": "r"}
    failed = LaunchOutcome(**{**warm.__dict__, "compile_cache": "cold",
                              "compile_cache_error": "'function' object has no attribute 'x'"})
    assert failed.start == "cold start; vLLM could not load its cached graphs: 'function' object " \
        "has no attribute 'x'"
