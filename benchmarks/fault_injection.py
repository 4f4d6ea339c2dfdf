"""Fault injection: kill -9 ``galm search``, ``galm experiment`` and ``galm data prepare`` at random
moments, resume each, and compare what it ends with against an uninterrupted run.

    python benchmarks/fault_injection.py [--kills 20] [--seed 0] [--commands search,experiment,prepare]
        [--keep DIR]

Per command, an uninterrupted reference run is timed first (and watched for checkpoint writes).
Each kill starts the command afresh in its own directory and sends it SIGKILL at a seeded random
moment within the reference's duration or, every second kill of search and experiment, at the
first checkpoint temporary (``checkpoints/.search.pt.<pid>@<host>.<random>.tmp``, see
galm/runs/atomic.py) seen after a random delay within the span the reference wrote checkpoints in,
i.e. in the middle of a checkpoint write. The killed run is resumed as a user would and its result
compared with the reference's (what each command runs, resumes with and compares:
``fault_commands.py``, beside this file); a kill that lands after the process finished has nothing
to resume and is only compared. After a resume no temporary, staging directory or lock may be
left, and no process of the killed command (a decoding worker) may outlive it.

Prints one line per kill (what the kill left; the first differing key when the result is not
identical), a breakdown per command, and last, exactly, ``kills: N, resumed: N, identical: N``;
exits 1 unless every result is identical. ``tests/test_fault_injection.py`` runs
:func:`run_benchmark` with a few kills.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from fault_commands import (  # the sibling module (this file's folder is on sys.path)
    ROOT,
    SEARCH_SETTINGS,
    environment,
    make_targets,
    run_to_end,
    tail,
)

COMMANDS = ("search", "experiment", "prepare")
CHECKPOINT_TEMPORARY = re.compile(r"^\.search\.pt\..+\.tmp$")
POLL_SECONDS = 0.002
RESCAN_SECONDS = 0.1  # how often the folders that may hold checkpoints are listed again
ORPHAN_GRACE_SECONDS = 3.0  # decoding workers poll their parent every 0.5 s


@dataclass
class Kill:
    """One kill: when it landed, what it left, how it was resumed, and whether the result is identical."""

    command: str
    mode: str  # 'time' or 'write'
    variant: str
    planned: float
    at: float = 0.0
    killed: bool = False
    exit_code: int | None = None
    temporary: str = ""  # the checkpoint temporary seen when the kill was sent
    temporary_left: bool = False  # still there after the kill: the write was cut short
    left: str = ""  # what the killed run left on disk
    orphans: list[int] = field(default_factory=list)
    resume: str = ""
    resumed: bool = False
    difference: str | None = None

    @property
    def identical(self) -> bool:
        return self.difference is None

    def line(self, index: int, total: int) -> str:
        """The one line printed for this kill."""
        if self.temporary:
            state = "left behind" if self.temporary_left else "already renamed when the kill landed"
            when = f"during a checkpoint write at {self.at:.2f}s ({self.temporary}, {state})"
        elif self.mode == "write":
            when = f"at the first checkpoint write after {self.planned:.2f}s"
        else:
            when = f"at {self.planned:.2f}s"
        text = f"kill {index:2d}/{total} {self.command:<10} {self.variant:<15} {when}"
        if not self.killed:
            text += f": had already finished (exit {self.exit_code}), nothing to resume"
        else:
            text += f", left {self.left}; resumed with `{self.resume}`" + ("" if self.resumed else ", which FAILED")
        if self.orphans:
            text += f"; {len(self.orphans)} process(es) of the killed command outlived it: {self.orphans}"
        return text + ("; identical" if self.identical else f"; DIFFERS: {self.difference}")


# ------------------------------------------------------------------------------- comparing


def first_difference(expected: Any, actual: Any, where: str = "") -> str | None:
    """The first key path at which two JSON-like values differ, with both values (None: equal)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(k for k in actual if k not in expected)]:
            if key not in actual or key not in expected:
                return f"{where}{key}: {'only in the reference' if key in expected else 'not in the reference'}"
            found = first_difference(expected[key], actual[key], f"{where}{key}/")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where.rstrip('/')}: {len(expected)} items in the reference, {len(actual)} here"
        for i, (a, b) in enumerate(zip(expected, actual)):
            found = first_difference(a, b, f"{where}[{i}]/")
            if found:
                return found
        return None
    if expected != actual or type(expected) is not type(actual):
        return f"{where.rstrip('/')}: reference {short(expected)}, here {short(actual)}"
    return None


