"""A run directory is the unit of record: config, provenance, metrics, checkpoints, results.

Layout::

    run_dir/
      config.yaml          the resolved configuration of the run
      run.json             provenance: git revision, versions, start time, command line, resumes
      metrics.jsonl        one JSON object per logged step
      tensorboard/         the same scalars for TensorBoard
      checkpoints/         written by the search (atomically)
      architectures.json   derived architectures
      results.json         final metrics

Every file is written atomically (temporary file in the same directory, fsync, rename, fsync of
the directory), so a crash never leaves a partial file under a final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

import yaml

from galm.runs.atomic import sync_path

__all__ = [
    "RunDirectory",
    "GitRevision",
    "git_revision",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_torch_save",
    "write_json",
    "read_json",
    "MetricsLogger",
    "read_metrics",
]

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS_DIR = "checkpoints"
ARCHITECTURES_FILE = "architectures.json"
RESULTS_FILE = "results.json"

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- atomic writes




@contextlib.contextmanager
def _atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """Yields a binary file that replaces ``path`` only if the block completes without error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    sync_path(target.parent)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with _atomic_file(path) as handle:
        handle.write(data)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON (keys in insertion order) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to ``path`` atomically, streaming into the temporary file."""
    import torch

    with _atomic_file(path) as handle:
        torch.save(obj, handle)


def write_json(path: PathLike, obj: Any) -> None:
    """Writes a JSON record (``architectures.json``, ``results.json``) atomically."""
    atomic_write_json(path, obj)


def read_json(path: PathLike) -> Any:
    """Reads a JSON file; a missing or malformed file raises an error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"JSON file not found: {path}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"malformed JSON in {path} at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class GitRevision:
    """The commit of a source tree and whether it has uncommitted changes (None when unknown)."""

    revision: str
    dirty: bool | None


def _git(directory: Path, *args: str) -> str | None:
    """Output of a git command run in ``directory``; None if git is missing or fails."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_revision(directory: PathLike | None = None) -> GitRevision:
    """Git revision of ``directory`` (default: the galm package); 'unknown' outside a checkout."""
    directory = Path(directory) if directory is not None else Path(__file__).resolve().parent
    revision = _git(directory, "rev-parse", "HEAD")
    if not revision:
        return GitRevision(revision="unknown", dirty=None)
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return GitRevision(revision=revision, dirty=None if status is None else bool(status))


def _galm_version() -> str:
    """The installed galm version, 'unknown' when not installed."""
    try:
        return importlib.metadata.version("galm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _torch_version() -> str:
    """The torch version, 'unavailable' when torch cannot be imported."""
    try:
        import torch
    except ImportError:
        return "unavailable"
    return str(torch.__version__)


def start_record() -> dict[str, Any]:
    """Provenance of the current process: revision, versions, host, start time, command line."""
    git = git_revision()
    return {
        "git_revision": git.revision,
        "git_dirty": git.dirty,
        "galm_version": _galm_version(),
        "python_version": platform.python_version(),
        "torch_version": _torch_version(),
        "hostname": platform.node(),
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command_line": list(sys.argv),
    }


# --------------------------------------------------------------------------- run directory


def _config_yaml(config_mapping: Mapping[str, Any]) -> bytes:
    return yaml.safe_dump(dict(config_mapping), sort_keys=False).encode("utf-8")


@dataclass(frozen=True)
class RunDirectory:
    """Paths of one run's records; create a new run or open an existing one."""

    path: Path

    @classmethod
    def create(
        cls, path: PathLike, config_mapping: Mapping[str, Any], exist_ok: bool = False
    ) -> RunDirectory:
        """Starts a run: writes ``config.yaml`` and ``run.json``.

        An existing non-empty directory is refused unless ``exist_ok`` (resuming); a resume is
        appended to ``run.json``'s ``resumes`` list, keeping the original start record.
        """
        run = cls(Path(path))
        if run.path.exists() and not run.path.is_dir():
            raise NotADirectoryError(f"run directory {run.path} exists and is not a directory")
        has_content = run.path.is_dir() and any(run.path.iterdir())
        if has_content and not exist_ok:
            raise FileExistsError(
                f"run directory {run.path} already exists and is not empty; "
                "choose a new directory or resume it explicitly"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        new_config = _config_yaml(config_mapping)
        record = start_record()
        if has_content and run.run_info_path.exists():
            info = read_json(run.run_info_path)
            previous = run.config_path.read_bytes() if run.config_path.exists() else None
            record["config_changed"] = previous != new_config
            info.setdefault("resumes", []).append(record)
        else:
            info = {**record, "resumes": []}
        atomic_write_bytes(run.config_path, new_config)
        atomic_write_json(run.run_info_path, info)
        return run

    @classmethod
    def open(cls, path: PathLike) -> RunDirectory:
        """An existing run directory; it must hold ``config.yaml``."""
        run = cls(Path(path))
        if not run.path.is_dir():
            raise FileNotFoundError(f"run directory not found: {run.path}")
        if not run.config_path.is_file():
            raise FileNotFoundError(f"{run.path} is not a run directory: {CONFIG_FILE} is missing")
        return run

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def run_info_path(self) -> Path:
        return self.path / RUN_INFO_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def architectures_path(self) -> Path:
        return self.path / ARCHITECTURES_FILE

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    def config_mapping(self) -> dict[str, Any]:
        """The resolved config recorded for this run."""
        data = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        return data or {}

    def run_info(self) -> dict[str, Any]:
        """The provenance record (``run.json``)."""
        return read_json(self.run_info_path)


# --------------------------------------------------------------------------- metrics

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
        self._file.write(json.dumps(record) + "\n")
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
    raises an error naming the file and line.
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
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            is_unterminated_last = number == len(lines) and not text.endswith("\n")
            if is_unterminated_last:
                break
            raise ValueError(
                f"malformed metrics record in {path} at line {number}: {error.msg}"
            ) from error
    return records


def rewrite_metrics(path: PathLike, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Keeps only the records for which `keep` is true (atomically); returns how many were dropped.

    A resumed search uses it to drop what an interrupted episode logged after the last checkpoint,
    so the resumed run's metrics equal an uninterrupted run's.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        return 0
    records = read_metrics(path)
    kept = [record for record in records if keep(record)]
    atomic_write_bytes(path, "".join(json.dumps(record) + "\n" for record in kept).encode("utf-8"))
    return len(records) - len(kept)
