"""Which GPUs a launch uses, how they are linked, and the multicast switches that must stay off."""

from __future__ import annotations

import stackdecide
from stackdecide.audit import engine_config
from stackdecide.audit.engine_config import TargetHardware, model_facts
from stackdecide.launch import gpus
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.model.schema import ModelSpec
from stackdecide.vllm.probe import GpuInfo, GpuLink, GpuReport, RuntimeVersions, link_kind

GIB = 2**30
H200 = [GpuInfo(i, "NVIDIA H200", 140 * GIB, 139 * GIB, "9.0") for i in range(4)]
NVLINK = tuple(GpuLink(a, b, "nvlink", "across NUMA nodes") for a in range(4)
               for b in range(a + 1, 4))
FOUR = GpuReport(tuple(H200), "580", "13.0", links=NVLINK)


def test_selected_gpus_come_from_the_scheduler_then_the_environment() -> None:
    assert gpus.select_gpus(FOUR, (2, 3), {"CUDA_VISIBLE_DEVICES": "0"}) == gpus.GpuSelection(
        (2, 3), "placed by the scheduler")
    assert gpus.select_gpus(FOUR, None, {"CUDA_VISIBLE_DEVICES": "1,3"}).indices == (1, 3)
    assert gpus.select_gpus(FOUR, None, {}) == gpus.GpuSelection((0, 1, 2, 3), "every GPU")
    assert gpus.select_gpus(FOUR, (2, 3), {}).visible_devices == "2,3"


def test_interconnect_from_nvml_links() -> None:
    assert link_kind(True, 50) == ("nvlink", "across NUMA nodes")
    assert link_kind(False, 10) == ("pcie", "one PCIe switch")
    assert gpus.interconnect(FOUR, (0, 1)) == "nvlink"
    assert gpus.interconnect(FOUR, (0,)) is None
    mixed = GpuReport(FOUR.gpus, links=(GpuLink(0, 1, "nvlink", "one PCIe switch"),
                                        GpuLink(0, 2, "pcie", "one host bridge"),
                                        GpuLink(1, 2, "nvlink", "one PCIe switch")))
    assert gpus.interconnect(mixed, (0, 1, 2)) == "pcie"
    assert gpus.interconnect_note(FOUR, (0, 1)) == (
        "GPUs 0,1: nvlink between them (PCIe path: across NUMA nodes; read through NVML)")


def test_a_candidate_may_not_turn_multicast_back_on() -> None:
    off = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
    assert gpus.multicast_env({**off, "OTHER": "x"}) == off
    [problem] = gpus.check_multicast({"NCCL_NVLS_ENABLE": "1"}, off)
    assert problem.code == "multicast-enabled" and problem.field == "env.NCCL_NVLS_ENABLE"
    assert gpus.check_multicast({"NCCL_NVLS_ENABLE": "0"}, off) == []
    assert gpus.check_multicast({"NCCL_NVLS_ENABLE": "1"}, {}) == []  # not this machine's rule


def test_gpu_count_and_split_checks_name_the_field() -> None:
    model = model_facts({"model": "m"}, ModelSpec(id="m", shape="qwen3-4b"))
    two = TargetHardware("gpu", 140 * GIB, "9.0", "decision.hardware", count=2)
    checks = engine_config.check_parallel
    assert checks({"tensor_parallel_size": 2}, model, two) == []
    [count] = checks({"tensor_parallel_size": 2, "data_parallel_size": 2}, model, two)
    assert (count.code, count.field) == ("not-enough-gpus", "engine.data_parallel_size")
    assert count.message == ("TP 2 x DP 2 needs 4 GPUs (tensor x pipeline x data parallel); 2 "
                             "available (decision.hardware)")
    [split, kv] = checks({"tensor_parallel_size": 3}, model, None)
    assert split.field == kv.field == "engine.tensor_parallel_size"
    [bad] = checks({"pipeline_parallel_size": 0}, model, two)
    assert bad.code == "bad-parallel-size"


def test_a_placed_tp2_plan_renders_its_gpus_and_plans_memory_per_gpu() -> None:
    decision = stackdecide.load("criteria/hopper-multi.yaml")
    runtime = RuntimeVersions("python3", vllm=None, error="test")
    options = LaunchOptions(port=18000, gpus=(2, 3), python="/nonexistent/python")
    plan = plan_launch(decision, "tp2", options, gpu=FOUR, runtime=runtime)
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert plan.gpu_indices == (2, 3) and plan.interconnect == "nvlink"
    assert plan.layout == "TP 2" and plan.capacity is not None and plan.capacity.gpus == 2
    assert "TP 2: 2 GPU(s), 2,3 (placed by the scheduler); weights and KV cache are planned " \
           "per GPU" in plan.notes
    one = plan_launch(decision, "tp1", LaunchOptions(port=18000, gpus=(1,),
                                                     python="/nonexistent/python"),
                      gpu=FOUR, runtime=runtime)
    assert plan.capacity.weights_bytes is not None and one.capacity is not None
    assert one.capacity.weights_bytes is not None
    assert plan.capacity.weights_bytes < 0.51 * one.capacity.weights_bytes
    wrong = plan_launch(decision, "tp2", LaunchOptions(port=18000, gpus=(1,),
                                                       python="/nonexistent/python"),
                        gpu=FOUR, runtime=runtime)
    assert "gpu-placement-mismatch" in [p.code for p in wrong.problems]


def test_evidence_names_the_gpus_a_launch_used() -> None:
    from dataclasses import asdict

    from stackdecide.evidence.records import HardwareInfo
    from stackdecide.launch.runs import LaunchOutcome
    from stackdecide.loop import hardware_of

    probed = [asdict(g) for g in H200]
    used = LaunchOutcome(True, "tp2", None, "0" * 64, "/tmp/run",
                         hardware={"gpus": probed, "gpu_indices": [2, 3], "driver": "580"})
    assert hardware_of(used) == HardwareInfo(gpu="NVIDIA H200", vram_gb=140.0,
                                             compute_capability="9.0", driver="580", count=2)
    every = LaunchOutcome(True, "tp1", None, "0" * 64, "/tmp/run", hardware={"gpus": probed})
    assert hardware_of(every) is not None and hardware_of(every).count == 4


def test_tensor_parallel_without_multicast_warns_of_the_fused_all_reduce() -> None:
    off = {"TORCH_SYMM_MEM_DISABLE_MULTICAST": "1"}
    [problem] = gpus.check_fused_allreduce({}, 2, {}, off)
    assert (problem.code, problem.severity, problem.field) == (
        "fused-allreduce-without-multicast", "warning", "engine.compilation_config")
    assert "TORCH_SYMM_MEM_DISABLE_MULTICAST=1" in problem.message
    assert "fuse_allreduce_rms: false" in problem.message
    fusion_off = {"compilation_config": {"pass_config": {"fuse_allreduce_rms": False}}}
    assert gpus.check_fused_allreduce(fusion_off, 2, {}, off) == []
    as_json = {"compilation_config": '{"pass_config": {"fuse_allreduce_rms": false}}'}
    assert gpus.check_fused_allreduce(as_json, 2, {}, off) == []
    assert gpus.check_fused_allreduce({}, 2, {"VLLM_FLASHINFER_ALLREDUCE_BACKEND": "trtllm"},
                                      off) == []
    assert gpus.check_fused_allreduce({}, 1, {}, off) == []  # nothing to all-reduce
    assert gpus.check_fused_allreduce({}, 2, {}, {}) == []  # multicast on: not this rule