def short(value: Any, width: int = 80) -> str:
    """A value as JSON text, cut to ``width`` characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# ------------------------------------------------------------------------------- processes


def group_members(pgid: int) -> list[int]:
    """The pids of live (not zombie) processes in process group ``pgid``, from /proc (Linux)."""
    members: list[int] = []
    if not Path("/proc").is_dir():  # not Linux: no check
        return members
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split() if entry.name.isdigit() else []
        except (OSError, IndexError):
            continue
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class TemporaryWatch:
    """Finds checkpoint temporaries under ``out``: lists the folders ``globs`` match every
    :data:`RESCAN_SECONDS` and looks into them on every call."""

    def __init__(self, out: Path, globs: Sequence[str]) -> None:
        self.out, self.globs, self.listed = out, tuple(globs), -1.0
        self.dirs: list[Path] = []

    def find(self) -> tuple[Path, str] | None:
        """A folder and the name of a temporary in it, or None."""
        now = time.monotonic()
        if now - self.listed > RESCAN_SECONDS:
            self.dirs = [d for g in self.globs for d in self.out.glob(g)]
            self.listed = now
        for folder in self.dirs:
            try:
                with os.scandir(folder) as entries:
                    name = next((e.name for e in entries if CHECKPOINT_TEMPORARY.match(e.name)), "")
            except OSError:
                continue
            if name:
                return folder, name
        return None


def supervise(
    argv: list[str], log: Path, watch: TemporaryWatch | None, kill: Kill | None
) -> tuple[int, float, list[float]]:
    """Run ``argv`` in its own process group. Without ``kill``: to its end, noting when checkpoint
    temporaries were seen. With ``kill``: SIGKILL at ``kill.planned`` seconds, or (mode 'write') at
    the first temporary seen after that delay; ``kill`` is filled in. Returns the exit code, the
    wall seconds and the moments temporaries were seen."""
    seen: dict[str, float] = {}
    found: tuple[Path, str] | None = None
    with open(log, "wb") as handle:
        start = time.monotonic()
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=environment(),
                                   cwd=log.parent, start_new_session=True)
        if kill is None and watch is None:
            process.wait()
        elif kill is not None and kill.mode == "time":
            try:
                process.wait(timeout=kill.planned)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                kill.at = time.monotonic() - start
        else:
            while process.poll() is None:
                elapsed = time.monotonic() - start
                found = watch.find() if watch is not None and (kill is None or elapsed >= kill.planned) else None
                if found is not None and kill is not None:
                    process.send_signal(signal.SIGKILL)
                    kill.at, kill.temporary = elapsed, found[1]
                    break
                if found is not None:
                    seen.setdefault(found[1], elapsed)
                time.sleep(POLL_SECONDS)
        process.wait()
        seconds = time.monotonic() - start
    if kill is not None:
        kill.exit_code, kill.killed = process.returncode, process.returncode == -signal.SIGKILL
        kill.temporary_left = found is not None and kill.killed and (found[0] / found[1]).exists()
        deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
        while (members := group_members(process.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        kill.orphans = members
        for pid in members:  # processes this benchmark started: end them before the resume
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return process.returncode, seconds, sorted(seen.values())


# ------------------------------------------------------------------------------- the benchmark


@dataclass
class Summary:
    """Every kill, the reference runs' durations and the benchmark's wall seconds."""

    kills: list[Kill]
    reference_seconds: dict[str, float]
    seconds: float

    @property
    def resumed(self) -> int:
        return sum(k.resumed for k in self.kills)

    @property
    def identical(self) -> int:
        return sum(k.identical for k in self.kills)

    def line(self) -> str:
        return f"kills: {len(self.kills)}, resumed: {self.resumed}, identical: {self.identical}"

    def breakdown(self) -> list[str]:
        """Per command: kills, checkpoint-write kills, kills after the end, resumed, identical."""
        lines = []
        for name in dict.fromkeys(k.command for k in self.kills):
            own = [k for k in self.kills if k.command == name]
            writes = [k for k in own if k.temporary]
            lines.append(
                f"{name}: {len(own)} kills ({len(writes)} during a checkpoint write, "
                f"{sum(k.temporary_left for k in writes)} of them leaving the .tmp; "
                f"{sum(not k.killed for k in own)} after the run had finished), {sum(k.resumed for k in own)} "
                f"resumed, {sum(k.identical for k in own)} identical; "
                f"reference run {self.reference_seconds[name]:.1f}s")
        return [*lines, f"took {self.seconds:.0f}s"]


def shown(argv: list[str], trial: Path) -> str:
    """A command line as ``galm ...``, ``--set`` options elided, the trial's and the repository's
    paths made relative."""
    text = re.sub(r"(--set \S+ )+", "--set ... ", " ".join(["galm", *argv[3:]]))
    for folder in (trial, trial.parent, ROOT):
        text = text.replace(str(folder) + os.sep, "")
    return text


def run_benchmark(
    kills: int, seed: int, commands: Sequence[str], work: Path,
    search_settings: Sequence[str] = SEARCH_SETTINGS, echo: Callable[[str], None] = print,
) -> Summary:
    """Reference runs, then ``kills`` kills spread round-robin over ``commands``, each resumed and
    compared; trials live under ``work/<command>/``. Echoes one line per kill."""
    started, rng, targets = time.monotonic(), random.Random(seed), make_targets(search_settings)
    unknown = sorted(set(commands) - set(targets))
    if unknown or not commands:
        raise ValueError(f"unknown commands {unknown}; choose from {list(targets)}")
    references: dict[str, dict[str, Any]] = {}
    durations: dict[str, float] = {}
    write_spans: dict[str, float] = {}
    for name in commands:
        target, trial = targets[name], work / name / "reference"
        target.setup(work / name)
        target.prepare_trial(trial, target.variant(0))
        watch = TemporaryWatch(target.output(trial), target.checkpoint_globs) if target.checkpoint_globs else None
        code, durations[name], writes = supervise(target.argv(trial, target.variant(0)), trial / "run.log", watch, None)
        if code != 0:
            raise RuntimeError(f"the uninterrupted {name} run failed (exit {code}): {tail(trial / 'run.log')}")
        references[name] = target.fingerprint(trial)
        write_spans[name] = writes[-1] if writes else 0.9 * durations[name]
        echo(f"reference {name}: {durations[name]:.1f}s, checkpoint temporaries seen {len(writes)} times")
    done: list[Kill] = []
    for index in range(kills):
        name, own = commands[index % len(commands)], index // len(commands)
        target, trial = targets[name], work / name / f"kill{index + 1:02d}"
        variant = target.variant(own)
        target.prepare_trial(trial, variant)
        writes = own % 2 == 1 and bool(target.checkpoint_globs)
        kill = Kill(name, "write" if writes else "time", variant,
                    planned=rng.uniform(0.0, write_spans[name] if writes else durations[name]))
        watch = TemporaryWatch(target.output(trial), target.checkpoint_globs) if writes else None
        supervise(target.argv(trial, variant), trial / "kill.log", watch, kill)
        if kill.killed:
            kill.left = target.state(trial)
            argv = target.resume_argv(trial, variant)
            kill.resume = shown(argv, trial)
            code, _ = run_to_end(argv, trial / "resume.log")
            kill.resumed = code == 0
            if not kill.resumed:
                kill.difference = f"the resume exited {code}: {tail(trial / 'resume.log')}"
        elif kill.exit_code != 0:
            kill.difference = f"the run exited {kill.exit_code} by itself: {tail(trial / 'kill.log')}"
        if kill.difference is None:
            left = target.leftovers(trial)
            kill.difference = (f"left behind: {', '.join(left)}" if left else
                               first_difference(references[name], target.fingerprint(trial)))
        done.append(kill)
        echo(kill.line(index + 1, kills))
    return Summary(done, durations, time.monotonic() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills in all, spread over the commands (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated, of search,experiment,prepare")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="leave every run under DIR (a new or empty folder)")
    args = parser.parse_args(argv)
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    if args.keep is not None:
        if args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep}: choose a new or empty directory")
        args.keep.mkdir(parents=True, exist_ok=True)
        summary = run_benchmark(args.kills, args.seed, commands, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="galm-faults-") as folder:
            summary = run_benchmark(args.kills, args.seed, commands, Path(folder))
    for line in summary.breakdown():
        print(line)
    print(summary.line())
    return 0 if summary.identical == len(summary.kills) else 1


if __name__ == "__main__":
    sys.exit(main())
