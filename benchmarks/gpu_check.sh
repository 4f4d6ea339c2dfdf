#!/usr/bin/env bash
# GPU check (issue: performance). On a machine with an NVIDIA GPU and PyTorch installed, from the
# repository root:  bash benchmarks/gpu_check.sh [extra gpu_check.py arguments]
# Installs galm without touching the installed torch, then runs benchmarks/gpu_check.py within 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import galm" 2>/dev/null || "$PYTHON" -m pip install --quiet --no-deps -e . \
  && "$PYTHON" -m pip install --quiet numpy scipy scikit-learn pillow pyyaml tqdm
timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
