"""The CI-sized run of ``benchmarks/fault_injection.py``: a tiny ``galm search --retrain`` killed
with SIGKILL at three seeded moments (the second at a checkpoint write), each resumed with
``galm search --resume``, must end exactly as the uninterrupted run does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/fault_injection.py`` as a module (benchmarks/ is not a package; its sibling
    ``fault_commands.py`` is found as when the script runs)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("fault_injection", BENCHMARKS / "fault_injection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of the main process")
def test_killed_searches_resume_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark(monkeypatch)
    lines: list[str] = []
    summary = bench.run_benchmark(3, seed=0, commands=["search"], work=tmp_path, echo=lines.append)
    report = "\n".join([*lines, summary.line()])
    assert len(summary.kills) == 3, report
    assert [kill.mode for kill in summary.kills] == ["time", "write", "time"], report
    assert summary.identical == len(summary.kills), report
    assert summary.resumed == sum(kill.killed for kill in summary.kills), report
    assert summary.line() == f"kills: 3, resumed: {summary.resumed}, identical: 3"


def test_first_difference_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_benchmark(monkeypatch)
    reference = {"arm.json": {"e": [1.0, 2.0]}, "results.json": {"mauc": 0.5}}
    assert bench.first_difference(reference, reference) is None
    assert bench.first_difference(reference, {**reference, "arm.json": {"e": [1.0, 2.5]}}) == (
        "arm.json/e/[1]: reference 2.0, here 2.5")
    assert bench.first_difference(reference, {"arm.json": {"e": [1.0, 2.0]}}) == "results.json: only in the reference"
    commands = sys.modules["fault_commands"]
    assert commands.strip_times({"mauc": 0.5, "seconds": 3.2, "a": [{"timing": {}, "b": 1}]}) == {
        "mauc": 0.5, "a": [{"b": 1}]}
