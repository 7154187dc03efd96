#!/usr/bin/env bash
# Answer criteria/hopper.yaml by measurement on a Hopper GPU machine with vLLM installed.
#
#   scripts/validate-hopper.sh prepare WORK   probe, refuse the rtx4090 config (dry run), and write
#                                             WORK/hopper.yaml for the GPU actually present
#   scripts/validate-hopper.sh step WORK [N]  launch --winner --bench --until-stable, at most N
#                                             launches (default 1); rerun until it says "stopped:"
#                                             with no launch left to make
#   scripts/validate-hopper.sh race WORK [N] [SEED]
#                                             launch --winner --bench --until-certain, at most N
#                                             launches (default 1) per call; rerun until it says
#                                             "certified", a tie, or the budget is spent
#   scripts/validate-hopper.sh space WORK [N] [SEED]
#                                             the race over criteria/hopper-space.yaml's space
#                                             (for the GPU present, prepared once): launch --winner
#                                             --bench --until-certain --tolerance $TOLERANCE
#                                             (default 1) [--calibrate-with $CALIBRATE], at most N
#                                             launches (default 2) per call, resumable; then
#                                             space.txt, the pruned list, and predict.txt
#   scripts/validate-hopper.sh quality WORK [N]
#                                             criteria/hopper-quality.yaml on the real model: the
#                                             BF16 reference, each other candidate, then the
#                                             reference again (its divergence from itself), at most
#                                             N launches (default 1) per call, resumable; then
#                                             quality-score.txt
#   scripts/validate-hopper.sh finish WORK    rankings before/after, JSON and HTML report
#
# Each step is resumable: the evidence database (WORK/evidence.db) remembers what was measured,
# and the loop launches the next leader (or a candidate that could still overtake it). Servers are
# stopped by the launcher itself; a leftover server holding GPU memory is named by preflight.
set -euo pipefail

action=${1:?usage: validate-hopper.sh prepare|step|finish WORK [N]}
work=${2:?usage: validate-hopper.sh prepare|step|finish WORK [N]}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"  # run folders go to $work/.stackdecide/runs

case "$action" in
prepare)
  stackdecide probe > probe.txt 2>&1 || true
  stackdecide probe --format json > probe.json 2>/dev/null || true
  cat probe.txt
  # The report's recommended configuration must be refused before anything starts.
  set +e
  stackdecide launch "$root/criteria/rtx4090.yaml" --winner --dry-run > rtx4090-dry-run.txt 2>&1
  echo "exit status: $?" >> rtx4090-dry-run.txt
  set -e
  cat rtx4090-dry-run.txt
  # Point the decision at the GPU present, with its datasheet bandwidth, so evidence matches it.
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
  case "$gpu" in
    *H200*) vram=140; bandwidth=4800 ;;
    *H100*NVL*) vram=94; bandwidth=3900 ;;
    *H100*PCIe*) vram=80; bandwidth=2000 ;;
    *H100*) vram=80; bandwidth=3350 ;;
    *) echo "not a Hopper GPU: $gpu" >&2; exit 1 ;;
  esac
  for name in hopper hopper-space hopper-knobs hopper-quality; do
    sed -e "s/^    gpu: .*/    gpu: $gpu/" -e "s/^    vram_gb: .*/    vram_gb: $vram/" \
        -e "s/^    memory_bandwidth_gb_s: .*/    memory_bandwidth_gb_s: $bandwidth/" \
        "$root/criteria/$name.yaml" > $name.yaml
  done
  stackdecide check hopper.yaml | tee check.txt
  stackdecide score hopper.yaml --format json > before.json
  ;;
step)
  stackdecide launch hopper.yaml --winner --bench --until-stable --dummy-weights \
    --evidence evidence.db --max-launches "${3:-1}" --timeout 900 2>&1 | tee -a loop.txt
  ;;
race)
  stackdecide launch hopper.yaml --winner --bench --until-certain --dummy-weights \
    --evidence evidence.db --max-launches "${3:-1}" --race-seed "${4:-0}" --timeout 900 \
    2>&1 | tee -a race.txt
  ;;
quality)
  # a failed launch is a result (launch_ok 0), so the next one runs anyway
  made=0; step=0
  for candidate in bf16 fp8-online fp8-checkpoint kv-fp8 bf16; do
    step=$((step + 1))
    [ -f "quality-$step.done" ] && continue
    [ "$made" -ge "${3:-1}" ] && break
    stackdecide launch hopper-quality.yaml --candidate "$candidate" --bench \
      --evidence quality.db --timeout 900 2>&1 | tee -a quality.txt || true
    touch "quality-$step.done"; made=$((made + 1))
  done
  stackdecide score hopper-quality.yaml --evidence quality.db > quality-score.txt 2>&1 || true
  ;;
space)
  [ -f space.txt ] || stackdecide space hopper-space.yaml > space.txt 2>&1 || true
  [ -f predict-before.txt ] || stackdecide predict hopper-space.yaml > predict-before.txt 2>&1 || true
  # TOLERANCE: points of total (default 1); CALIBRATE: DECISION=EVIDENCE_DB, other launches
  # that calibrate the predictions
  stackdecide launch hopper-space.yaml --winner --bench --until-certain \
    --tolerance "${TOLERANCE:-1}" ${CALIBRATE:+--calibrate-with "$CALIBRATE"} \
    --dummy-weights --evidence space.db --max-launches "${3:-2}" --race-seed "${4:-0}" \
    --timeout 900 2>&1 | tee -a space-race.txt
  stackdecide predict hopper-space.yaml --evidence space.db > predict-after.txt 2>&1 || true
  stackdecide score hopper-space.yaml --evidence space.db > space-after.txt 2>&1 || true
  ;;
finish)
  stackdecide score hopper.yaml --evidence evidence.db | tee after.txt
  stackdecide score hopper.yaml --evidence evidence.db --format json > after.json
  stackdecide evidence export --evidence evidence.db --format json > evidence.json
  stackdecide report hopper.yaml --evidence evidence.db --html report.html --no-engine-command \
    || true
  ;;
*)
  echo "unknown action '$action'" >&2
  exit 2
  ;;
esac
