"""Per-step metrics of a run: `metrics.jsonl` (one flushed JSON line per record) and TensorBoard."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from galm.runs.atomic import PathLike, atomic_write_bytes, json_text
from galm.runs.directory import METRICS_FILE, TENSORBOARD_DIR, RunDirectory

_RESERVED_KEYS = ("step", "phase", "time")


def _scalar(name: str, value: Any) -> float | int:
    """A metric value as a plain number (torch and NumPy scalars included)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"metric {name!r} must be a number, got {value!r}")
    return value


def _drop_partial_last_line(path: Path) -> None:
    """Truncates an unterminated last line (a crash mid-write) so appends start on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class MetricsLogger:
    """Appends metrics to ``metrics.jsonl`` (one flushed line per call) and to TensorBoard."""

    def __init__(self, run_dir: PathLike | RunDirectory, tensorboard: bool = True) -> None:
        root = run_dir.path if isinstance(run_dir, RunDirectory) else Path(run_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / METRICS_FILE
        _drop_partial_last_line(self.path)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(root / TENSORBOARD_DIR))

    def log(self, step: int, phase: str, metrics: Mapping[str, Any]) -> None:
        """Records ``metrics`` of ``phase`` at ``step``; scalars appear as ``phase/name``."""
        if self._file is None:
            raise RuntimeError("MetricsLogger is closed")
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step must be an int, got {step!r}")
        clashes = [key for key in metrics if key in _RESERVED_KEYS]
        if clashes:
            raise ValueError(f"metric names {clashes} clash with the record's own keys")
        values = {name: _scalar(name, value) for name, value in metrics.items()}
        record = {"step": step, "phase": phase, "time": time.time(), **values}
        self._file.write(json_text(record, indent=None) + "\n")
        self._file.flush()
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{phase}/{name}", value, step)

    def flush(self) -> None:
        """Pushes buffered TensorBoard events to disk (JSON lines are flushed per call)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Closes the metrics file and the TensorBoard writer; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_metrics(path: PathLike) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (or run directory), skipping a truncated last line.

    A last line cut short by a crash is dropped; a malformed line elsewhere is corruption and
    raises an error naming the file and line. A metric written as null (a NaN) reads as NaN.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            is_unterminated_last = number == len(lines) and not text.endswith("\n")
            if is_unterminated_last:
                break
            raise ValueError(
                f"malformed metrics record in {path} at line {number}: {error.msg}"
            ) from error
        records.append({k: math.nan if v is None and k not in _RESERVED_KEYS else v for k, v in record.items()})
    return records


def rewrite_metrics(path: PathLike, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Keeps only the records for which `keep` is true (atomically); returns how many were dropped.

    A resumed search uses it to drop what an interrupted episode logged after the last checkpoint,
    so the resumed run's metrics equal an uninterrupted run's. When records were dropped, the
    TensorBoard events beside the file are written again from the kept records (event files can
    only be appended to), so TensorBoard shows no redone episode twice.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        return 0
    records = read_metrics(path)
    kept = [record for record in records if keep(record)]
    atomic_write_bytes(path, "".join(json_text(record, indent=None) + "\n" for record in kept).encode("utf-8"))
    dropped = len(records) - len(kept)
    if dropped and (path.parent / TENSORBOARD_DIR).is_dir():
        replay_tensorboard(path.parent / TENSORBOARD_DIR, kept)
    return dropped


def replay_tensorboard(directory: Path, records: list[dict[str, Any]]) -> None:
    """Replace the TensorBoard events in `directory` by the scalars of `records` (as logged)."""
    from torch.utils.tensorboard import SummaryWriter

    shutil.rmtree(directory)
    with SummaryWriter(log_dir=str(directory)) as writer:
        for record in records:
            for name, value in record.items():
                if name not in _RESERVED_KEYS:
                    writer.add_scalar(f"{record['phase']}/{name}", value, record["step"], walltime=record.get("time"))
