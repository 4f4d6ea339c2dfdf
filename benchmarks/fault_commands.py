"""The commands ``fault_injection.py`` kills: how each starts in a trial directory and resumes, what
a killed run left, and the fingerprint of what it ends with (its records without wall-clock times).

* search: a tiny synthetic ``galm search --retrain``, resumed with ``galm search --resume DIR
  --retrain`` (the original command when the kill came before ``config.yaml`` existed: no run to
  resume); compared: ``architectures.json``, ``arm.json``, the ``reward_trace`` of
  ``search_trace.json``, ``results.json``.
* experiment: ``galm experiment configs/experiments/tiny.yaml --out DIR``, run again to resume;
  compared: each cell's status, ``results.json`` and (where it has one) ``architectures.json``.
* prepare: ``galm data prepare table`` of 520 generated PNGs, with 2 or 1 workers, into a new
  directory or over a stale cache of another resolution, run again to resume; compared: the SHA-256
  of every cache file and ``manifest.json``.

``run.json`` is never compared; :data:`IGNORED_KEYS` are left out of every record.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
SEARCH_SETTINGS = (  # a few seconds per run on one CPU thread
    "space.resolution=32", "data.synthetic.resolution=32", "data.synthetic.classes_per_domain=6",
    "data.synthetic.images_per_class=10", "data.synthetic.attributes_per_domain=4", "data.synthetic.n_domains=1",
    "search.episodes=4", "search.shared_steps=3", "search.controller_steps=4", "search.batch_size=8",
    "search.controller_attributes_per_step=0", "train.epochs=1", "train.batch_size=8", "threads=1", "device=cpu",
)
EXPERIMENT_SPEC = ROOT / "configs" / "experiments" / "tiny.yaml"
PREPARE_IMAGES = 520  # 2 workers need 2 x galm.data.prepare.build.MIN_IMAGES_PER_WORKER (256) images
PREPARE_RESOLUTION, STALE_RESOLUTION = 16, 12
# Wall-clock times and timestamps: left out of every compared JSON record, at any depth.
IGNORED_KEYS = frozenset({"seconds", "reward_seconds", "elapsed_seconds", "timing", "created", "finished"})


def galm(*args: str) -> list[str]:
    """``python -m galm ARGS`` with this interpreter."""
    return [sys.executable, "-m", "galm", *args]


def environment() -> dict[str, str]:
    """This environment with this repository first on PYTHONPATH (the galm under test)."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def run_to_end(argv: list[str], log: Path) -> tuple[int, float]:
    """Run ``argv`` to its end, output into ``log``: its exit code and wall seconds."""
    start = time.monotonic()
    with open(log, "wb") as handle:
        code = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, env=environment(), check=False,
                              cwd=log.parent).returncode
    return code, time.monotonic() - start


def tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log, joined on one line (what a failure report quotes)."""
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class Target:
    """One command under test. Subclasses define ``argv(trial, variant)`` (a fresh run in the trial
    directory), ``output(trial)`` (what it writes), ``state(trial)`` (what a killed run left, in a
    few words) and ``fingerprint(trial)`` (what it ended with, compared key by key)."""

    # Globs, relative to the output, of the folders checkpoint temporaries appear in.
    checkpoint_globs: tuple[str, ...] = ()

    def setup(self, work: Path) -> None:
        """Make the inputs every trial shares."""

    def variant(self, index: int) -> str:
        """The variant of this command's ``index``-th trial."""
        return "default"

    def prepare_trial(self, trial: Path, variant: str) -> None:
        trial.mkdir(parents=True, exist_ok=True)

    def resume_argv(self, trial: Path, variant: str) -> list[str]:
        """How a user resumes: by default the same command again."""
        return self.argv(trial, variant)

    def leftovers(self, trial: Path) -> list[str]:
        """Temporaries and locks under the output of a finished run (there should be none)."""
        out = self.output(trial)
        found = out.rglob("*") if out.is_dir() else []
        return sorted(str(p.relative_to(out)) for p in found if p.name.endswith(".tmp") or p.name == ".galm.lock")


class SearchTarget(Target):
    """``galm search --out DIR --retrain`` on a tiny synthetic domain; resumed with ``--resume``."""
    checkpoint_globs = ("checkpoints",)

    def __init__(self, settings: Sequence[str] = SEARCH_SETTINGS) -> None:
        self.settings = list(settings)

    def argv(self, trial: Path, variant: str) -> list[str]:
        sets = [item for setting in self.settings for item in ("--set", setting)]
        return galm("search", *sets, "--out", str(self.output(trial)), "--retrain")

    def resume_argv(self, trial: Path, variant: str) -> list[str]:
        if not (self.output(trial) / "config.yaml").is_file():
            return self.argv(trial, variant)
        return galm("search", "--resume", str(self.output(trial)), "--retrain")

    def output(self, trial: Path) -> Path:
        return trial / "run"

    def state(self, trial: Path) -> str:
        run = self.output(trial)
        if not (run / "config.yaml").is_file():
            return "no run yet" if not run.exists() else "a run directory without config.yaml"
        last = next((n for n in ("results.json", "model.pt", "architectures.json", "checkpoints/search.pt")
                     if (run / n).is_file()), "")
        return f"a run up to {last}" if last else "a run without a checkpoint"

    def fingerprint(self, trial: Path) -> dict[str, Any]:
        run = self.output(trial)
        trace = read_record(run / "search_trace.json")
        return {
            "architectures.json": read_record(run / "architectures.json"),
            "arm.json": read_record(run / "arm.json"),
            "search_trace.json": {"reward_trace": trace.get("reward_trace") if isinstance(trace, dict) else trace},
            "results.json": read_record(run / "results.json"),
        }


