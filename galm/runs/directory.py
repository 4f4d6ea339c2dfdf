"""A run directory is the unit of record; :class:`RunDirectory` names every file in it.

Layout::

    run_dir/
      config.yaml            the resolved configuration of the run
      run.json               provenance: git revision, versions, start time, command line, resumes
      metrics.jsonl          one JSON object per logged step
      tensorboard/           the same scalars for TensorBoard
      checkpoints/search.pt  the search state (written atomically after every episode)
      architectures.json     derived (or given) architectures
      arm.json               ARM representations and their cosine similarities (searches)
      search_trace.json      the reward of every controller update and its search time (searches)
      search_quality.json    searched vs random heads on the shared weights, policy entropy (searches)
      transfer.json          the source run and each new attribute's nearest source (transfers)
      random_search.json     candidates per attribute and best rewards (random-search cells)
      fmt_tree.json          FMT's widened tree and every widening decision (FMT cells)
      amt_groups.json        AMT's attribute groups and their label correlations (AMT cells)
      model.pt               the trained fixed network
      results.json           final metrics on the evaluation split
      results-<split>.json   `galm evaluate --split <split>`
      thresholds.json        per-attribute decision thresholds calibrated on the val split (balanced accuracy)
      preprocessing.json     the pixel pipeline the network was trained with: resolution, resize, mean, std
      summary.md             `galm demo`'s table; random-control/ its random-head run
      samples/               `galm demo`: a few test-split images and samples.csv, to try `galm predict` on
      report.html, report.md `galm report`
      .galm.lock             while a command writes the run: its pid, host and command

Readers and writers ask :class:`RunDirectory` for a path instead of spelling the name. Every
file is written atomically (:mod:`galm.runs.atomic`).
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from galm.config.schema import GalmConfig
from galm.config.typed import ConfigError, changed_keys, from_mapping, read_yaml_mapping, to_mapping
from galm.runs.atomic import (
    PathLike,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    remove_stale_temporaries,
)
from galm.runs.lock import LOCK_FILE, lock_directory
from galm.runs.provenance import start_record

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS_DIR = "checkpoints"
SEARCH_CHECKPOINT_FILE = "search.pt"
ARCHITECTURES_FILE = "architectures.json"
ARM_FILE = "arm.json"
TRACE_FILE = "search_trace.json"
TRANSFER_FILE = "transfer.json"
RANDOM_SEARCH_FILE = "random_search.json"
FMT_TREE_FILE = "fmt_tree.json"
AMT_GROUPS_FILE = "amt_groups.json"
SEARCH_QUALITY_FILE = "search_quality.json"
MODEL_FILE = "model.pt"
RESULTS_FILE = "results.json"
THRESHOLDS_FILE = "thresholds.json"
PREPROCESSING_FILE = "preprocessing.json"
SAMPLES_DIR = "samples"
SUMMARY_FILE = "summary.md"
CONTROL_DIR = "random-control"
REPORT_FILE = "report.html"
# What a command writes before its work starts; a run holding nothing else has no results.
SETUP_FILES = (CONFIG_FILE, RUN_INFO_FILE, ARCHITECTURES_FILE)


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
        has_content = run.path.is_dir() and any(p.name != LOCK_FILE for p in run.path.iterdir())
        if has_content and not exist_ok:
            raise FileExistsError(
                f"run directory {run.path} already exists and is not empty; "
                "choose a new directory or resume it explicitly"
            )
        run.path.mkdir(parents=True, exist_ok=True)
        new_config = _config_yaml(config_mapping)
        record = {**start_record(), "config": to_mapping(config_mapping)}
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
    @contextlib.contextmanager
    def begin(cls, path: PathLike, config_mapping: Mapping[str, Any]) -> Iterator[RunDirectory]:
        """A new run for the block to write, locked against other writers until the block ends:
        created as :meth:`create` does, and removed again when the block fails before the run
        holds any result (so the same path can be used again)."""
        run = cls(Path(path))
        if run.path.exists() and not run.path.is_dir():
            raise NotADirectoryError(f"run directory {run.path} exists and is not a directory")
        existed = run.path.exists()
        run.path.mkdir(parents=True, exist_ok=True)
        try:
            with lock_directory(run.path, "run directory"):
                cls.create(run.path, config_mapping)
                try:
                    yield run
                except BaseException:
                    if not run.holds_results():
                        run.discard()
                    raise
        finally:
            if not existed:
                with contextlib.suppress(OSError):
                    run.path.rmdir()  # only when empty: made here and discarded, or refused

    @contextlib.contextmanager
    def writing(self) -> Iterator[RunDirectory]:
        """This existing run, locked against other galm writers while the block writes it; the
        temporaries a killed writer left (a half-written ``.search.pt.*.tmp``) are removed first."""
        with lock_directory(self.path, "run directory"):
            remove_stale_temporaries(self.path)
            yield self

    def holds_results(self) -> bool:
        """Whether the run holds more than its set-up records: a metric line, a checkpoint, a
        model, results (TensorBoard files only mirror ``metrics.jsonl``)."""
        for entry in self.path.iterdir():
            if entry.name in SETUP_FILES or entry.name in (TENSORBOARD_DIR, LOCK_FILE):
                continue
            if entry.name == METRICS_FILE and entry.stat().st_size == 0:
                continue
            if entry.name == CHECKPOINTS_DIR and entry.is_dir() and not any(
                    not p.name.endswith(".tmp") for p in entry.iterdir()):
                continue
            return True
        return False

    def discard(self) -> None:
        """Remove what the run holds (its lock file stays for its holder to release)."""
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def record_resume(self, config_mapping: Mapping[str, Any]) -> None:
        """Append this session to ``run.json``'s resumes (call it once the resume is known to start)."""
        type(self).create(self.path, config_mapping, exist_ok=True)

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
    def search_checkpoint_path(self) -> Path:
        """The search state a resume, derive, retrain from the supernet or transfer reads."""
        return self.checkpoints_dir / SEARCH_CHECKPOINT_FILE

    @property
    def arm_path(self) -> Path:
        return self.path / ARM_FILE

    @property
    def trace_path(self) -> Path:
        return self.path / TRACE_FILE

    @property
    def transfer_path(self) -> Path:
        return self.path / TRANSFER_FILE

    @property
    def search_quality_path(self) -> Path:
        """The searched heads against random ones on the shared weights (searches)."""
        return self.path / SEARCH_QUALITY_FILE

    @property
    def random_search_path(self) -> Path:
        return self.path / RANDOM_SEARCH_FILE

    @property
    def fmt_tree_path(self) -> Path:
        return self.path / FMT_TREE_FILE

    @property
    def amt_groups_path(self) -> Path:
        return self.path / AMT_GROUPS_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def thresholds_path(self) -> Path:
        """Per-attribute thresholds calibrated on the validation split when the model was trained."""
        return self.path / THRESHOLDS_FILE

    @property
    def preprocessing_path(self) -> Path:
        """The pixel pipeline (resolution, resize mode, normalisation) the model was trained with."""
        return self.path / PREPROCESSING_FILE

    @property
    def samples_dir(self) -> Path:
        """Where `galm demo` leaves a few test images (and their table) to try `galm predict` on."""
        return self.path / SAMPLES_DIR

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def control_dir(self) -> Path:
        """Where `galm demo` trains its random-head control."""
        return self.path / CONTROL_DIR

    @property
    def report_path(self) -> Path:
        return self.path / REPORT_FILE

    def split_results_path(self, split: str) -> Path:
        """`results-<split>.json`, written by `galm evaluate --split`."""
        return self.path / f"results-{split}.json"

    def is_transfer(self) -> bool:
        return self.transfer_path.is_file()

    @property
    def architectures_path(self) -> Path:
        return self.path / ARCHITECTURES_FILE

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_FILE

    def config(self) -> GalmConfig:
        """The resolved configuration the run was started with, checked; errors name the file."""
        try:
            config = from_mapping(GalmConfig, self.config_mapping(), where="")
            config.check()
        except ConfigError as error:
            if str(self.config_path) in str(error):
                raise
            raise ConfigError(f"{self.config_path}: {error}") from error
        return config

    def config_mapping(self) -> dict[str, Any]:
        """The resolved config recorded for this run (a malformed file: a ConfigError naming it)."""
        return read_yaml_mapping(self.config_path)

    def recorded_config(self) -> dict[str, Any] | None:
        """The configuration the last session (start or resume) ran with, as ``run.json`` recorded
        it; None for a run made by a galm that did not record it."""
        info = self.run_info()
        for session in [*reversed(info.get("resumes") or []), info]:
            if isinstance(session, dict) and isinstance(session.get("config"), dict):
                return session["config"]
        return None

    def config_changes(self) -> list[tuple[str, Any, Any]]:
        """Settings of ``config.yaml`` that differ from those the run's files (its checkpoint) were
        last written with: (dotted key, recorded value, config.yaml's value)."""
        recorded = self.recorded_config()
        if recorded is None:
            return []
        return changed_keys(recorded, to_mapping(self.config()))

    def run_info(self) -> dict[str, Any]:
        """The provenance record (``run.json``)."""
        return read_json(self.run_info_path)


# --------------------------------------------------------------------------- metrics

