"""Tests for galm.runs: atomic writes, run directory creation, metrics logging and reading."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from galm.runs import atomic
from galm.runs.atomic import (
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    write_json,
)
from galm.runs.directory import RunDirectory
from galm.runs.metrics import MetricsLogger, read_metrics
from galm.runs.provenance import GitRevision, git_revision


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_writes_produce_final_files_and_no_temp_files(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.bin", b"abc")
    atomic_write_json(tmp_path / "sub" / "b.json", {"z": 1, "a": [1.5]})
    atomic_torch_save({"w": torch.arange(4)}, tmp_path / "c.pt")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    assert (tmp_path / "sub" / "b.json").read_text() == '{\n  "z": 1,\n  "a": [\n    1.5\n  ]\n}\n'
    assert torch.equal(torch.load(tmp_path / "c.pt")["w"], torch.arange(4))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results.json"
    atomic_write_json(target, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"version": 2})
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"x": 1}, target)
    assert read_json(target) == {"version": 1}
    assert _leftovers(tmp_path) == []


def test_failure_while_serialising_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"step": 1}, target)
    with pytest.raises(Exception):
        atomic_torch_save({"bad": lambda: None}, target)  # lambdas cannot be pickled
    assert torch.load(target) == {"step": 1}
    assert _leftovers(tmp_path) == []


def test_read_json_names_malformed_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "architectures.json"
    path.write_text('{"a": 1,\n "b": }')
    with pytest.raises(ValueError, match=r"architectures\.json at line 2"):
        read_json(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    write_json(path, {"ok": True})
    assert read_json(path) == {"ok": True}


def test_create_writes_config_and_provenance(tmp_path: Path) -> None:
    config = {"train": {"lr": 0.01, "widths": [64, 128]}, "name": "demo"}
    run = RunDirectory.create(tmp_path / "run", config)
    assert yaml.safe_load(run.config_path.read_text()) == config
    assert run.config_mapping() == config
    info = json.loads(run.run_info_path.read_text())
    assert info["git_revision"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", info["git_revision"])
    assert "git_dirty" in info
    assert info["torch_version"] == torch.__version__
    for key in ("galm_version", "python_version", "start_time", "command_line"):
        assert key in info
    assert info["resumes"] == []
    assert RunDirectory.open(run.path).path == run.path


def test_create_refuses_non_empty_directory_unless_resuming(tmp_path: Path) -> None:
    run = RunDirectory.create(tmp_path / "run", {"a": 1})
    first_start = run.run_info()["start_time"]
    with pytest.raises(FileExistsError, match="already exists and is not empty"):
        RunDirectory.create(run.path, {"a": 1})
    RunDirectory.create(run.path, {"a": 2}, exist_ok=True)
    info = run.run_info()
    assert info["start_time"] == first_start
    assert len(info["resumes"]) == 1 and info["resumes"][0]["config_changed"] is True
    assert run.config_mapping() == {"a": 2}
    (tmp_path / "empty").mkdir()
    RunDirectory.create(tmp_path / "empty", {"a": 1})  # an empty directory is fine


def test_open_requires_config(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.yaml is missing"):
        RunDirectory.open(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        RunDirectory.open(tmp_path / "nope")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_revision_of_a_checkout_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path, check=True, capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-q", "-m", "init")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_revision(tmp_path) == GitRevision(head, False)
    (tmp_path / "f.txt").write_text("2")
    assert git_revision(tmp_path).dirty is True


def test_git_revision_unknown_without_git(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on PATH
    assert git_revision(tmp_path) == GitRevision("unknown", None)


def test_metrics_logger_writes_jsonl_and_tensorboard(tmp_path: Path) -> None:
    with MetricsLogger(tmp_path) as logger:
        logger.log(1, "train", {"loss": torch.tensor(0.5), "acc": 0.75})
        assert len(read_metrics(tmp_path / "metrics.jsonl")) == 1  # flushed per line
        logger.log(2, "controller", {"reward": 0.25})
    records = read_metrics(tmp_path)
    assert [(r["step"], r["phase"]) for r in records] == [(1, "train"), (2, "controller")]
    assert records[0]["loss"] == 0.5 and records[0]["acc"] == 0.75
    assert records[1]["reward"] == 0.25 and isinstance(records[1]["time"], float)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0


def test_metrics_tensorboard_scalars_are_named_phase_slash_metric(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricsLogger(tmp_path) as logger:
        logger.log(3, "train", {"loss": 1.5})
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert accumulator.Tags()["scalars"] == ["train/loss"]
    (event,) = accumulator.Scalars("train/loss")
    assert (event.step, event.value) == (3, 1.5)


def test_metrics_logger_rejects_bad_records(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, tensorboard=False)
    with pytest.raises(ValueError, match="clash"):
        logger.log(1, "train", {"step": 1.0})
    with pytest.raises(TypeError, match="must be a number"):
        logger.log(1, "train", {"loss": "high"})
    with pytest.raises(TypeError, match="step must be an int"):
        logger.log(1.5, "train", {"loss": 1.0})
    logger.close()
    logger.close()
    with pytest.raises(RuntimeError, match="closed"):
        logger.log(1, "train", {"loss": 1.0})
    assert not (tmp_path / "tensorboard").exists()


def test_read_metrics_tolerates_truncated_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "phase": "train"}\n{"step": 2, "phase": "tr')
    assert read_metrics(path) == [{"step": 1, "phase": "train"}]
    path.write_text('{"step": 1}\n{"step": 2, "ph\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(path)


def test_metrics_logger_resumes_after_a_crash_mid_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "phase": "train"}\n{"step": 2, "pha')
    with MetricsLogger(tmp_path, tensorboard=False) as logger:
        logger.log(2, "train", {"loss": 1.0})
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert path.read_text().endswith("\n")


def test_json_records_are_strict_json(tmp_path: Path) -> None:
    from galm.runs.atomic import atomic_write_json

    path = tmp_path / "r.json"
    atomic_write_json(path, {"auc": float("nan"), "top": [float("inf"), 0.5, (float("-inf"),)], "n": 1})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == {
        "auc": None, "top": [None, 0.5, [None]], "n": 1}
    with MetricsLogger(tmp_path, tensorboard=False) as log:
        log.log(1, "evaluate", {"mauc": float("nan")})
    assert '"mauc": null' in (tmp_path / "metrics.jsonl").read_text()
    assert math.isnan(read_metrics(tmp_path)[0]["mauc"])


def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "shared.json", b"{}")
        (tmp_path / "plain.json").write_bytes(b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o644
