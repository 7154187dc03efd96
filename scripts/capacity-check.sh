#!/usr/bin/env bash
# Capacity under an SLO of one candidate of a decision, checked against a dense concurrency sweep.
#
#   scripts/capacity-check.sh WORK CANDIDATE [DECISION] [-- capacity_check.py options]
#
# Launches CANDIDATE of DECISION (default: WORK/hopper.yaml written by validate-hopper.sh
# prepare, else criteria/hopper.yaml) with dummy weights on port $PORT (default 8000), keeps it
# running while benchmarks/capacity_check.py runs the capacity search (stored as evidence in
# WORK/evidence.db) and the dense sweep against it, writes WORK/capacity/CANDIDATE/
# {search,dense,summary}.json, and always stops the server. Default SLO: p99 TTFT <= 1000 ms,
# p99 TPOT <= 50 ms, 512 in / 256 out (see capacity_check.py --help).
# With URL=http://host:port set, no server is launched or stopped: the one at URL is measured.
set -euo pipefail

work=${1:?usage: capacity-check.sh WORK CANDIDATE [DECISION] [-- options]}
candidate=${2:?usage: capacity-check.sh WORK CANDIDATE [DECISION] [-- options]}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
decision=""
if [[ $# -gt 0 && $1 != "--" ]]; then decision=$1; shift; fi
[[ $# -gt 0 && $1 == "--" ]] && shift
mkdir -p "$work"
work=$(cd "$work" && pwd)
if [[ -z $decision ]]; then
  decision=$work/hopper.yaml
  [[ -f $decision ]] || decision=$root/criteria/hopper.yaml
else
  decision=$(cd "$(dirname "$decision")" && pwd)/$(basename "$decision")
fi
port=${PORT:-8000}
python=${PYTHON:-python}
cd "$work"

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
url=${URL:-}
if [[ -z $url ]]; then
  stackdecide launch "$decision" --candidate "$candidate" --dummy-weights --keep --port "$port" \
    --timeout 900 --evidence evidence.db 2>&1 | tee "launch-$candidate.txt"
  run=$(grep -o 'stackdecide stop [^ ]*' "launch-$candidate.txt" | awk '{print $3}' | tail -n 1)
  [[ -n $run ]] || { echo "the server did not start; see launch-$candidate.txt" >&2; exit 1; }
  trap 'stackdecide stop "$run" || true' EXIT
  url=http://127.0.0.1:$port
fi

store_args=(--store evidence.db --candidate "$candidate")
[[ -n $gpu ]] && store_args+=(--gpu "$gpu")
"$python" "$root/benchmarks/capacity_check.py" --url "$url" \
  --out "capacity/$candidate" "${store_args[@]}" "$@" 2>&1 | tee "capacity-$candidate.txt"
