"""Wall time of one experiment grid on each executor: serial, ``--jobs N`` worker processes, Ray tasks.

    python benchmarks/ray_grid.py [--spec configs/experiments/tiny.yaml] [--jobs 2] [--ray-cpus 2]
                                  [--cpus-per-cell 1] [--executors serial,jobs,ray] [--set KEY=VALUE ...]

Every executor runs the same spec into a fresh experiment directory in this process (as
`galm experiment` does); the Ray executor on a local Ray instance of ``--ray-cpus`` CPUs, started
before its clock starts (a cluster is running before a grid is submitted to it; its start-up time is
printed apart). Each row also says whether the grid's ``results.csv`` equals the serial one (it
must: every executor runs the same cells). ``--set threads=0`` lets every cell take the cores it is
given (serial: all of them; ``--jobs N``: 1/N each; Ray: ``--cpus-per-cell``) instead of the spec's
own thread count. The last line is ``speedup: <serial seconds / fastest other seconds>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from galm.experiments.executors import ProcessPoolCells, SerialExecutor  # noqa: E402
from galm.experiments.grid import run_experiment  # noqa: E402
from galm.experiments.scheduling import CellExecutor  # noqa: E402
from galm.experiments.spec import ExperimentSpec, read_spec, spec_from_mapping  # noqa: E402
from galm.runs.experiment_dir import RESULTS_CSV  # noqa: E402

EXECUTORS = ("serial", "jobs", "ray")


def timed_grid(spec: ExperimentSpec, executor: CellExecutor, out: Path) -> tuple[float, int, str]:
    """(wall seconds, cells run or skipped without failing, results.csv) of one grid into `out`."""
    start = time.perf_counter()
    outcome = run_experiment(spec, out, executor=executor)
    seconds = time.perf_counter() - start
    return seconds, outcome.count("done") + outcome.count("skipped"), (out / RESULTS_CSV).read_text(encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "configs" / "experiments" / "tiny.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override added to every cell (e.g. threads=0)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the jobs executor")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--cpus-per-cell", type=float, default=1.0, help="CPUs each Ray cell task asks for")
    parser.add_argument("--executors", default=",".join(EXECUTORS),
                        help=f"comma-separated, among {', '.join(EXECUTORS)} (serial always runs: the reference)")
    args = parser.parse_args()
    chosen = [name for name in args.executors.split(",") if name]
    unknown = sorted(set(chosen) - set(EXECUTORS))
    if unknown:
        parser.error(f"unknown executors {unknown}; choose among {', '.join(EXECUTORS)}")

    spec = read_spec(args.spec)
    if args.overrides:
        spec = spec_from_mapping({**spec.to_json(), "base": [*spec.base, *args.overrides]}, str(args.spec))
    print(f"spec {args.spec.name}: {len(spec.methods)} methods x {len(spec.scenarios)} scenarios x "
          f"{len(spec.seeds)} seeds, overrides {args.overrides or 'none'}")
    rows: list[tuple[str, float, int, bool]] = []
    with tempfile.TemporaryDirectory(prefix="galm-ray-grid-") as scratch:
        seconds, cells, reference = timed_grid(spec, SerialExecutor(), Path(scratch) / "serial")
        rows.append(("serial", seconds, cells, True))
        if "jobs" in chosen:
            seconds, cells, table = timed_grid(spec, ProcessPoolCells(args.jobs), Path(scratch) / "jobs")
            rows.append((f"--jobs {args.jobs}", seconds, cells, table == reference))
        if "ray" in chosen:
            import ray

            from galm.experiments.ray_cells import RayExecutor

            start = time.perf_counter()
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False)
            print(f"local Ray instance of {args.ray_cpus} CPUs started in {time.perf_counter() - start:.1f} s")
            try:
                seconds, cells, table = timed_grid(spec, RayExecutor(cpus_per_cell=args.cpus_per_cell),
                                                   Path(scratch) / "ray")
            finally:
                ray.shutdown()
            rows.append((f"ray ({args.ray_cpus} CPUs, {args.cpus_per_cell:g} per cell)", seconds, cells,
                         table == reference))

    print("| executor | wall s | cells | results.csv equals serial |")
    print("|---|---:|---:|---|")
    for name, seconds, cells, equal in rows:
        print(f"| {name} | {seconds:.1f} | {cells} | {'yes' if equal else 'NO'} |")
    others = [seconds for _, seconds, _, _ in rows[1:]]
    if others:
        print(f"speedup: {rows[0][1] / min(others):.2f}")


if __name__ == "__main__":
    main()