class ExperimentTarget(Target):
    """``galm experiment configs/experiments/tiny.yaml --out DIR``, resumed by running it again."""
    checkpoint_globs = ("cells/*/*/seed*/checkpoints", "cells/*/*/seed*/source/checkpoints")

    def argv(self, trial: Path, variant: str) -> list[str]:
        return galm("experiment", str(EXPERIMENT_SPEC), "--out", str(self.output(trial)))

    def output(self, trial: Path) -> Path:
        return trial / "grid"

    def state(self, trial: Path) -> str:
        cells = list(self.output(trial).glob("cells/*/*/seed*"))
        return f"{sum((c / 'done').is_file() for c in cells)} of {len(cells)} started cells done"

    def fingerprint(self, trial: Path) -> dict[str, Any]:
        root, cells = self.output(trial) / "cells", {}
        for cell in sorted(root.glob("*/*/seed*")):
            record = {"done": (cell / "done").is_file(), "results.json": read_record(cell / "results.json")}
            if (cell / "architectures.json").is_file():
                record["architectures.json"] = read_record(cell / "architectures.json")
            cells[cell.relative_to(root).as_posix()] = record
        return {"cells": cells}


class PrepareTarget(Target):
    """``galm data prepare table TABLE --out DIR`` over generated PNGs, run again to resume; by
    variant with 2 or 1 workers, into a new directory or over a stale cache (another resolution)."""

    def __init__(self) -> None:
        self.table = Path()
        self.stale = Path()

    def setup(self, work: Path) -> None:
        self.table = write_table(work / "dataset", PREPARE_IMAGES)
        self.stale = work / "stale-cache"
        code, _ = run_to_end(galm("data", "prepare", "table", str(self.table), "--out", str(self.stale),
                                  "--resolution", str(STALE_RESOLUTION)), work / "stale.log")
        if code != 0:
            raise RuntimeError(f"preparing the stale cache failed: {tail(work / 'stale.log')}")

    def variant(self, index: int) -> str:
        return f"workers={2 if index % 2 == 0 else 1},{'stale' if (index // 2) % 2 else 'new'}"

    def prepare_trial(self, trial: Path, variant: str) -> None:
        trial.mkdir(parents=True, exist_ok=True)
        if variant.endswith("stale"):
            shutil.copytree(self.stale, self.output(trial))

    def argv(self, trial: Path, variant: str) -> list[str]:
        workers = variant.split(",")[0].removeprefix("workers=")
        return galm("data", "prepare", "table", str(self.table), "--out", str(self.output(trial)),
                    "--resolution", str(PREPARE_RESOLUTION), "--workers", workers)

    def output(self, trial: Path) -> Path:
        return trial / "cache"

    def _staging(self, trial: Path) -> list[str]:
        out = self.output(trial)
        return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))  # .<OUT>.tmp-*, .<OUT>.old-*

    def state(self, trial: Path) -> str:
        manifest = read_record(self.output(trial) / "manifest.json")
        resolution = manifest.get("identity", {}).get("options", {}).get("resolution") if isinstance(
            manifest, dict) else None
        cache = {None: "no cache", STALE_RESOLUTION: "the stale cache", PREPARE_RESOLUTION: "the new cache"}
        kinds = {"tmp": "a staging directory", "old": "a moved-aside cache"}
        staging = [kinds.get(name.rsplit(".", 1)[-1].split("-")[0], name) for name in self._staging(trial)]
        return ", ".join([cache.get(resolution, f"a cache at {resolution}"), *staging])

    def fingerprint(self, trial: Path) -> dict[str, Any]:
        out = self.output(trial)
        files = {p.name: sha256(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"} \
            if out.is_dir() else {}
        return {"files": files, "manifest.json": read_record(out / "manifest.json")}

    def leftovers(self, trial: Path) -> list[str]:
        return self._staging(trial) + super().leftovers(trial)


def write_table(folder: Path, n: int) -> Path:
    """A table dataset: ``n`` random 24x24 PNGs in 8 classes, attributes ``a`` and ``b`` per class."""
    import numpy as np
    from PIL import Image

    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["image,class,a,b"]
    for i in range(n):
        c = i % 8
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"img/c{c}_{i}.png")
        lines.append(f"img/c{c}_{i}.png,class{c},{c % 2},{int(c in (1, 2, 4, 7))}")
    (folder / "table.csv").write_text("\n".join(lines) + "\n")
    return folder / "table.csv"


def make_targets(search_settings: Sequence[str] = SEARCH_SETTINGS) -> dict[str, Target]:
    """Every command under test by name (the search with ``search_settings``)."""
    return {"search": SearchTarget(search_settings), "experiment": ExperimentTarget(), "prepare": PrepareTarget()}


# ------------------------------------------------------------------------------- records


def read_record(path: Path) -> Any:
    """A JSON file without the :data:`IGNORED_KEYS`; ``'<missing>'`` or ``'<malformed>'`` otherwise."""
    try:
        return strip_times(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return "<missing>"
    except ValueError:
        return "<malformed>"


def strip_times(value: Any) -> Any:
    """A copy of a JSON value without the keys of :data:`IGNORED_KEYS`, at any depth."""
    if isinstance(value, dict):
        return {k: strip_times(v) for k, v in value.items() if k not in IGNORED_KEYS}
    if isinstance(value, list):
        return [strip_times(v) for v in value]
    return value


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
