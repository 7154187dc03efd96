"""`stackdecide probe` on this machine: no GPU is a CPU-only report, not an error."""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path

from click.testing import CliRunner

from engine_support import vllm_installed
from stackdecide.cli import main
from stackdecide.facts.pins import VLLM_DISTRIBUTIONS
from stackdecide.vllm import _introspect, probe


def test_gpus_without_nvml_or_driver_are_reported_not_raised() -> None:
    report = probe.probe_gpus()
    if report.gpus:  # a machine with a GPU: every field is read
        gpu = report.gpus[0]
        assert gpu.total_bytes > 0 and 0 <= gpu.free_fraction <= 1 and gpu.compute_capability
        assert report.driver
    else:
        assert report.unavailable  # why: nvidia-ml-py missing, or NVML without a driver
        bindings = find_spec("pynvml") is not None or vllm_installed()  # vLLM ships a copy
        expected = "NVML" if bindings else "nvidia-ml-py is not installed"
        assert expected in report.unavailable


def test_runtime_versions_come_from_the_interpreter_that_runs_vllm() -> None:
    runtime = probe.probe_runtime(sys.executable)
    assert runtime.error is None
    assert runtime.python_version == ".".join(map(str, sys.version_info[:3]))
    assert (runtime.torch is not None) == (find_spec("torch") is not None)
    if vllm_installed():
        import vllm

        assert runtime.vllm == vllm.__version__
        assert runtime.vllm_location == str(Path(vllm.__file__).parent)


def test_the_introspection_script_knows_the_same_vllm_distributions() -> None:
    # it runs in the engine's interpreter and imports nothing from stackdecide, so the list is
    # written out there; this keeps the two the same
    assert _introspect.DISTRIBUTIONS["vllm"] == VLLM_DISTRIBUTIONS


def test_an_interpreter_that_cannot_answer_is_an_error_field(tmp_path: Path) -> None:
    runtime = probe.probe_runtime(str(tmp_path / "no-python"))
    assert runtime.vllm is None and "no interpreter" in (runtime.error or "")


def test_cli_probe_table_and_json() -> None:
    runner = CliRunner()
    table = runner.invoke(main, ["probe", "--python", sys.executable])
    assert table.exit_code == 0, table.output
    assert "python (runs vLLM)" in table.output and sys.executable in table.output
    data = json.loads(runner.invoke(main, ["probe", "--format", "json"]).output)
    assert set(data) >= {"gpu", "runtime", "cpu", "cpu_only", "notes"}
    assert data["cpu"]["logical_cores"] >= 1
    if data["cpu_only"]:
        assert any(note.startswith("CPU only") for note in data["notes"])


def test_probe_table_of_a_gpu_machine() -> None:
    from stackdecide.cli.probe import render_probe

    gib = 2**30
    result = probe.ProbeResult(
        probe.GpuReport((probe.GpuInfo(0, "NVIDIA H100 80GB HBM3", 80 * gib, 20 * gib, "9.0",
                                       (probe.GpuProcess(642, 60 * gib, "python3 -m vllm"),)),),
                        driver="580.159.04", cuda_driver="13.0"),
        probe.RuntimeVersions(python="/opt/venv/bin/python3", python_version="3.12.3",
                              vllm="0.26.0", vllm_distribution="vllm", torch="2.11.0",
                              torch_cuda="13.0", flashinfer="0.6.14"),
        probe.CpuInfo("Intel(R) Xeon(R) Processor", 16, 128 * gib))
    text = render_probe(result)
    row = next(line for line in text.splitlines() if "H100" in line)
    assert " 9.0 " in row and "20.00 GiB (25%)" in row and "642 (60.00 GiB)" in row
    assert "2.11.0, CUDA runtime 13.0" in text and "580.159.04" in text
    assert not result.cpu_only and result.to_dict()["cpu_only"] is False


def test_a_backend_s_kv_cache_dtypes_include_what_it_says_yes_to_beyond_its_list() -> None:
    # vLLM 0.26's FlashAttentionBackend on a Hopper GPU: the list leaves fp8 out, the classmethod
    # accepts it (FA3); fp8_e5m2 is refused by both
    class FlashAttention:
        supported_kv_cache_dtypes = ("auto", "float16", "bfloat16")

        @classmethod
        def supports_kv_cache_dtype(cls, kv_cache_dtype: str) -> bool:
            if kv_cache_dtype == "fp8_inc":
                raise ValueError("unknown dtype")
            return kv_cache_dtype in cls.supported_kv_cache_dtypes or kv_cache_dtype in ("fp8", "fp8_e4m3")

    class ListOnly:
        supported_kv_cache_dtypes = ("auto", "fp8")

    assert _introspect._kv_cache_dtypes(FlashAttention) == ["auto", "float16", "bfloat16", "fp8", "fp8_e4m3"]
    assert _introspect._kv_cache_dtypes(ListOnly) == ["auto", "fp8"]
