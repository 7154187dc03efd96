#!/usr/bin/env bash
# Multi-GPU measurements on a host with two (or more) Hopper GPUs and vLLM installed. Every step
# below is one command that fits in 9 minutes; each is resumable (the evidence database in WORK
# keeps what was measured) and stops every server it starts.
#
#   scripts/validate-multi-gpu.sh prepare WORK      probe (GPUs, NVLink/PCIe links), check
#                                                   hopper-multi.yaml (memory per GPU), dry runs
#                                                   of TP 1 / TP 2 / DP 2 (CUDA_VISIBLE_DEVICES)
#   scripts/validate-multi-gpu.sh decide WORK ID    launch and benchmark one candidate of
#                                                   hopper-multi.yaml (tp1, tp2 or dp2): per-GPU
#                                                   memory planned vs logged; ~3-5 min each
#   scripts/validate-multi-gpu.sh parallel WORK [CONFIRM] [NAME]
#                                                   two TP-1 candidates at once on two GPUs
#                                                   (--parallel 2), then CONFIRM (default 0)
#                                                   contenders re-measured alone; NAME (default
#                                                   parallel) names the output files
#   scripts/validate-multi-gpu.sh serial WORK [NAME]
#                                                   the same two one after the other (--parallel
#                                                   1): each alone, for the serial wall time
#
# The two candidates: TOURNAMENT=pair (default) takes bf16-flash-attn and fp8-flash-attn of
# hopper.yaml (docs/results/hopper-h200-x2-parallel); TOURNAMENT=stacks the two vLLM releases of
# hopper-stacks.yaml, each in its own environment layered on python3's packages (--base-env).
# Without network, WHEELHOUSE (default /root/vstage/wheels when present) holds the wheels those
# environments need beyond what python3 has installed (docs/environments.md).
#   scripts/validate-multi-gpu.sh finish WORK       rankings, evidence, and the wall-time ratios
#
# NVLink multicast stays off: NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and
# NVSHMEM_DISABLE_NVLS=1 are set here unless already set, and pass through to every engine.
set -euo pipefail

action=${1:?usage: validate-multi-gpu.sh prepare|decide|parallel|serial|finish WORK [...]}
work=${2:?usage: validate-multi-gpu.sh ACTION WORK}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"  # run folders go to $work/.stackdecide/runs
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
export TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1}
export NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
export VLLM_USE_DEEP_GEMM=${VLLM_USE_DEEP_GEMM:-0}  # block-FP8: Cutlass, not a 20-min JIT
base_env=$(command -v python3)
wheelhouse=${WHEELHOUSE:-/root/vstage/wheels}
sources=()
[ -d "$wheelhouse" ] && sources=(--find-links "$wheelhouse" --offline --no-index)
case "${TOURNAMENT:-pair}" in
  pair) tournament=(hopper.yaml --candidates bf16-flash-attn,fp8-flash-attn) ;;
  stacks) tournament=(stacks.yaml --build-envs --base-env "$base_env" "${sources[@]}") ;;
  *) echo "TOURNAMENT is pair or stacks" >&2; exit 2 ;;
esac

hardware() {  # point a decision at the GPU present, with its datasheet numbers
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
  count=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
  case "$gpu" in
    *H200*) vram=140; bandwidth=4800 ;;
    *H100*NVL*) vram=94; bandwidth=3900 ;;
    *H100*PCIe*) vram=80; bandwidth=2000 ;;
    *H100*) vram=80; bandwidth=3350 ;;
    *) echo "not a Hopper GPU: $gpu" >&2; exit 1 ;;
  esac
  sed -e "s/^    gpu: .*/    gpu: $gpu/" -e "s/^    vram_gb: .*/    vram_gb: $vram/" \
      -e "s/^    count: .*/    count: $count/" \
      -e "s/^    memory_bandwidth_gb_s: .*/    memory_bandwidth_gb_s: $bandwidth/" "$1" > "$2"
}

