"""Data-parallel search on CPUs: ``torchrun --nproc_per_node=N -m galm search`` (gloo) against one
process, the same synthetic search with the same global batch.

    python benchmarks/distributed_search.py [--processes 2] [--threads 1] [--episodes 4] [--batch 64]
        [--resolution 64] [--attributes 16] [--shared-steps 10] [--controller-steps 10] [--keep DIR]

Each run is a fresh ``galm search`` (``search.precision=float32``, ``threads`` per process). Steps
per second = (phase-1 + phase-2 steps) / the searched seconds the run logged per episode in
``metrics.jsonl`` (process start, data generation and derivation are not counted; the first
episode, which warms up allocators, is left out when there are more than one). Also printed: each
run's wall seconds and whether both runs derived the same architectures. Run it alone on the
machine: the N processes with T threads each need N x T free cores. The last line is
``speedup: <N-process steps/s over 1-process steps/s>``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]


def settings(args: argparse.Namespace) -> list[str]:
    """The search both runs make, as ``--set`` values."""
    return [
        f"space.resolution={args.resolution}", f"data.synthetic.resolution={args.resolution}",
        f"data.synthetic.attributes_per_domain={args.attributes}", "data.synthetic.n_domains=1",
        "data.synthetic.classes_per_domain=12", "data.synthetic.images_per_class=40",
        f"search.episodes={args.episodes}", f"search.shared_steps={args.shared_steps}",
        f"search.controller_steps={args.controller_steps}", f"search.batch_size={args.batch}",
        "search.attributes_per_step=0", "search.controller_attributes_per_step=0", "search.precision=float32",
        f"threads={args.threads}", "device=cpu",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(out: Path, processes: int, sets: Sequence[str]) -> list[str]:
    """``galm search`` in one process, or under torchrun in `processes`."""
    options = [item for setting in sets for item in ("--set", setting)]
    if processes == 1:
        return [sys.executable, "-m", "galm", "search", *options, "--out", str(out)]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "galm", "search", *options,
            "--out", str(out)]


def measure(out: Path, processes: int, threads: int, sets: Sequence[str]) -> dict[str, float | dict]:
    """Run one search into `out`; its steps per second, wall seconds and derived architectures."""
    path = os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
           "OMP_NUM_THREADS": str(threads)}
    start = time.monotonic()
    with open(out.parent / f"{out.name}.log", "wb") as log:
        code = subprocess.run(command(out, processes, sets), stdout=log, stderr=subprocess.STDOUT, env=env,
                              check=False).returncode
    wall = time.monotonic() - start
    if code != 0:
        raise RuntimeError(f"the {processes}-process search failed (exit {code}); see {out.parent / out.name}.log")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    episodes = [r for r in records if r["phase"] == "controller"]
    counted = episodes[1:] if len(episodes) > 1 else episodes
    steps_per_episode = int(dict(s.split("=") for s in sets)["search.shared_steps"]) + int(
        dict(s.split("=") for s in sets)["search.controller_steps"])
    seconds = sum(r["seconds"] for r in counted)
    heads = json.loads((out / "architectures.json").read_text())
    return {"steps_per_second": steps_per_episode * len(counted) / seconds, "wall": wall,
            "architectures": {name: head["short"] for name, head in heads.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="processes of the data-parallel run (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="the global minibatch (default 64)")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--attributes", type=int, default=16)
    parser.add_argument("--shared-steps", type=int, default=10)
    parser.add_argument("--controller-steps", type=int, default=10)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="leave both runs under DIR (a new or empty folder)")
    args = parser.parse_args(argv)
    sets = settings(args)
    with tempfile.TemporaryDirectory(prefix="galm-distributed-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        one = measure(work / "one-process", 1, args.threads, sets)
        many = measure(work / f"{args.processes}-processes", args.processes, args.threads, sets)
    print(f"global batch {args.batch}, {args.attributes} attributes at {args.resolution} px, {args.threads} thread(s) "
          "per process")
    print(f"1 process:   {one['steps_per_second']:.2f} steps/s (wall {one['wall']:.1f}s)")
    print(f"{args.processes} processes: {many['steps_per_second']:.2f} steps/s (wall {many['wall']:.1f}s)")
    print(f"same derived architectures: {one['architectures'] == many['architectures']}")
    print(f"speedup: {many['steps_per_second'] / one['steps_per_second']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
