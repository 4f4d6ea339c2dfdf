"""Does bf16 autocast change the search's outcome? Per seed, the demo-budget search in float32 and under
bf16 autocast, each derived network retrained (float32) and scored on the unseen test classes.

    python benchmarks/bf16_quality.py [--seeds 0 1 2] [--device cpu|cuda] [--set key=value ...]

The outcome counts as unchanged when every bf16 mAUC lies inside the range of the float32 mAUCs over
the same seeds (the issue's criterion). Only meaningful where bf16 is native (GPUs, CPUs with AMX or
AVX512-BF16); elsewhere it runs, slowly, on emulated bf16.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from galm.config.presets import DEMO_OVERRIDES
from galm.config.reader import read_config
from galm.config.typed import to_mapping
from galm.data.sources import config_domain
from galm.runs.directory import RunDirectory
from galm.search.jobs import retrain_run, search_run


def searched_mauc(overrides: list[str], device: torch.device) -> tuple[float, float]:
    """Test mAUC of the retrained searched network and the search's seconds."""
    config = read_config(None, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDirectory.create(Path(tmp) / "run", to_mapping(config))
        start = time.perf_counter()
        search_run(run, config, config_domain(config), device)
        seconds = time.perf_counter() - start
        return retrain_run(run, config_domain(run.config()), device).mauc, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    device = torch.device(args.device)
    results: dict[str, list[tuple[float, float]]] = {"float32": [], "bf16": []}
    for seed in args.seeds:
        for precision in results:
            overrides = [*DEMO_OVERRIDES, f"seed={seed}", f"search.precision={precision}", *args.overrides]
            results[precision].append(searched_mauc(overrides, device))
            mauc, seconds = results[precision][-1]
            print(f"seed {seed} {precision}: mAUC {mauc:.4f} (search {seconds:.0f} s)", flush=True)
    print("\n| seed | float32 mAUC | bf16 mAUC | float32 search s | bf16 search s |\n|---:|---:|---:|---:|---:|")
    for seed, (f32, bf16) in zip(args.seeds, zip(results["float32"], results["bf16"])):
        print(f"| {seed} | {f32[0]:.4f} | {bf16[0]:.4f} | {f32[1]:.0f} | {bf16[1]:.0f} |")
    low = min(m for m, _ in results["float32"])
    high = max(m for m, _ in results["float32"])
    inside = all(low <= m <= high for m, _ in results["bf16"])
    print(f"\nfloat32 range [{low:.4f}, {high:.4f}]; bf16 inside it: {'yes' if inside else 'no'}")


if __name__ == "__main__":
    main()