case "$action" in
prepare)
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv | tee gpu-apps.txt
  nvidia-smi topo -m | tee topo.txt || true
  stackdecide probe --format json > probe.json 2>/dev/null || true
  stackdecide probe 2>&1 | tee probe.txt || true
  hardware "$root/criteria/hopper-multi.yaml" multi.yaml
  hardware "$root/criteria/hopper.yaml" hopper.yaml
  hardware "$root/criteria/hopper-stacks.yaml" stacks.yaml
  stackdecide check multi.yaml | tee check-multi.txt || true  # exit 1: the audit has warnings
  stackdecide env build stacks.yaml --base-env "$base_env" "${sources[@]}" 2>&1 | tee envs.txt
  for id in tp1 tp2 dp2; do
    stackdecide launch multi.yaml --candidate "$id" --dry-run --dummy-weights \
      > "dry-run-$id.txt" 2>&1 || true
    grep -E "CUDA_VISIBLE|NCCL|parallel|GPUs|capacity|weights:|KV|refused|error" \
      "dry-run-$id.txt" || true
  done
  ;;
decide)
  id=${3:?usage: validate-multi-gpu.sh decide WORK tp1|tp2|dp2}
  stackdecide launch multi.yaml --candidate "$id" --bench --dummy-weights \
    --evidence multi.db --timeout 420 2>&1 | tee -a "decide-$id.txt"
  ;;
parallel)
  name=${4:-parallel}
  start=$(date +%s)
  set +e
  stackdecide launch "${tournament[@]}" --bench --parallel 2 --dummy-weights \
    --confirm-top "${3:-0}" --evidence "${TOURNAMENT:-pair}.db" --timeout 420 2>&1 | tee "$name.txt"
  status=${PIPESTATUS[0]}
  set -e
  echo "$name step wall time: $(( $(date +%s) - start )) s (exit $status)" | tee -a "$name.txt"
  ls -t .stackdecide/tournaments/*.json | head -n 1 > "$name-summary-path.txt"
  ;;
serial)
  name=${3:-serial}
  start=$(date +%s)
  set +e
  stackdecide launch "${tournament[@]}" --bench --parallel 1 --dummy-weights \
    --confirm-top 0 --evidence "${TOURNAMENT:-pair}.db" --timeout 420 2>&1 | tee "$name.txt"
  status=${PIPESTATUS[0]}
  set -e
  echo "$name step wall time: $(( $(date +%s) - start )) s (exit $status)" | tee -a "$name.txt"
  ls -t .stackdecide/tournaments/*.json | head -n 1 > "$name-summary-path.txt"
  ;;
finish)
  [ -f multi.db ] && stackdecide score multi.yaml --evidence multi.db | tee after-multi.txt
  [ -f multi.db ] && stackdecide evidence export --evidence multi.db --format json > multi-evidence.json
  [ -f pair.db ] && stackdecide score hopper.yaml --evidence pair.db | tee after-pair.txt
  [ -f stacks.db ] && stackdecide score stacks.yaml --evidence stacks.db | tee after-stacks.txt
  python3 - <<'PY' | tee ratios.txt
import json, pathlib
def load(name):
    path = pathlib.Path(f"{name}-summary-path.txt")
    return json.loads(pathlib.Path(path.read_text().strip()).read_text())["measured"] \
        if path.exists() else None
rounds = {name: load(name) for name in ("parallel", "serial", "parallel-warm")}
for name, m in rounds.items():
    if m:
        print(f"{name} round: wall {m['wall_s']:.1f} s, slowest candidate {m['slowest_s']:.1f} s")
        for t in m["tasks"]:
            print(f"  {t['candidate']}: GPUs {t['gpus']}, beside {t['beside']}, {t['seconds']:.1f} s")
alone = rounds["serial"]
for name in ("parallel", "parallel-warm"):
    m = rounds[name]
    if m and alone:
        # a round's first starts on a machine pay the compile caches: only rounds that are both
        # cold or both warm make a speed-up figure
        print(f"{name}: serial wall / parallel wall = {alone['wall_s'] / m['wall_s']:.2f}; "
              f"parallel wall / slowest candidate alone = {m['wall_s'] / alone['slowest_s']:.2f} "
              "(goal <= 1.3; a speed-up only if both rounds started equally cold or warm)")
PY
  ;;
*)
  echo "unknown action '$action'" >&2
  exit 2
  ;;
esac
