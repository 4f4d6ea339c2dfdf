"""The GPU check script cannot run here without a GPU; its --smoke mode runs every step on the CPU."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_script_runs_every_step_in_smoke_mode():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--smoke"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("| ok |") == 3 and "FAIL" not in out
    for line in ("| paper loop, separate heads |", "| batched, bf16 |", "| phase-2 controller update |",
                 "projected wall time:", "speedup:"):
        assert line in out
