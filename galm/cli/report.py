"""`galm experiment` (run or resume a grid) and `galm report` (HTML and Markdown of a run or a grid)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from galm.cli.arguments import non_negative_float, non_negative_int, positive_float, positive_int

__all__ = ["COMMANDS", "register", "run_experiment_command", "run_report_command"]


def register(subparsers: Any) -> None:
    """Add the ``experiment`` and ``report`` commands to an argparse subparsers object."""
    experiment = subparsers.add_parser(
        "experiment", help="run (or resume) a grid of methods × scenarios × seeds and tabulate it",
        description="Run every cell of SPEC.yaml (methods × scenarios × seeds) into DIR/cells/, skipping "
        "finished cells (so a stopped grid resumes) and recording failed ones in error.json; then write "
        "DIR/results.md and DIR/results.csv (Tables 2 and 3, efficiency) and DIR/report.html. DIR must be new, "
        "empty or the directory of this same spec (DIR/experiment.json records it; --force runs another spec "
        "there), and no other galm process may be writing it.",
    )
    experiment.add_argument("spec", type=Path, help="experiment spec (YAML)")
    experiment.add_argument("--out", type=Path, help="experiment directory (default runs/<spec name>)")
    experiment.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="config override added to every cell (after the spec's base; repeatable)")
    experiment.add_argument("--no-report", dest="report", action="store_false",
                            help="do not write report.html after the grid")
    experiment.add_argument("--force", action="store_true",
                            help="run SPEC into an experiment directory that holds another spec: cells they share "
                            "unchanged are kept, changed ones rerun, the others stay on disk but leave the tables "
                            "(files galm did not write are never overwritten, forced or not)")
    where = experiment.add_argument_group(
        "where the cells run", "Every executor runs the same cells into DIR, so results do not depend on it and a "
        "grid started with one resumes with any other (see docs/scaling.md).")
    where.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local (default): on this machine, one cell after another or --jobs at once; ray: "
                       "each unfinished cell as a Ray task (needs galm[ray]; DIR must be on storage every node "
                       "sees, which is checked)")
    where.add_argument("--jobs", type=positive_int, metavar="N",
                       help="local executor: run N cells at once in worker processes, each with 1/N of this "
                       "process's cores as its threads (threads: 0); default 1")
    where.add_argument("--address", metavar="ADDR",
                       help="ray: the cluster to use (auto, HOST:6379, ray://HOST:10001); default RAY_ADDRESS, "
                       "else a cluster running on this machine, else a new local Ray instance")
    where.add_argument("--cpus-per-cell", type=positive_float, metavar="C",
                       help="ray: CPUs each cell task asks for, and its torch threads with threads: 0 (default 1)")
    where.add_argument("--gpus-per-cell", type=non_negative_float, metavar="G",
                       help="ray: GPUs each cell task asks for, fractions allowed (default 0: cells with "
                       "device: auto run on the CPU)")
    where.add_argument("--max-retries", type=non_negative_int, metavar="K",
                       help="ray: times a cell's task is retried when its worker dies (default 3); a cell that "
                       "fails for its own reasons is not retried but recorded in error.json")

    report = subparsers.add_parser(
        "report", help="write a self-contained HTML report (and Markdown) of a run or an experiment",
        description="DIR is a run directory or an experiment directory. Writes report.html (plots embedded, "
        "no external resources) and report.md next to it; into an experiment directory only while no grid "
        "writes it, and never over a file galm did not write (--out writes elsewhere).",
    )
    report.add_argument("dir", type=Path, help="run or experiment directory")
    report.add_argument("--out", type=Path, help="HTML file to write (default DIR/report.html; report.md beside it)")


def run_experiment_command(args: argparse.Namespace) -> int:
    """``galm experiment``: 0 when every cell finished, 1 when some failed or were lost."""
    from galm.experiments.executors import executor_for
    from galm.experiments.grid import run_experiment
    from galm.experiments.spec import read_spec
    from galm.runs.experiment_dir import writing

    spec = read_spec(args.spec)
    if args.overrides:
        from galm.experiments.spec import spec_from_mapping

        spec = spec_from_mapping({**spec.to_json(), "base": [*spec.base, *args.overrides]}, str(args.spec))
    out = args.out or Path("runs") / spec.name
    executor = executor_for(args.executor, jobs=args.jobs, address=args.address, cpus_per_cell=args.cpus_per_cell,
                            gpus_per_cell=args.gpus_per_cell, max_retries=args.max_retries)
    print(f"galm experiment {spec.name}: {len(spec.methods)} methods, {len(spec.scenarios)} scenarios, "
          f"{len(spec.seeds)} seeds into {out}")

    def show(cell, status: str) -> None:
        print(f"  {cell.key}: {status}", flush=True)

    with writing(out):  # the grid and its report, with no other galm process writing there
        outcome = run_experiment(spec, out, on_cell=show, force=args.force, executor=executor)
        print((out / "results.md").read_text(encoding="utf-8"))
        if getattr(args, "report", True):
            from galm.report import write_report

            html_path, _ = write_report(out)
            print(f"report: {html_path}")
    failed, lost = outcome.count("failed"), outcome.count("lost")
    for key, error in outcome.errors.items():
        print(f"  {key}: lost: {error}")
    print(f"{outcome.count('done')} cells run, {outcome.count('skipped')} already finished, {failed} failed"
          + (" (see error.json in their directories; rerun to retry)" if failed else "")
          + (f", {lost} lost (their worker ended without a result; rerun to retry)" if lost else ""))
    return 1 if failed or lost else 0


def run_report_command(args: argparse.Namespace) -> int:
    """``galm report``: writes report.html and report.md."""
    from galm.report import write_report

    html_path, md_path = write_report(args.dir, args.out)
    print(f"report: {html_path}\nmarkdown: {md_path}")
    return 0


COMMANDS = {"experiment": run_experiment_command, "report": run_report_command}
