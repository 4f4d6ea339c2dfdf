#!/usr/bin/env bash
# GPU check (issue: performance). On a machine with an NVIDIA GPU and a Python with PyTorch, from anywhere:
#   bash benchmarks/gpu_check.sh [extra gpu_check.py arguments]        (PYTHON=... picks the interpreter)
# Needs no network and no install: galm is imported from this checkout. Bounded to 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
missing=$("$PYTHON" - <<'PY'
import importlib.util
needed = {"torch": "torch", "numpy": "numpy", "scipy": "scipy", "sklearn": "scikit-learn", "yaml": "pyyaml", "tqdm": "tqdm"}
print(" ".join(pkg for mod, pkg in needed.items() if importlib.util.find_spec(mod) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: $PYTHON lacks: $missing (pip install $missing)" >&2
  exit 2
fi
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
